"""Layered settings shared by edge and cloud: defaults < TOML file < environment < flags.

Each side declares one `LayeredSettings` subclass with its `env_prefix`; `load(cls, config,
overrides)` builds it, checking every layer for unknown keys and turning validation errors into one
readable `SettingsError` that names each bad key and its environment form.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class SettingsError(Exception):
    """A setting is invalid; the message names the key and the fix."""


class Strict(BaseModel):
    """A settings section: unknown keys forbidden, frozen, defaults validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("vau_config_file", default=None)


class LayeredSettings(BaseSettings):
    """Base of EdgeSettings and CloudSettings; subclasses set `env_prefix` ("VAU_EDGE__")."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="forbid", frozen=True, validate_default=True
    )
    env_prefix: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = _CONFIG_FILE.get()
        layers: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config is not None:
            layers.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(layers)


S = TypeVar("S", bound=LayeredSettings)


@contextmanager
def _config_file(path: Path | None) -> Iterator[None]:
    token = _CONFIG_FILE.set(path)
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def load(cls: type[S], config: Path | None, overrides: Mapping[str, Any] | None) -> S:
    """Build `cls` from the four layers; raise SettingsError with a readable message."""
    if config is not None:
        _check_toml(config)
    _check_env_names(cls)
    try:
        with _config_file(config):
            return cls(**dict(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(_describe(exc, config, cls.env_prefix)) from None


def environment_keys(prefix: str) -> list[str]:
    """The variables with `prefix` set in this process, for start-up logs (values never logged)."""
    return sorted(k for k in os.environ if k.startswith(prefix))


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise SettingsError(f"config file {path} does not exist; pass an existing TOML file")
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def _check_env_names(cls: type[LayeredSettings]) -> None:
    # pydantic-settings ignores unknown top-level variables; a typo must not pass silently.
    known = {name.upper() for name in cls.model_fields}
    prefix = cls.env_prefix
    unknown = [
        k for k in environment_keys(prefix) if k.removeprefix(prefix).split("__")[0] not in known
    ]
    if unknown:
        raise SettingsError(
            f"unknown setting(s) in the environment: {', '.join(unknown)}; "
            f"known top-level keys: {', '.join(sorted(known))}"
        )


def _message(err: ErrorDetails, key: str) -> str:
    """The error without pydantic's "Value error, " prefix, and the value unless already named."""
    msg = err["msg"].removeprefix("Value error, ")
    value = "<secret>" if "token" in key or "password" in key else repr(err.get("input"))
    return msg if value in msg else f"{msg} (got {value})"


def _describe(exc: ValidationError, config: Path | None, prefix: str) -> str:
    where = f" (layers: defaults, {config or 'no config file'}, {prefix}* env, flags)"
    lines = [f"invalid settings{where}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            env = prefix + key.replace(".", "__").upper()
            lines.append(f"  {key}: unknown setting (check spelling; env form would be {env})")
        else:
            lines.append(f"  {key}: {_message(err, key)}")
    return "\n".join(lines)
