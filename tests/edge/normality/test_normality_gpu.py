"""The normality search on a GPU (torch, memory resident there) agrees with NumPy on the CPU.

Runs where torch sees a CUDA device (a GPU host, a Jetson); skips with the reason elsewhere. No
mock stands in for the GPU.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from support.gpu import CUDA_MISSING
from support.normal_scene import GRID, normal_frames

from vau.edge.normality.fit import fit
from vau.edge.normality.search import NumpySearch, TorchSearch

pytestmark = pytest.mark.skipif(bool(CUDA_MISSING), reason=CUDA_MISSING or "runs")


def test_the_cuda_search_finds_the_same_nearest_cosines_as_numpy() -> None:
    rng = np.random.default_rng(0)
    memory = rng.standard_normal((2048, 384)).astype(np.float32)
    memory /= np.linalg.norm(memory, axis=1, keepdims=True)
    patches = rng.standard_normal((256, 384)).astype(np.float32)
    patches /= np.linalg.norm(patches, axis=1, keepdims=True)
    cpu = NumpySearch(memory, None).nearest(patches)
    gpu = TorchSearch(memory, None, "cuda").nearest(patches)
    assert np.abs(cpu - gpu).max() < 2e-3  # fp16 on the GPU


def test_a_model_on_cuda_scores_like_the_cpu_model() -> None:
    frames = normal_frames()
    cpu = fit(frames, GRID, memory_patches=512, radius=-1)
    gpu = replace(cpu, device="cuda")
    f = frames[-1]
    a = cpu.score(f.patches, f.change, f.cls, 8)
    b = gpu.score(f.patches, f.change, f.cls, 8)
    assert a.parts == pytest.approx(b.parts, abs=0.02)
