"""The explainer reads what ingest accepted under the configured limits, skips (and counts) what it
cannot read instead of sticking its cursor, and applies `explain.retention_days` on a schedule.

Records go through a real server on loopback into a real ingest.sqlite3; the explainer runs over
real SQLite stores; only the model's reply is scripted."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
from support.cloud_harness import ServerThread, cloud_settings, open_session
from support_explain import PRIOR, ScriptedLlm, event_records
from test_explain_service import REPLIES, RecordingNotifier

from vau.cloud.event_projector import EventProjector
from vau.cloud.explain.service import CURSOR, ExplainerService
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.metrics import CloudMetrics
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.factory import open_storage
from vau.cloud.storage.sqlite_events import SqliteEventRepository as EventStore
from vau.cloud.storage.sqlite_ingest import SqliteIngestLog as IngestStore
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec as edge

RAISED = {"max_tokens_per_frame": 8192}
K = 5000  # > the default max_tokens_per_frame (4096), <= the raised one


def _big_event_bodies(event_id: str) -> list[bytes]:
    """An event whose frame keeps K tokens and whose window lists K frame seqs: only a cloud
    with raised limits accepts them."""
    now = time.time()
    rng = np.random.default_rng(0)
    eff = EffectiveTokens(
        seq=40, t=3.0, wall_time=now, indices=np.arange(K, dtype=np.int64),
        tokens=rng.standard_normal((K, 16)).astype(np.float32),
        distances=np.ones(K, np.float32), patches=80 * 80, grid=(80, 80), keyframe=False,
    )  # fmt: skip
    seqs = (40, *range(10_000, 10_000 + K - 1))
    return [
        edge.event_body(EventUpdate(event_id, EventState.NEW, 2.0, None, 0.7, 2.5, PRIOR), now),
        edge.frame_body(eff, FrameScore(40, 3.0, 0.9, 0.8, None, ()), "fp16", event_id),
        edge.event_body(EventUpdate(event_id, EventState.END, 2.0, 6.0, 0.92, 4.0, PRIOR), now),
        edge.window_body(Window(event_id, 2.0, 6.0, seqs, PRIOR), now),
    ]


def _ingest_with_raised_limits(data: Path) -> None:
    """The big event, then an ordinary one, through a real server run with RAISED limits."""
    server = ServerThread(cloud_settings(data, limits=RAISED))
    try:
        with grpc.insecure_channel(server.target) as channel:
            stream, _ = open_session(channel, "dev-a")
            bodies = _big_event_bodies("ev-big") + [r.raw for r in event_records("ev-ok", 1)]
            for seq, body in enumerate(bodies, start=1):
                stream.send(edge.serialize(edge.record_message("cam-0", 1, seq, body)))
            stream.acks_until("cam-0", len(bodies))
            stream.close()
        assert server.stats()["devices"]["dev-a"]["cam-0"]["accepted"] == len(bodies)
    finally:
        server.stop()


def _service(data: Path, limits: LimitSettings, **settings: float) -> ExplainerService:
    s = ExplainSettings.model_validate({"poll_s": 0.05, "window_wait_s": 0.2, **settings})
    llm = ScriptedLlm(REPLIES)
    storage = open_storage(None, data, 86_400)
    return ExplainerService(
        s, storage, RecordingNotifier(), CloudMetrics().registry, llm=llm, limits=limits
    )


async def _run_until(
    service: ExplainerService, done: Callable[[], bool], timeout: float = 30.0
) -> None:
    projector = EventProjector(service.storage, service.limits, poll_s=0.05)
    await projector.start()
    await service.start()
    try:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await projector.stop()


def _explained(service: ExplainerService) -> list[str]:
    notifier = service.notifier
    assert isinstance(notifier, RecordingNotifier)
    return [event_id for _d, _c, event_id, _f in notifier.explanations]


def _last_tailed_rowid(data: Path) -> int:
    """The rowid of the last record the explainer tails (frames are read by event)."""
    store = IngestStore(data, retention_s=86_400)
    try:
        return max(e.position for e in store.tail(0, ("event", "window", "summary"), 10_000))
    finally:
        store.close()


def test_explainer_with_raised_max_tokens_per_frame_reads_what_ingest_accepted(
    tmp_path: Path,
) -> None:
    # given records only a cloud with raised limits accepts, stored by a real server
    data = tmp_path / "data"
    _ingest_with_raised_limits(data)
    # when the explainer runs with the limits the cloud runs with
    service = _service(data, LimitSettings.model_validate(RAISED))
    asyncio.run(_run_until(service, lambda: len(_explained(service)) >= 2))
    # then both events are explained, nothing was unreadable, the cursor reached the end
    assert sorted(_explained(service)) == ["ev-big", "ev-ok"]
    assert (
        service.metrics.value("vau_cloud_explain_unreadable_records_total", {"reason": "body"}) == 0
    )
    store = EventStore(data)
    try:
        window = store.window(("dev-a", "cam-0", "ev-big"))
        assert window is not None and len(window.frame_seqs) == K
        assert store.cursor(CURSOR) == _last_tailed_rowid(data)
    finally:
        store.close()


def test_explainer_skips_and_counts_a_record_it_cannot_read_and_its_cursor_moves_on(
    tmp_path: Path,
) -> None:
    # given the same records, and an explainer whose limits are lower than ingest's were
    data = tmp_path / "data"
    _ingest_with_raised_limits(data)
    service = _service(data, LimitSettings())
    # when it runs
    asyncio.run(_run_until(service, lambda: len(_explained(service)) >= 2))
    # then the window it cannot read is counted and skipped, and the tail went on past it: the
    # big event is explained without its window (after window_wait_s), the next one normally
    assert sorted(_explained(service)) == ["ev-big", "ev-ok"]
    unreadable = service.metrics.value(
        "vau_cloud_explain_unreadable_records_total", {"reason": "body"}
    )
    assert unreadable == 1
    store = EventStore(data)
    try:
        assert store.cursor(CURSOR) == _last_tailed_rowid(data)
        # windows are the projector's: the server that accepted ev-big (raised limits) projected it
        assert store.window(("dev-a", "cam-0", "ev-ok")) is not None
    finally:
        store.close()


def _rows(data: Path) -> dict[str, int]:
    with sqlite3.connect(data / "events.sqlite3") as db:
        tables = ("events", "windows", "explanations")
        return {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}


def test_explain_retention_days_prunes_the_event_store_on_a_schedule(tmp_path: Path) -> None:
    # given an explained event in a real SQLite event store, and a retention of 1.5 s
    data = tmp_path / "data"
    ingest = IngestStore(data, retention_s=86_400)
    ingest.commit(event_records("ev-1", 1), time.time())
    ingest.close()
    retention_s = 1.5
    service = _service(data, LimitSettings(), retention_days=retention_s / 86_400,
                       retention_check_s=0.2)  # fmt: skip
    seen: dict[str, int] = {}

    def explained_then_pruned() -> bool:
        if not _explained(service):
            return False
        if not seen:
            seen.update(_rows(data))  # just after the explanation: still there
        pruned = service.metrics.value("vau_cloud_event_store_pruned_total", {"table": "events"})
        return pruned >= 1

    started = time.monotonic()
    # when retention passes while the explainer runs
    asyncio.run(_run_until(service, explained_then_pruned))
    took = time.monotonic() - started
    # then the event, its window and its explanation are gone, counted, and nothing re-explained
    assert seen == {"events": 1, "windows": 1, "explanations": 1}
    assert _rows(data) == {"events": 0, "windows": 0, "explanations": 0}
    for table in ("events", "windows", "explanations"):
        labels = {"table": table}
        assert service.metrics.value("vau_cloud_event_store_pruned_total", labels) == 1
    assert service.metrics.value("vau_cloud_event_store_retention_runs_total") >= 2
    assert _explained(service) == ["ev-1"]
    assert retention_s <= took < 15.0
