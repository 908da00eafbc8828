"""Per-stage wall time of the frame loop, summed for reports and observed into Prometheus."""

from __future__ import annotations

from dataclasses import dataclass, field

from vau.edge import metrics

# "encoder" is the model run: DINOv2 alone on the split path, DINOv2 + SETS top-K + head on the
# fused path; "sets" and "head" are what the host does after it; "normality" is the frame scorer
# (the camera's normality model, fusion, and SETS's novelty selection when configured).
STAGES = ("decode", "preprocess", "encoder", "sets", "head", "normality", "events")


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over `frames` frames."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        self.seconds[stage] += seconds
        per_frame = seconds / max(frames, 1)
        for _ in range(frames):
            metrics.STAGE_SECONDS.labels(stage).observe(per_frame)

    def ms_per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000.0 * v / n for k, v in self.seconds.items()}
