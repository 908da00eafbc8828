"""The vau.v1.Query handlers: thin. Identity as for Uplink (the credential, never the request),
checked before the request's bytes are decoded, so an unauthenticated caller gets UNAUTHENTICATED
whatever it sends;
event repository reads on one worker thread (a repository handle stays on its thread); domain
errors become statuses:

  INVALID_ARGUMENT    BadRequest / QueryError "invalid"     NOT_FOUND  QueryError "not_found"
  UNAUTHENTICATED     no or unknown credential
  PERMISSION_DENIED   another device's events
  FAILED_PRECONDITION Ask with the explainer disabled       INTERNAL   a server bug (logged)
  RESOURCE_EXHAUSTED  Ask beyond limits.ask_per_identity (per identity) or limits.ask_in_flight

Who may read: a device its own events; identities in `query_readers` and, in dev mode (plaintext
loopback without tokens), every caller, all events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import grpc

from vau.cloud.admission import REVOKED, AskAdmission, AskRefusedError
from vau.cloud.auth import Authenticator, CredentialWatch, OpenStream
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.service import ExplainerService
from vau.cloud.query import query_codec as codec
from vau.cloud.query.model import (
    AskQuery,
    BadRequest,
    Cursor,
    EventView,
    ListQuery,
    QueryError,
    WatchQuery,
    explanation_of,
)
from vau.cloud.records import AuthError
from vau.cloud.servicer import credential_of
from vau.cloud.storage.event_repository import EventKey, EventRepository, StoredEvent
from vau.cloud.storage.factory import Storage

log = logging.getLogger("vau.cloud.query")
T = TypeVar("T")
_CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission": grpc.StatusCode.PERMISSION_DENIED,
}
WATCH_BATCH = 1000  # changes read per poll; more follow on the next
AWAIT_EXPLANATION = 256  # events a watch re-checks for a newly arrived explanation
ENABLE_EXPLAIN = (
    "explanations are off on this cloud (events are still listed): set explain.enabled = true "
    "(VAU_CLOUD__EXPLAIN__ENABLED=true) and restart it to ask questions"
)


@dataclass(frozen=True, slots=True)
class Access:
    """What one caller may read: `device` only, or everything (`device` None)."""

    device: str | None

    def scope(self, wanted: str | None) -> str | None:
        """The device filter to apply for a request's `wanted` device (None = any)."""
        if self.device is None:
            return wanted
        if wanted is not None and wanted != self.device:
            raise AuthError("permission", f"{self.device} may read only its own events")
        return self.device

    def check(self, key: EventKey) -> None:
        self.scope(key[0])


