"""`ExplainerService`: tails the ingest log for triggers, explains ended events.

Events and windows are projected into the event repository by the event projector
(`vau.cloud.event_projector`), whether or not the explainer runs; the explainer reads them and
writes only explanations (pending, then done), so each table has one writer. A trigger whose event
the projector has not written yet waits for it.

Store work runs on ONE worker thread, in order (SQLite connections stay on their thread);
generation runs on an LLM pool of `explain.concurrency` threads, so up to N explanations are in
flight (one per event at a time; N > 1 needs the `openai` backend), counted in
`vau_cloud_explain_in_flight`, and the event loop never waits on the model. The cursor (last ingest
position read) and the pending explanations live in the event repository: a trigger is written as
pending before the cursor moves past its record, and marked done only after the notifier took the
explanation, so a restart neither loses nor repeats work (at-least-once across a crash between
the two).

Retention: at start and every `retention_check_s`, events untouched for `retention_days` are
pruned with their windows and explanations (counted in `vau_cloud_event_store_pruned_total`).
Ingest records are re-typed with the limits ingest runs with; one that still cannot be read is
counted (`vau_cloud_explain_unreadable_records_total`), logged and skipped: the cursor moves on.

Triggers: an event's end (default; it waits up to `window_wait_s` for the window and its frames),
an early one at the first update whose peak reaches the threshold (`early_trigger`), skipped when
the camera explained something less than `cooldown_s` ago; an end trigger supersedes a pending
early one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from vau.cloud.explain.category import load_category
from vau.cloud.explain.evidence import EventEvidence, frame_evidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.facts import Earlier
from vau.cloud.explain.ingest_reader import IngestReader, Row
from vau.cloud.explain.llm import LlmBackend, build_llm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.projector_choice import configured_tokenizer
from vau.cloud.explain.prompts import QUESTION
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.notify import Notifier
from vau.cloud.records import EventChange
from vau.cloud.replicas import Replica
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.event_repository import EventKey, EventRepository
from vau.cloud.storage.factory import Storage
from vau.cloud.store_worker import StoreWorker

log = logging.getLogger(__name__)
CURSOR = "explainer"
EARLY_FRAMES = 32
EARLIER_EVENTS = 20  # the camera's recent events consulted for a recurrence


@dataclass(frozen=True, slots=True)
class _Done:
    key: EventKey
    trigger: str
    explanation: Explanation | None  # None: skipped (cooldown, superseded)


_Job = tuple[EventKey, str, EventEvidence, list[Any], list[Earlier]]  # what _explain needs


class ExplainerService(StoreWorker):
    def __init__(
        self,
        settings: ExplainSettings,
        storage: Storage,
        notifier: Notifier,
        registry: CollectorRegistry,
        llm: LlmBackend | None = None,
        *,
        limits: LimitSettings,
        replica: Replica | None = None,
    ) -> None:
        self.settings, self.notifier = settings, notifier
        self.replica = replica or Replica()  # claims: one replica explains each trigger
        self.storage = storage
        self.limits = limits  # the ones ingest validated the stored records with
        self.metrics = ExplainMetrics(registry)
        self._next_retention = 0.0  # loop time of the next retention pass
        self._llm = llm
        super().__init__("vau-explain", "vau-explainer")
        self._llm_pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="vau-llm")
        self._jobs: dict[EventKey, asyncio.Task[None]] = {}  # explanations in flight
        self.metrics.concurrency.set(settings.concurrency)
        self._last: dict[tuple[str, str], float] = {}  # (device, camera) -> last explained
        self.ready = False  # the model is loaded and the tail runs (set by start)
        # created on the worker thread by _open (SQLite connections stay on their thread)
        self._store: EventRepository
        self._ingest: IngestReader
        self.explainer: Explainer

    async def _generate(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._llm_pool, fn, *args)

    async def start(self) -> None:
        """Open the stores and load the model (on the worker thread), then start tailing."""
        await super().start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await super().stop()
        self._llm_pool.shutdown(wait=True)

    def _open(self) -> None:
        s = self.settings
        llm = self._llm or build_llm(s, self.metrics.llm)
        tokenizer = configured_tokenizer(s.projector_weights, s.visual_tokens, llm)
        category = load_category(s.category_model)
        self.explainer = Explainer(s, llm, self.metrics, tokenizer, category=category)
        self._store = self.storage.event_repository()
        log_handle = self.storage.ingest_log(read_only=True)
        self._ingest = IngestReader(log_handle, self.limits, self._unreadable)

    def _unreadable(self, _rowid: int, reason: str) -> None:
        self.metrics.unreadable.labels(reason).inc()

    def _close(self) -> None:
        self._store.close()
        self._ingest.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._maybe_retain()
                moved = await self._call(self._poll)
                for key, trigger in await self._call(self._due):
                    if key in self._jobs or len(self._jobs) >= self.settings.concurrency:
                        continue
                    if not await self._call(self._claim, key, trigger):
                        continue
                    self._jobs[key] = asyncio.create_task(self._job(key, trigger))
            except Exception:
                log.exception("explainer cycle failed; retrying after %.1fs", self.settings.poll_s)
                self.metrics.explanations.labels("error").inc()
                moved = False
            if not moved:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.settings.poll_s)
        await asyncio.gather(*self._jobs.values(), return_exceptions=True)

    async def _job(self, key: EventKey, trigger: str) -> None:
        """One explanation: evidence (store thread), generation (LLM pool), publish, done."""
        self.metrics.in_flight.inc()
        try:
            job = await self._call(self._prepare, key, trigger)
            done = job if isinstance(job, _Done) else await self._generate(self._explain, *job)
            if done.explanation is not None:
                fields = done.explanation.fields()
                device, camera, event_id = done.key
                await self.notifier.explanation(device, camera, event_id, fields)
            await self._call(self._finish, done)
        except Exception:
            log.exception("explaining %s failed; it stays pending and is retried", key)
            self.metrics.explanations.labels("error").inc()
        finally:
            self.metrics.in_flight.dec()
            self._jobs.pop(key, None)

    async def _maybe_retain(self) -> None:
        now = asyncio.get_running_loop().time()
        if now >= self._next_retention and self.replica.retains():
            self._next_retention = now + self.settings.retention_check_s
            await self._call(self._retain)

    # ----- on the worker thread -----------------------------------------------------------

    def _retain(self) -> None:
        days = self.settings.retention_days
        deleted = self._store.prune(days * 86_400.0, time.time())
        self.metrics.retention_runs.inc()
        for table, n in deleted.items():
            self.metrics.pruned.labels(table).inc(n)
        if any(deleted.values()):
            log.info("retention (%g days): pruned %s", days, deleted)

    def _poll(self) -> bool:
        """Read new records for pending triggers; move the cursor past every row read, readable
        or not."""
        batch = self._ingest.after(self._store.cursor(CURSOR))
        for row in batch.rows:
            self._record(row)
        if batch.last_rowid is not None:
            self._store.set_cursor(CURSOR, batch.last_rowid)
        return batch.last_rowid is not None

    def _record(self, row: Row) -> None:
        """An event change's trigger, if any (the projector writes the event itself)."""
        r, now = row.record, time.time()
        if isinstance(r.body, EventChange):
            e = r.body
            key = (r.device, r.camera, e.event_id)
            if e.state == "end":
                self._store.mark_pending(key, "end", now)
            elif self.settings.early_trigger and e.peak >= self.settings.threshold:
                self._store.mark_pending(key, "early", now)

    def _due(self) -> list[tuple[EventKey, str]]:
        """Pending triggers that can run now: an end with its window (or after the wait)."""
        now, due = time.time(), []
        pending = self._store.pending()
        ends = {key for key, trigger in pending if trigger == "end"}
        for key, trigger in pending:
            event = self._store.event(key)
            if event is None:  # not projected yet
                continue
            if trigger == "end":
                waited = now - event.updated >= self.settings.window_wait_s
                if self._store.window(key) is None and not waited:
                    continue
            due.append((key, "superseded" if trigger == "early" and key in ends else trigger))
        return due

    def _claim(self, key: EventKey, trigger: str) -> bool:
        """Claim the trigger for this replica (another may be explaining it)."""
        r, now = self.replica, time.time()
        stored = "early" if trigger == "superseded" else trigger
        claimed = self._store.claim(key, stored, r.name, now + r.claim_s, now)
        r.counted("claimed" if claimed else "taken")
        return claimed

    def _prepare(self, key: EventKey, trigger: str) -> _Done | _Job:
        """Skip (superseded, cooldown) or read what the explanation needs, on the store thread.
        The cooldown counts from when an explanation of the camera starts."""
        if trigger == "superseded":
            return _Done(key, "early", None)
        last = self._last.get(key[:2])
        if last is not None and time.monotonic() - last < self.settings.cooldown_s:
            self.metrics.explanations.labels("cooldown").inc()
            return _Done(key, trigger, None)
        self._last[key[:2]] = time.monotonic()
        ev, tokens = self._evidence(key)
        return key, trigger, ev, tokens, self._earlier(key)

    def _explain(
        self, key: EventKey, trigger: str, ev: EventEvidence, tokens: list[Any], earlier: Any
    ) -> _Done:
        """On the LLM pool: one generation (up to `concurrency` of these at once)."""
        result = self.explainer.explain(ev, tokens, earlier=earlier)
        log.info("explained %s (%s, %.1fs): %s", key, result.outcome, result.seconds,
                 result.explanation.title)  # fmt: skip
        return _Done(key, trigger, result.explanation)

    def _finish(self, done: _Done) -> None:
        fields: dict[str, Any] = (
            done.explanation.fields() if done.explanation is not None else {"skipped": True}
        )
        self._store.put_explanation(done.key, done.trigger, fields, time.time())

    def _evidence(self, key: EventKey) -> tuple[EventEvidence, list[Any]]:
        event = self._store.event(key)
        if event is None:
            raise LookupError(f"no event {key}")
        frames = self._ingest.event_frames(event, self._store.window(key), EARLY_FRAMES)
        ev = EventEvidence(
            camera=event.camera,
            event_id=event.event_id,
            start=event.start,
            end=event.end,
            peak=event.peak,
            peak_t=event.peak_t,
            prior=event.prior,
            frames=tuple(frame_evidence(t, f) for t, f in frames),
            baseline=self._ingest.baseline(*key[:2], event.epoch, event.start),
        )
        return ev, [f.tokens for _, f in frames]

    def _earlier(self, key: EventKey) -> list[Earlier]:
        """The camera's other explained events (explained before this one, so earlier), newest
        first, with where they happened: the facts state a recurrence."""
        out = []
        for event in self._store.events(key[0], key[1], limit=EARLIER_EVENTS):
            if event.event_id == key[2]:
                continue
            body = self._store.explanation((event.device, event.camera, event.event_id))
            where = tuple(str(w) for w in (body or {}).get("where", ()))
            if where:
                out.append(Earlier(event.event_id, event.start, where))
        return out

    # ----- for the Query service --------------------------------------------------------

    async def ask(self, key: EventKey, question: str = QUESTION) -> Explanation:
        """Answer a free-form question about a stored event (not published, not stored)."""

        ev, tokens = await self._call(self._evidence, key)

        def run() -> Explanation:
            return self.explainer.explain(ev, tokens, question).explanation

        result: Explanation = await self._generate(run)
        return result
