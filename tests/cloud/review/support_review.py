"""Shared by the review page tests: plain HTTP calls, and an event as the edge ships it (the edge's
own codec over a real Uplink stream), with kept and hot patches that sit in a known region."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from support.cloud_harness import RawStream

from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec as edge

PRIOR = "Known common anomaly types are: 'Fighting', 'Vandalism'. There is one of the anomaly types occurring from 2.0s to 7.0s."  # noqa: E501
GRID = (16, 16)
HOT_BLOCK = tuple(r * 16 + c for r in range(11, 14) for c in range(1, 4))  # lower left, 3x3


def get(url: str, method: str = "GET") -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, body, kind = r.status, r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        status, body, kind = exc.code, exc.read(), exc.headers.get_content_type()
    return status, json.loads(body) if kind == "application/json" else body.decode()


@dataclass(frozen=True)
class ShippedEvent:
    device: str
    camera: str
    event_id: str
    frame_seqs: tuple[int, ...]
    hot: frozenset[int]  # every hot patch of its frames

    @property
    def key(self) -> str:
        return f"{self.device}/{self.camera}/{self.event_id}"


def _frames(event_id: str, now: float) -> list[tuple[int, bytes]]:
    """(frame seq, body) of 11 frames, t 2.0-7.0 s: the score rises and falls; kept patches are
    the lower-left quarter plus a few elsewhere, hot patches a 3x3 block inside it."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(11):
        seq, t = 20 + 2 * i, 2.0 + 0.5 * i
        bump = float(np.exp(-(((t - 4.5) / 1.5) ** 2)))
        quarter = {r * 16 + c for r in range(8, 16) for c in range(0, 8)}
        elsewhere = {int(x) for x in rng.choice(256, 12, replace=False)}
        kept = np.array(sorted(quarter | elsewhere), np.int64)
        hot = HOT_BLOCK[: 3 + (6 if bump > 0.5 else 0)] if bump > 0.2 else ()
        eff = EffectiveTokens(
            seq=seq, t=t, wall_time=now, indices=kept,
            tokens=rng.standard_normal((kept.size, 384)).astype(np.float32),
            distances=np.ones(kept.size, np.float32), patches=256, grid=GRID, keyframe=False,
        )  # fmt: skip
        score = FrameScore(seq, t, min(1.0, 0.1 + bump), 0.1 + 0.85 * bump, 0.05 + 0.9 * bump, hot)
        out.append((seq, edge.frame_body(eff, score, "fp16", event_id)))
    return out


class EdgeStream:
    """One device's Uplink stream, sending what an edge sends; seqs count up per camera."""

    def __init__(self, channel: grpc.Channel, device: str, cameras: tuple[str, ...]) -> None:
        self.device, self.stream = device, RawStream(channel, timeout=120)
        self.stream.send(edge.hello(device, list(cameras), 1, "test"))
        assert self.stream.recv().WhichOneof("body") == "hello_ack"
        self.seq = dict.fromkeys(cameras, 0)

    def send(self, camera: str, *bodies: bytes) -> float:
        """Send records and wait for the cloud's ack of the last; when it came (time.monotonic)."""
        for body in bodies:
            self.seq[camera] += 1
            self.stream.send(edge.record_message(camera, 1, self.seq[camera], body))
        self.stream.acks_until(camera, self.seq[camera])
        return time.monotonic()

    def new_event(self, camera: str, event_id: str) -> float:
        """The event's first record; when the cloud accepted it."""
        now = time.time()
        opened = EventUpdate(event_id, EventState.NEW, 2.0, None, 0.72, 3.0, PRIOR)
        return self.send(camera, edge.event_body(opened, now))

    def end_event(self, camera: str, event_id: str) -> ShippedEvent:
        """Its frames, its end and its window (what ATS picked: every frame here)."""
        now = time.time()
        frames = _frames(event_id, now)
        seqs = tuple(s for s, _ in frames)
        ended = EventUpdate(event_id, EventState.END, 2.0, 7.0, 0.95, 4.5, PRIOR)
        window = Window(event_id, 2.0, 7.0, seqs, PRIOR)
        self.send(
            camera,
            *(b for _, b in frames),
            edge.event_body(ended, now),
            edge.window_body(window, now),
        )
        return ShippedEvent(self.device, camera, event_id, seqs, frozenset(HOT_BLOCK))

    def close(self) -> None:
        self.stream.close()
