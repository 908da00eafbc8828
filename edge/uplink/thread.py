"""Runs the uplink's event loop beside the (synchronous) pipeline, and drains it at the end."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from vau.edge.uplink.client import Uplink
from vau.edge.uplink.outbox import Outbox

log = logging.getLogger(__name__)


class UplinkThread:
    def __init__(self, uplink: Uplink, outbox: Outbox) -> None:
        self._uplink = uplink
        self._outbox = outbox
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._main, name="vau-uplink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._uplink.wake()

    def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox holds nothing unacked, up to `timeout_s`; True when drained."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._outbox.stats().pending == 0:
                return True
            time.sleep(0.1)
        return self._outbox.stats().pending == 0

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            log.warning("uplink thread did not stop within 10 s")

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._uplink.run(self._stop))
        except Exception:  # the uplink must not die silently
            log.exception("uplink stopped by an unexpected error")
        finally:
            self._loop.close()
