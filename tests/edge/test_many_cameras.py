"""Several cameras in one edge process: one shared model stage, per-camera state, fair turns.

Real footage through the real CLI and a real cloud on loopback; the scheduler's fairness on real
decoded frames with a model stage that takes real time.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.procs import EDGE, CloudProcess

from vau.edge import metrics
from vau.edge.analysers import build_analyser
from vau.edge.pipeline import CameraStream, Pipeline
from vau.edge.schedule import Arrival, Feed, fair_batches
from vau.edge.settings import SettingsError, load_settings
from vau.edge.sources import SourceError, open_source, sampled
from vau.edge.synth import make_clip
from vau.edge.types import Frame


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def vau_edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tamper(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "tamper.avi"
    return make_clip(vtest_path, out, "tamper", (8.0, 16.0), 24.0).path


@pytest.fixture(scope="module")
def frames(vtest_path: Path) -> list[Frame]:
    cfg = load_settings().source
    with open_source(cfg, "fair", vtest_path) as src:
        return [f for f, _ in zip(sampled(src, 10.0, "fair"), range(40), strict=False)]


@pytest.mark.slow
def test_two_cameras_in_one_process_raise_separate_events_and_stream_separate_sequences(
    tamper: Path, vtest_path: Path, tmp_path: Path
) -> None:
    """Camera `door` sees a tamper from 8 s to 16 s, camera `yard` the plain scene: one process,
    one model, one uplink stream; the event is door's alone, each camera has its own sequence and
    every record reaches the cloud once."""
    cloud = CloudProcess(tmp_path / "cloud").start()
    out = tmp_path / "out.jsonl"
    try:
        proc = vau_edge(
            *("run", "--source", str(tamper), "--source", str(vtest_path)),
            *("--camera-id", "door", "--camera-id", "yard", "--max-frames", "48"),
            *("--jsonl", str(out), "--cloud", f"127.0.0.1:{cloud.port}"),
            *("--data-dir", str(tmp_path / "edge"), "--device-id", "box"),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        stats = cloud.stats()["devices"]["box"]
    finally:
        cloud.stop()
    recs = records(out)
    frames_per_camera = Counter(r["camera"] for r in recs if r["kind"] == "frame")
    assert frames_per_camera == {"door": 48, "yard": 48}
    for camera in ("door", "yard"):
        seqs = [r["seq"] for r in recs if r["kind"] == "frame" and r["camera"] == camera]
        assert seqs == sorted(seqs) and len(set(seqs)) == 48, f"{camera}: frames out of order"
    ended = [r for r in recs if r["kind"] == "event" and r["state"] == "end"]
    assert ended and {e["camera"] for e in ended} == {"door"}, ended
    assert any(e["start"] < 16.0 and e["end"] > 8.0 for e in ended)
    assert all("camera" in r for r in recs)
    assert set(stats) == {"door", "yard"}, stats
    for camera, got in stats.items():
        assert got["duplicates"] == 0 and got["gaps"] == 0, (camera, got)
        assert got["accepted"] == got["max_seq"] >= 1, (camera, got)
    assert stats["door"]["accepted"] > stats["yard"]["accepted"]  # door's event shipped frames
    assert "camera door:" in proc.stderr and "camera yard:" in proc.stderr  # per-camera summary


def test_a_camera_whose_source_fails_does_not_stop_the_others(
    vtest_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    missing = str(tmp_path / "missing.avi")
    proc = vau_edge(
        *("run", "--dry-run", "--source", missing, "--source", str(vtest_path)),
        *("--max-frames", "4", "--jsonl", str(out), "--log-format", "text"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Counter(r["camera"] for r in records(out)) == {"cam-1": 4}
    assert "camera cam-0 stopped: no such file" in proc.stderr


def test_every_camera_failing_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = vau_edge(
        "run", "--dry-run", "--source", str(tmp_path / "a.avi"), "--source", str(tmp_path / "b.avi")
    )
    assert proc.returncode == 2
    assert "every camera failed" in proc.stderr and "Traceback" not in proc.stderr


def test_camera_ids_must_match_the_sources_one_to_one(vtest_path: Path) -> None:
    v = str(vtest_path)
    proc = vau_edge("run", "--dry-run", "--source", v, "--source", v, "--camera-id", "a")
    assert proc.returncode == 2 and "2 --source but 1 --camera-id" in proc.stderr
    proc = vau_edge("run", "--dry-run", "--source", v, "--source", v, *["--camera-id", "a"] * 2)
    assert proc.returncode == 2 and "must differ" in proc.stderr


def test_camera_table_gives_each_camera_its_own_source_fps_model_and_thresholds(
    tmp_path: Path,
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        "[source]\nfps = 2.0\n[events]\nenter = 0.6\nexit = 0.4\n"
        '[cameras.door]\nsource = "rtsp://door/stream"\nfps = 4.0\nnormality = "models/door"\n'
        'enter = 0.8\n[cameras.yard]\nsource = "0"\n'
    )
    door, yard = load_settings(config).streams()
    assert (door.camera_id, door.source.uri, door.source.fps) == ("door", "rtsp://door/stream", 4)
    assert door.normality.path == Path("models/door") and door.events.enter == 0.8
    assert (yard.camera_id, yard.source.uri, yard.source.fps) == ("yard", "0", 2.0)
    assert yard.normality.path is None and yard.events.enter == 0.6
    assert door.cameras == {} == yard.cameras


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"bad id!": {"source": "0"}}, "must be 1-64 letters"),
        ({"a": {"source": "0", "enter": 0.3}}, "exit (0.4) must be below enter (0.3)"),
    ],
)
def test_bad_camera_tables_are_refused_naming_the_key(
    table: dict[str, dict[str, Any]], words: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(words)):
        load_settings(overrides={"cameras": table}).streams()


def test_one_normality_path_for_several_cameras_is_refused() -> None:
    with pytest.raises(SettingsError, match=re.escape("cameras.<id>.normality")):
        cameras = {"a": {"source": "0"}, "b": {"source": "1"}}
        load_settings(overrides={"normality": {"path": "m"}, "cameras": cameras})


def _paced(frames: list[Frame], every_s: float) -> Iterator[Frame]:
    for frame in frames:
        time.sleep(every_s)
        yield frame


def test_a_busy_camera_cannot_starve_one_that_has_a_frame_now_and_then(
    frames: list[Frame],
) -> None:
    """Overload: camera 0 always has a frame ready (a file), camera 1 one every 0.1 s, and the
    model stage takes 30 ms a frame. Each of camera 1's frames is served after at most two of
    camera 0's (the one in progress when it arrived, and one turn), while camera 0 goes on."""
    ready, stop = threading.Event(), threading.Event()
    busy = Feed(0, "busy", iter(frames * 3), ready)
    sparse = Feed(1, "sparse", _paced(frames[:8], 0.1), ready)
    served: list[tuple[int, float, float]] = []  # camera, arrived, served
    for batch in fair_batches([busy, sparse], ready, 1, 1, stop):
        served.append((batch[0].camera, batch[0].arrived, time.monotonic()))
        time.sleep(0.03)  # the model stage's time
        if sparse.ended:
            break
    busy.stop()
    sparse.stop()
    waits = [
        sum(1 for c, _, t in served if c == 0 and arrived < t < at)
        for cam, arrived, at in served
        if cam == 1
    ]
    assert len(waits) == 8, "every frame of the sparse camera served"
    assert max(waits) <= 2, waits
    assert sum(1 for c, _, _ in served if c == 0) > 8, "the busy camera is served meanwhile"


