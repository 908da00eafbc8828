"""The service end to end: edge-encoded records in a real ingest.sqlite3 -> event projector ->
event store -> explanation -> a recording Notifier; a restart neither repeats nor loses work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support_explain import ScriptedLlm, event_records

from vau.cloud.event_projector import EventProjector
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.service import ExplainerService
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.metrics import CloudMetrics
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.event_repository import StoredEvent
from vau.cloud.storage.factory import open_storage
from vau.cloud.storage.sqlite_events import SqliteEventRepository as EventStore
from vau.cloud.storage.sqlite_ingest import SqliteIngestLog as IngestStore

REPLIES = ["Anomaly on cam-0", "The score peaked at 0.92 at 4.0s in the lower left."]


class RecordingNotifier:
    def __init__(self) -> None:
        self.explanations: list[tuple[str, str, str, dict[str, Any]]] = []

    async def event(self, device: str, camera: str, event_id: str, f: Mapping[str, Any]) -> None:
        pass

    async def explanation(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        self.explanations.append((device, camera, event_id, dict(fields)))

    async def device_status(self, device: str, connected: bool) -> None:
        pass


async def _run_until(service: ExplainerService, notifier: RecordingNotifier, n: int) -> None:
    """Run the explainer with the event projector that feeds it (as the server does)."""
    projector = EventProjector(service.storage, service.limits, poll_s=0.05)
    await projector.start()
    await service.start()
    try:
        deadline = time.monotonic() + 20
        while len(notifier.explanations) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # would a duplicate follow?
    finally:
        await service.stop()
        await projector.stop()


def _service(data: Path, notifier: RecordingNotifier, llm: ScriptedLlm) -> ExplainerService:
    s = ExplainSettings(poll_s=0.05)
    registry = CloudMetrics().registry
    storage = open_storage(None, data, 86_400)
    return ExplainerService(s, storage, notifier, registry, llm=llm, limits=LimitSettings())


def test_service_when_event_ends_with_window_then_one_explanation_each(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = IngestStore(data, retention_s=86400)
    ingest.commit(event_records("ev-1", 1), time.time())
    notifier, llm = RecordingNotifier(), ScriptedLlm(REPLIES)
    asyncio.run(_run_until(_service(data, notifier, llm), notifier, 1))
    assert len(notifier.explanations) == 1
    device, camera, event_id, fields = notifier.explanations[0]
    assert (device, camera, event_id) == ("dev-a", "cam-0", "ev-1")
    e = Explanation.model_validate(fields)
    assert (e.start, e.end, e.anomaly) == (2.0, 6.0, True)
    assert not e.fallback and not e.visual_tokens
    prompt = llm.prompts[0][1]["content"]
    assert "lower left (100%)" in prompt and "3 frames were sent" in prompt
    assert "against 0.10 before" in prompt  # the score summary before the event

    # restart: nothing repeated; a new event after the restart is explained
    ingest.commit(event_records("ev-2", 100), time.time())
    ingest.close()
    notifier2 = RecordingNotifier()
    asyncio.run(_run_until(_service(data, notifier2, ScriptedLlm(REPLIES)), notifier2, 1))
    assert [x[2] for x in notifier2.explanations] == ["ev-2"]
    store = EventStore(data)
    assert store.explanation(("dev-a", "cam-0", "ev-1")) == fields
    assert {e.event_id for e in store.events()} == {"ev-1", "ev-2"}
    store.close()


def test_service_when_frames_carry_hot_patches_then_evidence_names_the_hot_region(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    ingest = IngestStore(data, retention_s=86400)
    upper_right = (0 * 16 + 15, 1 * 16 + 14, 2 * 16 + 13)  # changed patches stay lower left
    ingest.commit(event_records("ev-1", 1, hot=upper_right), time.time())
    ingest.close()
    notifier, llm = RecordingNotifier(), ScriptedLlm(REPLIES)
    asyncio.run(_run_until(_service(data, notifier, llm), notifier, 1))
    prompt = llm.prompts[0][1]["content"]
    assert "most anomalous patches were in the upper right (100%)" in prompt
    assert "lower left" not in prompt and "3 frames were sent" in prompt


def _prompt_for(data: Path, event_id: str, seq: int, hot: tuple[int, ...]) -> str:
    """Store one event's records, run the service until it is explained, return the prompt."""
    ingest = IngestStore(data, retention_s=86400)
    ingest.commit(event_records(event_id, seq, hot=hot), time.time())
    ingest.close()
    notifier, llm = RecordingNotifier(), ScriptedLlm(REPLIES)
    asyncio.run(_run_until(_service(data, notifier, llm), notifier, 1))
    return str(llm.prompts[0][1]["content"])


def test_service_when_the_camera_had_an_event_in_the_same_place_then_evidence_says_so(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    upper_right = (0 * 16 + 15, 1 * 16 + 14, 2 * 16 + 13)
    first = _prompt_for(data, "ev-1", 1, upper_right)
    assert "Nothing similar happened earlier on this camera." in first
    second = _prompt_for(data, "ev-2", 100, upper_right)
    assert "Something similar happened earlier on this camera: event ev-1" in second
    assert "upper right" in second


def test_event_store_when_retention_passes_then_events_and_explanations_pruned(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path)
    key = ("d", "c", "e1")
    store.put_event(StoredEvent(*key, "end", 1.0, 2.0, 0.9, 1.5, "p", 1, updated=100.0))
    store.put_event(StoredEvent("d", "c", "e2", "new", 5.0, None, 0.6, 5.0, "p", 1, 1000.0))
    assert store.mark_pending(key, "end", 100.0) and not store.mark_pending(key, "end", 101.0)
    store.put_explanation(key, "end", {"title": "x"}, 102.0)
    assert store.pending() == [] and store.explanation(key) == {"title": "x"}
    assert [e.event_id for e in store.events(device="d")] == ["e2", "e1"]
    assert store.prune(older_than_s=500.0, now=1100.0) == {
        "events": 1,
        "windows": 0,
        "explanations": 1,
    }
    assert store.event(key) is None and store.explanation(key) is None
    store.set_cursor("x", 7)
    assert store.cursor("x") == 7 and store.cursor("y") == 0
    store.close()
