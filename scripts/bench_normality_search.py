"""The nearest-normal-patch search on this host: NumPy (CPU) vs torch (CUDA), same inputs, JSON out.

Run where torch sees a GPU (a Jetson, a GPU host): `python scripts/bench_normality_search.py
--json out/search.json`. Without CUDA it reports the CPU alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vau.edge.normality.search import NumpySearch, TorchSearch


def unit(rows: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((rows, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(search: object, patches: np.ndarray, repeats: int) -> float:
    search.nearest(patches)  # type: ignore[attr-defined]  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        search.nearest(patches)  # type: ignore[attr-defined]
    return 1000.0 * (time.perf_counter() - t0) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import torch

    rng = np.random.default_rng(0)
    patches = unit(256, rng)
    report: dict[str, object] = {"cuda": torch.cuda.is_available(), "sizes": {}}
    for m in (2048, 4096, 16384):
        memory = unit(m, rng)
        cpu = NumpySearch(memory, None)
        row: dict[str, float] = {"numpy_ms": timed(cpu, patches, args.repeats)}
        if torch.cuda.is_available():
            gpu = TorchSearch(memory, None, "cuda")
            row["cuda_ms"] = timed(gpu, patches, args.repeats)
            row["speedup"] = row["numpy_ms"] / row["cuda_ms"]
            row["max_abs_diff"] = float(np.abs(cpu.nearest(patches) - gpu.nearest(patches)).max())
        report["sizes"][str(m)] = row  # type: ignore[index]
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