class EventReader:
    """An event repository handle behind one worker thread (opened there on first use)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vau-query")
        self._store: EventRepository | None = None

    async def run(self, fn: Callable[[EventRepository], T]) -> T:
        def call() -> T:
            if self._store is None:
                self._store = self.storage.event_repository()
            return fn(self._store)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def close(self) -> None:
        def close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await asyncio.get_running_loop().run_in_executor(self._pool, close)
        self._pool.shutdown(wait=True)


def _view(store: EventRepository, key: EventKey) -> EventView | None:
    event = store.event(key)
    return None if event is None else EventView(event, explanation_of(store.explanation(key)))


def _list(store: EventRepository, q: ListQuery, device: str | None) -> list[EventView]:
    events = store.events(device, q.camera, q.limit)
    return [EventView(e, explanation_of(store.explanation(_key(e)))) for e in events]


def _changes(
    store: EventRepository, device: str | None, camera: str | None, after: Cursor
) -> list[EventView]:
    """Events changed after `after`, oldest change first (at most WATCH_BATCH)."""
    limit = 2 * WATCH_BATCH
    while True:
        events = store.events(device, camera, limit)
        if len(events) < limit or events[-1].updated < after[0]:
            break
        limit *= 2
    newer = sorted(
        (e for e in events if (e.updated, e.device, e.camera, e.event_id) > after),
        key=lambda e: (e.updated, e.device, e.camera, e.event_id),
    )[:WATCH_BATCH]
    return [EventView(e, explanation_of(store.explanation(_key(e)))) for e in newer]


def _key(e: StoredEvent) -> EventKey:
    return (e.device, e.camera, e.event_id)


def _explained(store: EventRepository, keys: Collection[EventKey]) -> list[EventView]:
    """Those of `keys` that have an explanation now."""
    found = (_view(store, k) for k in keys)
    return [v for v in found if v is not None and v.explanation is not None]


class QueryServicer:
    def __init__(
        self,
        auth: Authenticator,
        readers: Collection[str],
        storage: Storage,
        credentials: CredentialWatch,
        asks: AskAdmission,
        poll_s: float = 0.25,
    ) -> None:
        self.auth, self.readers, self.poll_s = auth, frozenset(readers), poll_s
        self.credentials, self.asks = credentials, asks
        self.reader = EventReader(storage)
        self.explainer: ExplainerService | None = None  # set by create_server when enabled

    def _access(self, context: grpc.aio.ServicerContext) -> Access:
        return self._access_of(self.auth.authenticate(credential_of(context)))

    def _access_of(self, principal: str | None) -> Access:
        return Access(None if not principal or principal in self.readers else principal)

    async def _abort(self, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        if isinstance(exc, QueryError | AuthError):
            code, details = _CODES[exc.reason], str(exc)
        else:
            log.exception("query failed", exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, "internal error; retry (the server logged it)"
        await context.abort(code, details)

    @staticmethod
    def _valid(request: T | BadRequest) -> T:
        if isinstance(request, BadRequest):
            raise QueryError("invalid", request.detail)
        return request

    async def _guard(self, context: grpc.aio.ServicerContext, work: Any) -> Any:
        try:
            return await work
        except Exception as exc:
            await self._abort(context, exc)
            raise  # abort raised already; for the type checker

    async def list_events(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> list[EventView]:
        async def work() -> list[EventView]:
            access = self._access(context)
            q = self._valid(codec.decode_list(request))
            device = access.scope(q.device)
            return await self.reader.run(lambda s: _list(s, q, device))

        result: list[EventView] = await self._guard(context, work())
        return result

    async def _get(self, key: EventKey, access: Access) -> EventView:
        access.check(key)
        view = await self.reader.run(lambda s: _view(s, key))
        if view is None:
            raise QueryError(
                "not_found", f"no event {'/'.join(key)}: list events to see which exist"
            )
        return view

    async def get_event(self, request: bytes, context: grpc.aio.ServicerContext) -> EventView:
        async def work() -> EventView:
            access = self._access(context)
            return await self._get(self._valid(codec.decode_get(request)).key, access)

        result: EventView = await self._guard(context, work())
        return result

    async def ask(self, request: bytes, context: grpc.aio.ServicerContext) -> Explanation:
        async def work() -> Explanation:
            principal = self.auth.authenticate(credential_of(context))
            q: AskQuery = self._valid(codec.decode_ask(request))
            await self._get(q.key, self._access_of(principal))
            if self.explainer is None:
                raise QueryError("precondition", ENABLE_EXPLAIN)
            if not self.explainer.ready:
                raise QueryError("unavailable", "the explainer is loading its model; retry shortly")
            try:
                release = self.asks.admit(principal or "")
            except AskRefusedError as exc:
                raise QueryError("exhausted", str(exc)) from None
            # The slot is given back when the answer is done, not when the caller gives up:
            # cancelled calls cannot pile work up on the explainer.
            answer = asyncio.ensure_future(self.explainer.ask(q.key, q.question))
            answer.add_done_callback(lambda f: (release(), f.cancelled() or f.exception()))
            try:
                return await asyncio.shield(answer)
            except LookupError:
                raise QueryError("not_found", f"event {'/'.join(q.key)} is gone") from None

        result: Explanation = await self._guard(context, work())
        return result

    async def watch_events(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[EventView]:
        watched: OpenStream | None = None
        try:
            watched = self.credentials.watch(credential_of(context), "watch", lambda: None)
            q: WatchQuery = self._valid(codec.decode_watch(request))
            device = self._access_of(watched.principal).scope(q.device)
        except (QueryError, AuthError) as exc:
            if watched is not None:
                self.credentials.forget(watched)
            await self._abort(context, exc)
            return
        try:
            async for view in self._watch(watched, device, q):
                yield view
        except AuthError as exc:  # its token was revoked while the watch was open
            await self._abort(context, exc)
        finally:
            self.credentials.forget(watched)

    async def _watch(
        self, watched: OpenStream, device: str | None, q: WatchQuery
    ) -> AsyncIterator[EventView]:
        """Changes after the query's cursor, polled; AuthError once the caller's token is revoked
        (noticed within tokens_recheck_s + poll_s)."""
        cursor: Cursor = q.cursor or (time.time(), "", "", "")
        camera = q.camera
        waiting: dict[EventKey, None] = {}  # sent without an explanation, oldest first
        while True:  # ends when the client cancels or the server stops (CancelledError)
            if watched.revoked:
                raise AuthError("unauthenticated", REVOKED)
            changed = await self.reader.run(
                partial(_changes, device=device, camera=camera, after=cursor)
            )
            changed_keys = {v.key for v in changed}
            pending = [k for k in waiting if k not in changed_keys]
            explained = await self.reader.run(partial(_explained, keys=pending)) if pending else []
            for view in (*explained, *changed):
                if watched.revoked:
                    raise AuthError("unauthenticated", REVOKED)
                yield view
                cursor = max(cursor, view.position)
                waiting.pop(view.key, None)
                if view.explanation is None:
                    waiting[view.key] = None
            while len(waiting) > AWAIT_EXPLANATION:
                waiting.pop(next(iter(waiting)))
            if len(changed) < WATCH_BATCH:
                await asyncio.sleep(self.poll_s)

    async def close(self) -> None:
        await self.reader.close()

    def handler(self) -> grpc.GenericRpcHandler:
        # Requests arrive as bytes: each handler authenticates the caller before it decodes them.
        unary = grpc.unary_unary_rpc_method_handler
        methods = {
            codec.LIST: unary(self.list_events, None, codec.encode_list),
            codec.GET: unary(self.get_event, None, codec.encode_detail),
            codec.ASK: unary(self.ask, None, codec.encode_answer),
            codec.WATCH: grpc.unary_stream_rpc_method_handler(
                self.watch_events, None, codec.encode_detail
            ),
        }
        return grpc.method_handlers_generic_handler(codec.SERVICE, methods)
