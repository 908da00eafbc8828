"""`ReviewPage`: the review page's HTTP server on the cloud server's event loop.

`ReviewPage.bind(host, port, ...)` binds the socket at once (port 0 picks a free one), so a port in
use is a `ReviewBindError` before anything starts; `await start()` serves; `await stop()` closes
the listener, the open requests and the reader.
"""

from __future__ import annotations

import contextlib
import logging
import socket

from aiohttp import web
from prometheus_client import CollectorRegistry

from vau.cloud.review.app import MISSING_CHART, build_app, chart_missing
from vau.cloud.review.reading import ReviewReader
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.factory import Storage

log = logging.getLogger("vau.cloud.review")
SHUTDOWN_S = 2.0  # open requests get this long when the server stops


class ReviewBindError(Exception):
    """The page's address cannot be bound; the message says what to change."""


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ReviewBindError(f"cannot serve the review page on {host}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ReviewBindError(
            f"cannot serve the review page on {host}:{port} ({exc.strerror or exc}); "
            "pick another --http-port (0 = any free one)"
        ) from None
    sock.setblocking(False)
    return sock


class ReviewPage:
    def __init__(
        self,
        sock: socket.socket,
        storage: Storage,
        registry: CollectorRegistry,
        limits: LimitSettings,
    ) -> None:
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self.reader = ReviewReader(storage, limits)  # the limits ingest stored records with
        self._runner = web.AppRunner(
            build_app(self.reader, registry), access_log=None, shutdown_timeout=SHUTDOWN_S
        )
        self._started = False

    @classmethod
    def bind(
        cls,
        host: str,
        port: int,
        storage: Storage,
        registry: CollectorRegistry,
        limits: LimitSettings,
    ) -> ReviewPage:
        return cls(_listen(host, port), storage, registry, limits)

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        self._started = True
        log.info("review page on %s", self.url)
        if chart_missing():
            log.warning("%s", MISSING_CHART)

    async def stop(self) -> None:
        """Close the listener, the open requests and the reader; safe before start()."""
        if self._started:
            await self._runner.cleanup()
        with contextlib.suppress(OSError):
            self._sock.close()
        await self.reader.close()
