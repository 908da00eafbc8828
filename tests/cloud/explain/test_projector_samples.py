"""The prompts the projector is trained on: the camera named as a deployment might name it."""

from __future__ import annotations

import numpy as np
from support_explain import event_records

from vau.cloud.explain.captions import Caption
from vau.cloud.explain.evidence import EventEvidence, frame_evidence
from vau.cloud.explain.projector_train import CAMERA_NAMES, camera_names, sample_of
from vau.cloud.explain.settings import CameraContext, ExplainSettings
from vau.cloud.records import EventChange, TokenFrame


def _evidence(camera: str) -> EventEvidence:
    records = event_records("ev-1", 1, hot=(7 * 16 + 7, 7 * 16 + 8))
    e = next(r.body for r in records if isinstance(r.body, EventChange) and r.body.end is not None)
    frames = [frame_evidence(r.t, r.body) for r in records if isinstance(r.body, TokenFrame)]
    return EventEvidence(
        camera, e.event_id, e.start, e.end, e.peak, e.peak_t, e.prior, tuple(frames), 0.1
    )


def test_training_prompts_name_each_camera_by_its_own_name_or_a_typical_one_seeded() -> None:
    name = camera_names(0)
    names = [name("vtest-left") for _ in range(200)]
    again = camera_names(0)
    assert names == [again("vtest-left") for _ in range(200)]  # the same samples, the same names
    assert set(names) == {"vtest-left", *CAMERA_NAMES}
    assert "cam-0" in CAMERA_NAMES  # the default camera id
    assert names != [camera_names(1)("vtest-left") for _ in range(200)]  # another seed
    own = camera_names(0, vary=False)
    assert {own("vtest-left") for _ in range(20)} == {"vtest-left"}


def test_a_sample_shows_the_drawn_name_but_keeps_its_own_cameras_settings() -> None:
    settings = ExplainSettings(
        cameras={"vtest": CameraContext(normal="People walk along the path.")}
    )
    tokens = [np.zeros((4, 384), np.float32)]
    caption = Caption("Intruder", "Something moved where nothing moves.")
    shown = sample_of(_evidence("vtest"), tokens, caption, settings, "intruder", name="Back Yard")
    text = shown.messages[1]["content"]
    assert 'Camera "Back Yard".' in text and "vtest" not in text
    assert "People walk along the path." in text  # its own context, whatever it is called
    plain = sample_of(_evidence("vtest"), tokens, caption, settings, "intruder")
    assert 'Camera "vtest".' in plain.messages[1]["content"]
