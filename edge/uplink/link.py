"""The uplink in one place, opened and closed together: outbox, uplink thread and one sink per
camera. Every camera of the device shares the outbox (sequences are per camera) and one stream."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from vau.edge.settings import EdgeSettings
from vau.edge.uplink.channel import check
from vau.edge.uplink.client import Uplink
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.sink import UplinkSink
from vau.edge.uplink.thread import UplinkThread

log = logging.getLogger(__name__)


class CloudLink:
    def __init__(self, settings: EdgeSettings, cameras: Sequence[str] = ()) -> None:
        cfg = settings.uplink
        cameras = list(cameras) or [settings.camera_id]
        self._cfg = cfg
        check(cfg)  # a wrong address or certificate path fails here, not in the uplink thread
        self.outbox = Outbox(cfg.data_dir, cfg.outbox_max_bytes, cfg.ttl_s)
        uplink = Uplink(cfg, settings.device_id, cameras, self.outbox)
        self._thread = UplinkThread(uplink, self.outbox)
        self.sinks = {c: UplinkSink(cfg, c, self.outbox, self._thread.wake) for c in cameras}
        self._thread.start()
        log.info(
            "uplink to %s as device %s (%s); outbox %s (epoch %d, %d records pending)",
            cfg.cloud, settings.device_id, ", ".join(cameras), cfg.data_dir, self.outbox.epoch,
            self.outbox.stats().pending,
        )  # fmt: skip

    def finish(self) -> bool:
        """Flush, wait up to drain_timeout_s for every ack, stop; True when nothing is left."""
        for sink in self.sinks.values():
            sink.close()
        drained = self._thread.drain(self._cfg.drain_timeout_s)
        self._thread.stop()
        stats = self.outbox.stats()
        self.outbox.close()
        if drained:
            log.info("uplink drained: %d records acked in total", stats.acked)
        else:
            log.warning(
                "uplink not drained after %.0fs: %d records stay in the outbox for the next run",
                self._cfg.drain_timeout_s, stats.pending,
            )  # fmt: skip
        return drained
