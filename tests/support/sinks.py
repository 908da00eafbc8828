"""A pipeline sink that keeps everything it is given, for tests to read back."""

from __future__ import annotations

from vau.edge.types import EffectiveTokens, EventUpdate, FrameScore, Window


class Collect:
    def __init__(self) -> None:
        self.frames: list[tuple[EffectiveTokens, FrameScore]] = []
        self.events: list[EventUpdate] = []
        self.windows: list[Window] = []

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self.frames.append((tokens, score))

    def event(self, update: EventUpdate) -> None:
        self.events.append(update)

    def window(self, window: Window) -> None:
        self.windows.append(window)

    def close(self) -> None:
        pass
