"""What an explanation is (`Explanation`) and what the LLM is allowed to write (`LlmReply`)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
OTHER = "other"
UNKNOWN = "unknown"  # the observed category when the evidence matches no known kind


class LlmReply(BaseModel):
    """The only part of an explanation a small LLM writes: from the evidence, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: str = Field(min_length=3, max_length=80)
    summary: str = Field(min_length=10, max_length=400)


class Explanation(BaseModel):
    """A validated explanation of one event; `fields()` is the Notifier's payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    title: str = Field(min_length=1, max_length=80)
    summary: str = Field(min_length=1, max_length=400)
    anomaly: bool
    category: str = Field(min_length=1, max_length=64)
    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)
    confidence: float = Field(ge=0.0, le=1.0)
    threat_level: int = Field(ge=0, le=2)
    llm: str = Field(min_length=1, max_length=256)
    projector: str | None = None
    visual_tokens: bool
    fallback: bool
    # What and where, from the facts (add-only; defaults keep older stored explanations readable)
    where: tuple[str, ...] = ()  # named 3x3 regions, largest share first
    movement: Literal["none", "left", "right", "up", "down", "mixed"] = "none"
    view_change: bool = False
    evidence: tuple[str, ...] = ()  # the fact sentences the text was written from
    observed_category: str = "unknown"  # what the evidence looks like: a class, or "unknown"
    # Frigate's review fields (add-only): the first sentence of the summary, the camera's scene
    # as configured, concerns beside the event itself, and the threat level under its name
    short_summary: str = Field("", max_length=200)
    scene: str = Field("", max_length=400)
    other_concerns: tuple[str, ...] = ()
    potential_threat_level: int = Field(0, ge=0, le=2)

    @model_validator(mode="after")
    def _span(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def check_category(self, classes: tuple[str, ...]) -> Explanation:
        """Self, or ValueError when the category is neither a configured class nor "other"."""
        if self.category != OTHER and self.category not in classes:
            raise ValueError(f"category {self.category!r} not in {classes} or {OTHER!r}")
        if self.observed_category != UNKNOWN and self.observed_category not in classes:
            raise ValueError(f"observed category {self.observed_category!r} not in {classes}")
        return self

    def fields(self) -> dict[str, object]:
        return self.model_dump(mode="json")
