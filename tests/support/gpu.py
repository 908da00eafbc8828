"""Why a TensorRT/CUDA test cannot run on this machine ('' when it can). No mock stands in."""

from __future__ import annotations

import importlib.util

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def gpu_missing() -> str:
    import torch

    if not HAS_TRT:
        return "needs TensorRT (pip install vau-edge[gpu], or JetPack on a Jetson)"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU"
    return ""


# for @pytest.mark.skipif(bool(GPU_MISSING), reason=GPU_MISSING or "runs")
GPU_MISSING = gpu_missing()


def cuda_missing() -> str:
    """Why a torch CUDA test cannot run here ('' when it can); TensorRT is not needed."""
    import torch

    return "" if torch.cuda.is_available() else "needs a CUDA GPU (torch sees none on this host)"


CUDA_MISSING = cuda_missing()
