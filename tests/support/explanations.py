"""A stored explanation as the explainer writes it, for tests that read events back."""

from __future__ import annotations

from typing import Any

EXPLAINED: dict[str, Any] = {
    "schema_version": 1,
    "title": "Scuffle at the gate",
    "summary": "Two people fight.",
    "anomaly": True,
    "category": "Fighting",
    "start": 2.0,
    "end": 6.0,
    "confidence": 0.8,
    "threat_level": 1,
    "llm": "scripted",
    "projector": None,
    "visual_tokens": False,
    "fallback": False,
}
