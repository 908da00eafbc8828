"""A TCP fault proxy on loopback for reliability tests: cut, stall, delay, slice, and capture.

`FaultProxy(target_port)` listens on 127.0.0.1 (port 0 = any free one) and forwards each connection
to the target. While `down`, it resets every connection and refuses new ones (a cut link); `stall`
holds bytes without closing (a dead peer behind a live socket); `delay_s` adds latency per chunk;
`slice_bytes` forwards in small pieces (framing must not depend on read sizes). Every byte sent by
clients is kept in `captured` (for the P1 check: no image bytes leave the edge).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.down = False
        self.stall = False
        self.delay_s = 0.0
        self.slice_bytes = 0
        self.captured = bytearray()
        self.connections = 0
        self.port = 0

    def start(self) -> FaultProxy:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `restore()`."""
        self.down = True
        asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop).result(10)

    def restore(self) -> None:
        self.down = False
        self.stall = False

    def close(self) -> None:
        async def shutdown() -> None:
            await self._reset_all()
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _reset_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer, capture=True),
            self._pipe(up_reader, writer, capture=False),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capture: bool
    ) -> None:
        while not reader.at_eof():
            data = await reader.read(65536)
            if not data or self.down:
                break
            while self.stall and not self.down:
                await asyncio.sleep(0.05)
            if capture:
                self.captured += data
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            step = self.slice_bytes or len(data)
            for i in range(0, len(data), step):
                writer.write(data[i : i + step])
                await writer.drain()
        writer.transport.abort()
