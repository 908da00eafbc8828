"""Frame sources on real video: MJPG files written here, an HTTP stream on loopback, vtest.avi."""

from __future__ import annotations

import functools
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from vau.edge import capture, sources
from vau.edge.metrics import REGISTRY
from vau.edge.settings import SourceSettings
from vau.edge.sources import (
    FrameBuffer,
    Sampler,
    SourceCancelledError,
    SourceError,
    SourceKind,
    backoff_delay,
    classify,
    open_source,
    redact_uri,
    sampled,
)
from vau.edge.types import Frame

W, H, FPS, FRAMES = 64, 48, 10.0, 20


def write_clip(path: Path, frames: int = FRAMES, noise: bool = False) -> Path:
    """A real MJPG .avi at FPS; frame i has brightness about i * 10 (plus noise if asked)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (W, H))
    rng = np.random.default_rng(0)
    for i in range(frames):
        image = np.full((H, W, 3), i * 10, np.uint8)
        if noise:  # incompressible, so the file's second half holds frames, not header
            image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        writer.write(image)
    writer.release()
    return path


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fake_frame(seq: int) -> Frame:
    return Frame(seq=seq, t=seq / 30, wall_time=0.0, image=np.zeros((2, 2, 3), np.uint8))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi")


@pytest.fixture
def camera() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_files(root: Path) -> ThreadingHTTPServer:
    """A real HTTP server on loopback serving `root`; stop it with stop_server."""
    handler = functools.partial(QuietFiles, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """(folder, port) of a loopback HTTP server serving that folder."""
    root = tmp_path / "www"
    root.mkdir()
    server = serve_files(root)
    yield root, int(server.server_address[1])
    stop_server(server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_file_source_reads_every_frame_when_not_sampled(clip: Path, camera: str) -> None:
    before = metric("vau_edge_frames_read_total", camera=camera)
    with open_source(SourceSettings(uri=str(clip)), camera) as source:
        assert (source.live, source.fps, source.size) == (False, FPS, (W, H))
        frames = list(source)
    assert [f.seq for f in frames] == list(range(FRAMES))
    assert [f.t for f in frames] == pytest.approx([i / FPS for i in range(FRAMES)])
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    brightness = [float(f.image.mean()) for f in frames]
    assert brightness == sorted(brightness)  # decoded in file order
    assert abs(frames[-1].wall_time - time.time()) < 60
    assert metric("vau_edge_frames_read_total", camera=camera) - before == FRAMES


def test_file_source_close_is_idempotent_and_ends_iteration(clip: Path, camera: str) -> None:
    source = open_source(SourceSettings(uri=str(clip)), camera)
    next(source)
    source.close()
    source.close()
    assert list(source) == []


def test_open_source_raises_when_file_missing(tmp_path: Path, camera: str) -> None:
    with pytest.raises(SourceError, match=r"no such file .*missing\.avi; check --source"):
        open_source(SourceSettings(uri=str(tmp_path / "missing.avi")), camera)


def test_open_source_raises_when_file_is_not_a_video(tmp_path: Path, camera: str) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(random.Random(1).randbytes(20_000))
    with pytest.raises(SourceError, match=r"cannot decode .*not a video OpenCV can read"):
        open_source(SourceSettings(uri=str(junk)), camera)


def test_open_source_raises_when_video_has_no_frames(tmp_path: Path, camera: str) -> None:
    empty = write_clip(tmp_path / "empty.avi", frames=0)
    with pytest.raises(SourceError, match="cannot decode"):
        open_source(SourceSettings(uri=str(empty)), camera)


def test_file_source_stops_with_decode_drop_when_file_truncated(
    tmp_path: Path, camera: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_clip(tmp_path / "noise.avi", noise=True).read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    with open_source(SourceSettings(uri=str(truncated)), camera) as source:
        frames = list(source)
    assert 0 < len(frames) < FRAMES
    assert metric("vau_edge_frames_dropped_total", camera=camera, reason="decode") == 1
    assert "could not be decoded" in caplog.text


def test_open_source_raises_quickly_when_camera_index_missing(camera: str) -> None:
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"camera 57 could not be opened.*v4l2-ctl"):
        open_source(SourceSettings(uri="57"), camera)
    assert time.monotonic() - start < 5.0


def test_classify_tells_cameras_streams_samples_and_files_apart(tmp_path: Path) -> None:
    assert classify("0") == sources.SourceSpec(SourceKind.CAMERA, 0)
    assert classify(" 12 ").kind is SourceKind.CAMERA
    for url in ("rtsp://cam/1", "RTSPS://cam/1", "http://cam/mjpg", "https://cam/x.m3u8"):
        assert classify(url).kind is SourceKind.STREAM
    assert classify("sample", tmp_path / "vtest.avi").target == str(tmp_path / "vtest.avi")
    assert classify("clips/a.mp4").kind is SourceKind.FILE
    with pytest.raises(SourceError, match="vau-models pull"):
        classify("sample")


def test_describe_strips_credentials_from_urls() -> None:
    assert redact_uri("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://10.0.0.5:554/live"
    assert (
        redact_uri("http://u@[::1]:8080/v?res=hd&token=abc")
        == "http://[::1]:8080/v?res=hd&token=***"
    )
    assert "s3cret" not in classify("rtsp://admin:s3cret@cam/live").describe()
    assert classify("/videos/a.mp4").describe() == "file /videos/a.mp4"


def test_sampler_keeps_every_fifth_frame_of_10fps_at_2fps() -> None:
    runs = []
    for _ in range(2):
        sampler = Sampler(2.0, native_fps=10.0)
        runs.append([i for i in range(100) if sampler.keep(i * 0.1)])
        assert (sampler.kept, sampler.skipped) == (20, 80)
    assert runs[0] == runs[1] == list(range(0, 100, 5))


def test_sampler_keeps_all_when_target_not_below_native() -> None:
    sampler = Sampler(30.0, native_fps=25.0)
    assert all(sampler.keep(i / 25) for i in range(50))


def test_sampler_does_not_burst_after_a_gap() -> None:
    sampler = Sampler(2.0)
    times = [i / 30 for i in range(30)] + [10 + i / 30 for i in range(30)]  # 9 s outage
    kept = [t for t in times if sampler.keep(t)]
    assert kept == pytest.approx([0.0, 0.5, 10.0, 10.5])


def test_sampled_file_source_counts_sampling_drops(clip: Path, camera: str) -> None:
    with open_source(SourceSettings(uri=str(clip), fps=2.0), camera) as source:
        frames = list(sampled(source, 2.0, camera))
    assert [f.seq for f in frames] == [0, 5, 10, 15]
    assert [f.t for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert metric("vau_edge_frames_dropped_total", camera=camera, reason="sampling") == 16


def test_frame_buffer_keeps_newest_and_counts_drops_with_slow_consumer() -> None:
    buffer, produced, received, sizes = FrameBuffer(3), 300, [], []

    def produce() -> None:
        for seq in range(produced):
            buffer.put(fake_frame(seq))
            sizes.append(len(buffer))
            time.sleep(0.0002)
        buffer.close()

    thread = threading.Thread(target=produce)
    thread.start()
    while (frame := buffer.get(timeout=5)) is not None:
        received.append(frame.seq)
        time.sleep(0.003)
    thread.join()
    assert max(sizes) <= 3
    assert buffer.dropped > 0
    assert len(received) + buffer.dropped == produced
    assert received == sorted(received) and received[-1] == produced - 1


def test_frame_buffer_raises_reader_error_after_draining() -> None:
    buffer = FrameBuffer(2)
    buffer.put(fake_frame(0))
    buffer.close(SourceError("gone"))
    assert buffer.put(fake_frame(1)) is False
    assert (frame := buffer.get()) is not None and frame.seq == 0
    with pytest.raises(SourceError, match="gone"):
        buffer.get()


def test_backoff_delay_doubles_caps_and_jitters_within_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        base = min(8.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 8.0, rng) for _ in range(50)]
        assert all(0.8 * base <= d <= min(1.2 * base, 8.0) for d in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(10_000, 0.5, 8.0, rng) <= 8.0


def test_live_source_gives_up_after_reconnect_attempts_on_closed_port(
    camera: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = SourceSettings(
        uri=f"http://user:pw@127.0.0.1:{free_port()}/stream",
        reconnect_attempts=2,
        reconnect_initial_s=0.01,
        reconnect_max_s=0.02,
    )
    start = time.monotonic()
    with pytest.raises(SourceError, match="unreachable after 2 reconnect") as err:
        open_source(cfg, camera)
    assert "pw" not in str(err.value) and "user:pw" not in caplog.text
    assert "reconnect attempt 1 failed" in caplog.text
    assert time.monotonic() - start < 5.0
    assert metric("vau_edge_source_reconnects_total", camera=camera) == 2


def test_live_http_stream_reconnects_at_end_and_keeps_time_monotonic(
    http_root: tuple[Path, int], camera: str
) -> None:
    root, port = http_root
    write_clip(root / "cam.avi")
    cfg = SourceSettings(uri=f"http://viewer:pw@127.0.0.1:{port}/cam.avi", buffer_frames=2)
    cfg = cfg.model_copy(update={"reconnect_initial_s": 0.01, "reconnect_max_s": 0.02})
    with open_source(cfg, camera) as source:
        assert source.live and source.size == (W, H)
        assert source.describe() == f"stream http://127.0.0.1:{port}/cam.avi"
        frames = [next(source) for _ in range(3 * FRAMES)]  # more than one pass of the clip
        assert metric("vau_edge_source_up", camera=camera) == 1
    seqs, times = [f.seq for f in frames], [f.t for f in frames]
    assert seqs == sorted(set(seqs)) and times == sorted(times)
    assert metric("vau_edge_source_reconnects_total", camera=camera) >= 1
    read = metric("vau_edge_frames_read_total", camera=camera)
    overrun = metric("vau_edge_frames_dropped_total", camera=camera, reason="overrun")
    assert read >= seqs[-1] + 1
    assert read - len(frames) - 2 <= overrun <= read - len(frames)  # <= 2 left in the buffer


def test_live_stream_raises_to_consumer_when_server_goes_away(tmp_path: Path, camera: str) -> None:
    write_clip(tmp_path / "cam.avi")
    server = serve_files(tmp_path)
    uri = f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
    cfg = SourceSettings(
        uri=uri, reconnect_attempts=2, reconnect_initial_s=0.01, reconnect_max_s=0.02
    )
    with open_source(cfg, camera) as source:
        next(source)
        stop_server(server)
        with pytest.raises(SourceError, match="unreachable after 2 reconnect"):
            for _ in range(10_000):  # at most one pass of the clip is left, then the error
                next(source)
    assert metric("vau_edge_source_up", camera=camera) == 0


def test_live_source_close_stops_reader_thread_promptly(
    http_root: tuple[Path, int], camera: str
) -> None:
    root, port = http_root
    write_clip(root / "cam.avi")
    source = open_source(SourceSettings(uri=f"http://127.0.0.1:{port}/cam.avi"), camera)
    next(source)
    assert isinstance(source, sources.LiveSource)
    reader = source._thread
    start = time.monotonic()
    source.close()
    source.close()
    assert time.monotonic() - start < 2.0
    assert not reader.is_alive()
    assert list(source) == []
    assert metric("vau_edge_source_up", camera=camera) == 0


def test_live_source_close_is_bounded_when_a_read_is_blocked(
    tmp_path: Path, camera: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_clip(tmp_path / "noise.avi", noise=True).read_bytes()
    release = threading.Event()

    class Stalling(BaseHTTPRequestHandler):  # sends half the video, then goes silent
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            release.wait(10)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    monkeypatch.setattr(capture, "READ_TIMEOUT_S", 0.5)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
        source = open_source(SourceSettings(uri=uri), camera)
        assert isinstance(source, sources.LiveSource)
        next(source)
        time.sleep(0.3)  # let the reader drain the half file and block on the socket
        start = time.monotonic()
        source.close()
        assert time.monotonic() - start < 0.5 + 1.0 + 0.5
        assert not source._thread.is_alive()
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_vtest_sampled_at_2fps_gives_half_second_steps(camera: str, vtest_path: Path) -> None:
    with open_source(SourceSettings(uri=str(vtest_path)), camera) as source:
        assert source.size == (768, 576) and source.fps == pytest.approx(10.0)
        frames = list(sampled(source, 2.0, camera))
    assert len(frames) in (159, 160)
    assert np.diff([f.t for f in frames]) == pytest.approx(0.5)


def test_live_source_first_connect_gives_up_after_its_timeout_with_the_fix(camera: str) -> None:
    """A mistyped URL is a user error: with unlimited reconnects the first connection still ends."""
    cfg = SourceSettings(
        uri=f"rtsp://user:pw@127.0.0.1:{free_port()}/x",
        first_connect_timeout_s=0.6,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.1,
    )
    assert cfg.reconnect_attempts == 0  # the default: a stream that once worked retries forever
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"no connection within 0\.6 s .*check the URL") as err:
        open_source(cfg, camera)
    assert 0.6 <= time.monotonic() - start < 3.0
    assert "pw" not in str(err.value) and "\n" not in str(err.value)


def test_open_source_cancelled_promptly_when_stop_is_set_while_connecting(camera: str) -> None:
    cfg = SourceSettings(uri=f"rtsp://127.0.0.1:{free_port()}/x", reconnect_initial_s=5.0)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    with pytest.raises(SourceCancelledError, match="stopped while connecting"):
        open_source(cfg, camera, stop=stop)
    assert time.monotonic() - start < 0.3 + 1.0


def test_live_source_ends_frames_promptly_when_stop_is_set_while_reconnecting(
    tmp_path: Path, camera: str
) -> None:
    write_clip(tmp_path / "cam.avi")
    server = serve_files(tmp_path)
    cfg = SourceSettings(uri=f"http://127.0.0.1:{server.server_address[1]}/cam.avi")
    cfg = cfg.model_copy(update={"reconnect_initial_s": 5.0, "reconnect_max_s": 5.0})
    stop = threading.Event()
    with open_source(cfg, camera, stop=stop) as source:
        next(source)
        stop_server(server)  # the rest of the clip is read, then it reconnects (unlimited)
        deadline = time.monotonic() + 10
        while metric("vau_edge_source_up", camera=camera) == 1:  # 0 while reconnecting
            assert time.monotonic() < deadline, "never started reconnecting"
            time.sleep(0.05)
        stop.set()
        start = time.monotonic()
        rest = list(source)  # at most the frames already buffered, then StopIteration
        assert time.monotonic() - start < 1.0 and len(rest) <= cfg.buffer_frames
