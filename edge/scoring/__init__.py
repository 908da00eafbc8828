"""Frame scorers: the TETG head, the camera's normality model, or both fused (see `base`)."""
