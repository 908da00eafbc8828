"""Test harness for the cloud ingest: a real server on its own event loop in a thread, and a raw
client that speaks vau.v1 directly with the synchronous gRPC API (so it can send any bytes)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np

from vau.cloud.codec import FULL_METHOD
from vau.cloud.server import CloudServer, create_server
from vau.cloud.settings import CloudSettings, load_settings
from vau.common.tokens import TokenDType, encode_tokens
from vau.protos.v1 import uplink_pb2 as pb

T = TypeVar("T")
_DTYPES = {"fp16": pb.DTYPE_FLOAT16, "int8": pb.DTYPE_INT8, "fp32": pb.DTYPE_FLOAT32}


def cloud_settings(data_dir: Path, **overrides: Any) -> CloudSettings:
    """Loopback, this data dir; the language model stays off unless a test turns it on."""
    base = {"listen": "127.0.0.1:0", "data_dir": data_dir, "explain": {"enabled": False}}
    return load_settings(None, {**base, **overrides})


class ServerThread:
    """A CloudServer serving on a private event loop in a daemon thread."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server, self.port = self.call(self._start())
        self.stopped = False

    async def _start(self) -> tuple[CloudServer, int]:
        server, port = create_server(self.settings)
        await server.start()
        return server, port

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.server.metrics.value(name, labels)

    def stats(self) -> dict[str, Any]:
        return self.call(self.server.store.stats())

    def stop(self, grace: float = 0.5) -> None:
        if not self.stopped:
            self.stopped = True
            self.call(self.server.shutdown(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


_CLOSE = object()


class RawStream:
    """One Uplink.Stream call: send EdgeMessages (or raw bytes), read CloudMessages."""

    def __init__(
        self,
        channel: grpc.Channel,
        metadata: Sequence[tuple[str, str]] | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._q: queue.Queue[object] = queue.Queue()
        method = channel.stream_stream(
            FULL_METHOD, request_serializer=None, response_deserializer=pb.CloudMessage.FromString
        )
        self.call = method(iter(self._q.get, _CLOSE), metadata=metadata, timeout=timeout)
        self.acked: dict[str, int] = {}  # the highest ack read so far, per camera

    def send(self, msg: pb.EdgeMessage | bytes) -> None:
        self._q.put(msg if isinstance(msg, bytes) else msg.SerializeToString())

    def recv(self) -> pb.CloudMessage:
        msg: pb.CloudMessage = next(self.call)
        if msg.WhichOneof("body") == "ack":
            self.acked[msg.ack.camera] = max(self.acked.get(msg.ack.camera, 0), msg.ack.seq)
        return msg

    def close(self) -> None:
        self._q.put(_CLOSE)

    def until_error(self) -> tuple[grpc.RpcError, list[pb.CloudMessage]]:
        """Read every remaining message until the call fails; the error and what came first."""
        seen: list[pb.CloudMessage] = []
        try:
            for msg in self.call:
                seen.append(msg)
        except grpc.RpcError as exc:
            return exc, seen
        raise AssertionError(f"stream ended without an error after {seen}")

    def trailing(self) -> dict[str, str]:
        return {k: v for k, v in (self.call.trailing_metadata() or ())}

    def acks_until(self, camera: str, seq: int) -> list[pb.CloudMessage]:
        """Read until an Ack for (camera, >= seq) arrives; every message read."""
        seen: list[pb.CloudMessage] = []
        while self.acked.get(camera, 0) < seq:
            seen.append(self.recv())
        return seen


def hello(device: str, cameras: Sequence[str] = ("cam-0",), epoch: int = 1) -> pb.EdgeMessage:
    return pb.EdgeMessage(
        hello=pb.Hello(device_id=device, cameras=list(cameras), epoch=epoch, agent_version="t")
    )


def frame(
    camera: str = "cam-0",
    seq: int = 1,
    epoch: int = 1,
    k: int = 4,
    c: int = 8,
    dtype: TokenDType = "fp16",
    capture_time: float | None = None,
) -> pb.EdgeMessage:
    rng = np.random.default_rng(seq)
    enc = encode_tokens(rng.standard_normal((k, c)).astype(np.float32), dtype)
    tokens = pb.FrameTokens(
        frame_seq=seq, dtype=_DTYPES[dtype], shape=[k, c], tokens=enc.data, scales=enc.scales,
        indices=list(range(0, 2 * k, 2)), grid_rows=16, grid_cols=16, score=0.25, smoothed=0.2,
    )  # fmt: skip
    record = pb.Record(
        camera=camera, epoch=epoch, seq=seq, capture_time=capture_time or time.time(),
        t=seq * 0.5, frame=tokens,
    )  # fmt: skip
    return pb.EdgeMessage(record=record)


def event(camera: str = "cam-0", seq: int = 1, epoch: int = 1) -> pb.EdgeMessage:
    change = pb.EventChange(
        event_id="ev-1", state=pb.EVENT_STATE_NEW, start=1.0, peak=0.8, peak_t=1.5,
        prior="Known common anomaly types are: Fighting.",
    )  # fmt: skip
    record = pb.Record(
        camera=camera, epoch=epoch, seq=seq, capture_time=time.time(), t=2.0, event=change
    )
    return pb.EdgeMessage(record=record)


def open_session(
    channel: grpc.Channel,
    device: str,
    cameras: Sequence[str] = ("cam-0",),
    epoch: int = 1,
    metadata: Sequence[tuple[str, str]] | None = None,
) -> tuple[RawStream, pb.HelloAck]:
    """A stream past its Hello: the stream and the server's HelloAck."""
    stream = RawStream(channel, metadata)
    stream.send(hello(device, cameras, epoch))
    first = stream.recv()
    assert first.WhichOneof("body") == "hello_ack", first
    return stream, first.hello_ack


def send_frames(stream: RawStream, camera: str, seqs: Sequence[int], epoch: int = 1) -> list[Any]:
    """Send frames for `seqs` and read until the last is acked; the acks seen."""
    for seq in seqs:
        stream.send(frame(camera, seq, epoch))
    seen = stream.acks_until(camera, max(seqs))
    return [m.ack for m in seen if m.WhichOneof("body") == "ack"]


def channel_to(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch
