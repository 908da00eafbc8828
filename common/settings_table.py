"""`config --explain`: every setting's key, value, default, bounds or choices and description,
read from the pydantic model's fields, so the table cannot drift from the declarations."""

from __future__ import annotations

from dataclasses import dataclass
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

HEADER = ("key", "value", "default", "bounds / choices", "description")
MAX_CELL = 24  # longer values are cut with "…" (`config` without --explain prints them whole)

_BOUNDS: dict[type, tuple[str, str]] = {  # constraint type -> (its attribute, how it reads)
    at.Gt: ("gt", ">"),
    at.Ge: ("ge", ">="),
    at.Lt: ("lt", "<"),
    at.Le: ("le", "<="),
    at.MinLen: ("min_length", "len >="),
    at.MaxLen: ("max_length", "len <="),
}


@dataclass(frozen=True, slots=True)
class SettingRow:
    key: str  # dotted, as in TOML sections and VAU_..__SECTION__KEY
    value: str
    default: str
    bounds: str  # "> 0, <= 1" or "a | b | c"; "" when unconstrained
    description: str


def setting_rows(settings: BaseModel, prefix: str = "") -> list[SettingRow]:
    """One row per leaf setting of `settings`, sections (nested models) flattened, in order."""
    rows: list[SettingRow] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            rows.extend(setting_rows(value, f"{prefix}{name}."))
            continue
        default = show(field.get_default(call_default_factory=True))
        about = field.description or ""
        rows.append(SettingRow(f"{prefix}{name}", show(value), default, bounds_of(field), about))
    return rows


def format_table(rows: list[SettingRow]) -> str:
    """Aligned columns, one line per setting (grep-friendly); the description last, whole."""
    cells = [
        HEADER,
        *((r.key, _cut(r.value), _cut(r.default), r.bounds, r.description) for r in rows),
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, [*widths, 0], strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def show(value: Any) -> str:
    """A value as one would write it in the TOML file; secrets never shown."""
    if isinstance(value, SecretStr):
        return "<secret>" if value.get_secret_value() else "unset"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return ", ".join(show(v) for v in value)
    return str(value)


def bounds_of(field: FieldInfo) -> str:
    """The field's constraints ("> 0, <= 1") or its Literal choices ("a | b"); "" if none."""
    choices = _choices(field.annotation)
    if choices:
        return " | ".join(choices)
    parts = []
    for meta in field.metadata:
        if type(meta) in _BOUNDS:
            attr, sign = _BOUNDS[type(meta)]
            parts.append(f"{sign} {getattr(meta, attr)}")
    return ", ".join(parts)


def _choices(annotation: Any) -> list[str]:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if get_origin(annotation) in (Union, UnionType):
        return [c for arg in get_args(annotation) for c in _choices(arg)]
    return []


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
