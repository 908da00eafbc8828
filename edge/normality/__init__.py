"""A camera's normality model: what its patches, their changes and its view look like normally.

Learned without labels from the camera's own footage (`vau-edge learn`, or online during a
warm-up); scores each frame by how far it departs from that normal, calibrated so that the same
threshold means the same on every camera. `model` holds the maths, `fit` learns, `calibration`
maps raw distances to [0, 1], `store` persists, `learn` runs the real pipeline over footage and
`online` learns and adapts while a camera runs.
"""
