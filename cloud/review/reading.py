"""Everything the review page reads from storage, in one place, through the injected `Storage`.

Events and explanations come from the event repository through the Query service's `EventReader`
(one worker thread, the repository handle opened there) and its `EventView`; an event's frames come
from the ingest log, chosen as the explainer chooses its evidence: the frames of the event's stored
window, or, while it is open, its newest frames since it started. The ingest log handle is opened
and used only on that same worker thread.
"""

from __future__ import annotations

from vau.cloud.explain.ingest_reader import IngestReader
from vau.cloud.query.model import EventView, explanation_of
from vau.cloud.query.servicer import EventReader
from vau.cloud.records import TokenFrame
from vau.cloud.review.model import EventDetail, EventFilter, FrameCells
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.event_repository import EventKey, EventRepository, StoredEvent
from vau.cloud.storage.factory import Storage

OPEN_FRAMES = 64  # frames shown for an event without a window (newest, since its start)


class ReviewReader:
    def __init__(self, storage: Storage, limits: LimitSettings) -> None:
        self.storage, self.limits = storage, limits
        self._events = EventReader(storage)
        self._ingest: IngestReader | None = None  # opened and used only inside self._events.run

    def _ingest_reader(self) -> IngestReader:
        if self._ingest is None:
            self._ingest = IngestReader(self.storage.ingest_log(read_only=True), self.limits)
        return self._ingest

    async def events(self, f: EventFilter) -> list[EventView]:
        return await self._events.run(lambda s: _events(s, f))

    async def detail(self, key: EventKey) -> EventDetail | None:
        return await self._events.run(lambda s: _detail(s, self._ingest_reader(), key))

    async def close(self) -> None:
        await self._events.run(lambda _s: self._ingest.close() if self._ingest else None)
        await self._events.close()


def _view(store: EventRepository, e: StoredEvent) -> EventView:
    return EventView(e, explanation_of(store.explanation((e.device, e.camera, e.event_id))))


def _events(store: EventRepository, f: EventFilter) -> list[EventView]:
    """Newest change first; the store filters device and camera, the time range is applied here
    (reading further back while the range is not yet covered)."""
    fetch = f.limit
    while True:
        rows = store.events(f.device, f.camera, fetch)
        chosen = [e for e in rows if f.contains(e.updated)]
        exhausted = len(rows) < fetch or (f.since is not None and rows[-1].updated < f.since)
        if len(chosen) >= f.limit or exhausted:
            return [_view(store, e) for e in chosen[: f.limit]]
        fetch *= 4


def _detail(store: EventRepository, ingest: IngestReader, key: EventKey) -> EventDetail | None:
    event = store.event(key)
    if event is None:
        return None
    window = store.window(key)
    frames = ingest.event_frames(event, window, OPEN_FRAMES)
    grid = frames[0][1].grid if frames else None
    cells = tuple(_cells(t, f) for t, f in frames if f.grid == grid)
    return EventDetail(_view(store, event), window, grid, cells)


def _cells(t: float, f: TokenFrame) -> FrameCells:
    return FrameCells(
        seq=f.frame_seq,
        t=t,
        score=f.score,
        smoothed=f.smoothed,
        normality=f.normality,
        kept=tuple(int(i) for i in f.indices),
        hot=tuple(int(i) for i in f.hot),
    )