class AlwaysReady:
    """A camera that always has its next frame ready (a file read ahead), without a thread, so
    the round robin itself is what the test sees."""

    def __init__(self, index: int, frames: list[Frame]) -> None:
        self.index = index
        self._frames = iter(frames)
        self.ended = False

    def poll(self) -> Arrival | None:
        frame = next(self._frames, None)
        self.ended = frame is None
        return None if frame is None else Arrival(self.index, frame, time.monotonic())


def test_cameras_that_always_have_frames_take_turns(frames: list[Frame]) -> None:
    feeds = [AlwaysReady(i, frames[:10]) for i in range(3)]
    batches = list(fair_batches(feeds, threading.Event(), 1, 1, threading.Event()))
    served = [a.camera for batch in batches for a in batch]
    assert served == [0, 1, 2] * 10


def test_batches_of_two_over_three_cameras_rotate_who_goes_first(frames: list[Frame]) -> None:
    feeds = [AlwaysReady(i, frames[:4]) for i in range(3)]
    batches = list(fair_batches(feeds, threading.Event(), 2, 2, threading.Event()))
    firsts = [[a.camera for a in batch] for batch in batches[:3]]
    assert firsts == [[0, 1], [1, 2], [2, 0]]


def test_a_batch_mixes_cameras_but_keeps_each_cameras_frames_in_order(frames: list[Frame]) -> None:
    ready, stop = threading.Event(), threading.Event()
    feeds = [Feed(i, f"mix{i}", iter(frames[:6]), ready) for i in range(2)]
    time.sleep(0.2)  # let both queues fill
    batches = list(fair_batches(feeds, ready, 4, 4, stop))
    assert any(len({a.camera for a in b}) == 2 for b in batches)
    for camera in (0, 1):
        seqs = [a.frame.seq for b in batches for a in b if a.camera == camera]
        assert seqs == [f.seq for f in frames[:6]]


def _failing() -> Iterator[Frame]:
    raise SourceError("no such file x.avi")
    yield  # a generator


def test_a_failed_camera_is_counted_and_the_pipeline_serves_the_rest(
    frames: list[Frame], tmp_path: Path
) -> None:
    s = load_settings(overrides={"cameras": {"ok": {"source": "0"}, "gone": {"source": "1"}}})
    ok, gone = s.streams()
    analyser = build_analyser(s)
    pipeline = Pipeline(s, analyser, cameras=[CameraStream(ok, []), CameraStream(gone, [])])
    stats = pipeline.run_all([iter(frames[:3]), _failing()])
    analyser.close()
    assert stats.frames == 3 == pipeline.cameras[0].stats.frames
    assert pipeline.cameras[1].stats.frames == 0
    failures = metrics.REGISTRY.get_sample_value(
        "vau_edge_camera_failures_total", {"camera": "gone"}
    )
    assert failures == 1
