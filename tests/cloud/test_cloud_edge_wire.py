"""The edge's own codec and the cloud's validator agree on the wire (vau.v1): every record kind
the edge makes is accepted as it is, tokens round-trip within the encoding's error."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vau.cloud.codec import decode_edge
from vau.cloud.explain.evidence import frame_evidence
from vau.cloud.records import AcceptedRecord, Hello, TokenFrame, WireRecord
from vau.cloud.settings import LimitSettings
from vau.cloud.validate import Validator
from vau.common.tokens import TokenDType
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec as edge

V = Validator(LimitSettings(), retention_s=30 * 86400)


def _accept(body: bytes, seq: int = 1) -> AcceptedRecord:
    hello = decode_edge(edge.serialize(edge.hello("dev-a", ["cam-0"], 5, "t")))
    assert isinstance(hello, Hello)
    wire = decode_edge(edge.serialize(edge.record_message("cam-0", 5, seq, body)))
    assert isinstance(wire, WireRecord)
    return V.record(wire, "dev-a", V.hello(hello), time.time())


@pytest.mark.parametrize(("dtype", "tol"), [("fp16", 2e-3), ("int8", 0.02)])
def test_edge_frame_when_encoded_by_edge_then_cloud_accepts_and_decodes(
    dtype: TokenDType, tol: float
) -> None:
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((128, 384)).astype(np.float32)
    eff = EffectiveTokens(
        seq=10, t=5.0, wall_time=time.time(), indices=np.arange(0, 256, 2, dtype=np.int64),
        tokens=tokens, distances=np.ones(128, np.float32), patches=256, grid=(16, 16),
        keyframe=False,
    )  # fmt: skip
    body = _accept(edge.frame_body(eff, FrameScore(10, 5.0, 0.7, 0.6), dtype, "ev-1")).body
    assert isinstance(body, TokenFrame)
    assert body.tokens.shape == (128, 384) and body.event_id == "ev-1"
    assert np.abs(body.tokens - tokens).max() <= tol * np.abs(tokens).max()
    assert body.indices.tolist() == list(range(0, 256, 2))


def test_edge_event_window_summary_when_encoded_by_edge_then_cloud_accepts() -> None:
    now = time.time()
    update = EventUpdate("ev-1", EventState.END, 1.0, 4.0, 0.9, 2.0, "Known common anomaly ...")
    bodies = [
        edge.event_body(update, now),
        edge.window_body(Window("ev-1", 1.0, 4.0, (3, 5, 8), "p"), now),
        edge.summary_body(0.0, 10.0, [0.1, 0.2, 0.3], now),
    ]
    kinds = [_accept(body, seq).kind for seq, body in enumerate(bodies, start=1)]
    assert kinds == ["event", "window", "summary"]


def _eff(seq: int = 10) -> EffectiveTokens:
    rng = np.random.default_rng(seq)
    return EffectiveTokens(
        seq=seq, t=5.0, wall_time=time.time(), indices=np.arange(0, 64, 2, dtype=np.int64),
        tokens=rng.standard_normal((32, 64)).astype(np.float32),
        distances=np.ones(32, np.float32), patches=256, grid=(16, 16), keyframe=False,
    )  # fmt: skip


def test_edge_frame_when_score_has_hot_normality_components_then_cloud_keeps_them() -> None:
    score = FrameScore(
        10, 5.0, 0.7, 0.6, normality=0.875, hot=(255, 3, 17),
        components=(("motion", 0.25), ("appearance", 0.875), ("head", 0.5)),
    )  # fmt: skip
    body = _accept(edge.frame_body(_eff(), score, "fp16")).body
    assert isinstance(body, TokenFrame)
    assert body.hot.tolist() == [255, 3, 17]  # order kept: most anomalous first
    assert body.normality == 0.875  # exact in float32
    assert body.components == (("appearance", 0.875), ("head", 0.5), ("motion", 0.25))


def test_edge_frame_when_pixel_change_measured_then_cloud_keeps_it_and_zero_is_not_unset() -> None:
    for share in (0.625, 0.0):
        score = FrameScore(10, 5.0, 0.7, 0.6, pixel_change=share)
        body = _accept(edge.frame_body(_eff(), score, "fp16")).body
        assert isinstance(body, TokenFrame) and body.pixel_change == share  # exact in float32
        assert frame_evidence(5.0, body).pixel_change == share  # what the facts read


def test_edge_frame_when_brightness_measured_then_cloud_keeps_its_sign_and_zero() -> None:
    for shift in (-0.25, 0.0, 0.5):
        score = FrameScore(10, 5.0, 0.7, 0.6, pixel_change=0.75, brightness=shift)
        body = _accept(edge.frame_body(_eff(), score, "fp16")).body
        assert isinstance(body, TokenFrame) and body.brightness == shift  # exact in float32
        assert frame_evidence(5.0, body).brightness == shift  # what the facts read


def test_edge_frame_when_detail_measured_then_cloud_reads_what_the_view_kept() -> None:
    for kept in (0.5, 0.0, 1.25):  # defocused, a blank view, more detail than usual
        score = FrameScore(10, 5.0, 0.7, 0.6, pixel_change=0.4, detail=kept)
        body = _accept(edge.frame_body(_eff(), score, "fp16")).body
        assert isinstance(body, TokenFrame) and body.detail == kept  # exact in float32
        assert frame_evidence(5.0, body).detail == kept  # what the facts read


def test_edge_frame_when_score_has_no_normality_model_then_cloud_reads_none_and_empty() -> None:
    body = _accept(edge.frame_body(_eff(), FrameScore(10, 5.0, 0.7, 0.6), "int8")).body
    assert isinstance(body, TokenFrame)
    assert body.normality is None and body.pixel_change is None and body.brightness is None
    assert body.detail is None
    assert body.hot.shape == (0,) and body.hot.dtype == np.int64
    assert body.components == ()


def test_edge_frame_when_normality_is_zero_then_cloud_tells_it_from_unset() -> None:
    body = _accept(edge.frame_body(_eff(), FrameScore(10, 5.0, 0.7, 0.6, 0.0), "fp16")).body
    assert isinstance(body, TokenFrame) and body.normality == 0.0
