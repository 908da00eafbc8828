"""The Query service's domain values: requests as decoded, events as read, errors as raised.

A watch cursor is the position of an event change in the store's order of changes: (updated,
device, camera, event_id), compared as a tuple so events changed at the same instant keep a strict
order. On the wire it is an opaque string (`cursor_text` / `parse_cursor`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from vau.cloud.explain.schema import Explanation
from vau.cloud.storage.event_repository import EventKey, StoredEvent
from vau.cloud.validate import valid_id

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_QUESTION_CHARS = 1000
MAX_EVENT_ID_CHARS = 128  # what the uplink validator accepts
MAX_CURSOR_CHARS = 1024  # a cursor_text of the longest ids (ASCII) is about 290 chars

Cursor = tuple[float, str, str, str]  # (updated, device, camera, event_id)
QueryReason = Literal["invalid", "not_found", "precondition", "unavailable", "exhausted"]


class QueryError(Exception):
    """reason "invalid" -> INVALID_ARGUMENT, "not_found" -> NOT_FOUND, "precondition" ->
    FAILED_PRECONDITION, "unavailable" -> UNAVAILABLE (retry later), "exhausted" ->
    RESOURCE_EXHAUSTED (admission refused); the message says what to do."""

    def __init__(self, reason: QueryReason, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class BadRequest:
    """A request that did not decode; the servicer answers INVALID_ARGUMENT with `detail`."""

    detail: str


@dataclass(frozen=True, slots=True)
class ListQuery:
    device: str | None
    camera: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class GetQuery:
    key: EventKey


@dataclass(frozen=True, slots=True)
class WatchQuery:
    device: str | None
    camera: str | None
    cursor: Cursor | None  # None: only changes from the call's start on


@dataclass(frozen=True, slots=True)
class AskQuery:
    key: EventKey
    question: str


@dataclass(frozen=True, slots=True)
class EventView:
    """One stored event as the service shows it."""

    event: StoredEvent
    explanation: Explanation | None

    @property
    def key(self) -> EventKey:
        return (self.event.device, self.event.camera, self.event.event_id)

    @property
    def position(self) -> Cursor:
        return (self.event.updated, *self.key)


def cursor_text(c: Cursor) -> str:
    return json.dumps(list(c), separators=(",", ":"))


def parse_cursor(text: str) -> Cursor:
    """The cursor of `cursor_text`; QueryError("invalid") for anything else. The text is bounded
    in size and nesting before it is parsed, so no cursor can make the parser recurse deeply (ids
    never contain brackets: a cursor this server sent has exactly one)."""
    if len(text) > MAX_CURSOR_CHARS or text.count("[") + text.count("{") > 1:
        raise QueryError(
            "invalid",
            f"cursor is not one this server sent (at most {MAX_CURSOR_CHARS} chars, a flat "
            "list): pass an EventDetail.cursor unchanged",
        )
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and isinstance(value[0], int | float)
        and math.isfinite(value[0])
        and all(isinstance(v, str) for v in value[1:])
    )
    if not ok:
        raise QueryError(
            "invalid", "cursor is not one this server sent: pass an EventDetail.cursor"
        )
    return (float(value[0]), value[1], value[2], value[3])


def optional_id(value: str, what: str) -> str | None:
    """ "" -> None (no filter); a well-formed id; QueryError("invalid") otherwise."""
    if not value:
        return None
    if not valid_id(value):
        raise QueryError("invalid", f"{what} {value[:80]!r} must be 1-64 chars [A-Za-z0-9._:@-]")
    return value


def event_key(device: str, camera: str, event_id: str) -> EventKey:
    """A complete, well-formed event key; QueryError("invalid") otherwise."""
    dev, cam = optional_id(device, "device_id"), optional_id(camera, "camera")
    if dev is None or cam is None or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        raise QueryError(
            "invalid", "name the event: device_id, camera and event_id (1-128 chars) are required"
        )
    return (dev, cam, event_id)


def list_limit(limit: int) -> int:
    if limit > MAX_LIMIT:
        raise QueryError("invalid", f"limit {limit} is above {MAX_LIMIT}; page with a smaller one")
    return limit or DEFAULT_LIMIT


def question_text(question: str) -> str:
    text = question.strip()
    if not 0 < len(text) <= MAX_QUESTION_CHARS:
        raise QueryError("invalid", f"question must be 1-{MAX_QUESTION_CHARS} characters of text")
    return text


def explanation_of(body: dict[str, object] | None) -> Explanation | None:
    """A stored explanation body, or None for none or a skipped trigger's marker."""
    if body is None or body.get("skipped"):
        return None
    try:
        return Explanation.model_validate(body)
    except ValueError:
        return None
