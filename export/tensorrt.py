"""`vau-export tensorrt`: an ONNX graph to a serialized TensorRT engine, per device settings file.

FP16 or INT8 (entropy calibration over real footage frames), a timing cache beside the engine,
workspace and DLA core from the device settings. `tensorrt` is imported only here, lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vau.edge.encoders.artefact import ArtefactError, read_manifest, sha256_file, write_manifest
from vau.edge.types import F32
from vau.export.quantize import stream_feeds
from vau.export.settings import ExportError, ExportSettings

MIN_TRT = (8, 5)  # JetPack 5 (Xavier NX) ships 8.5; the builder API below exists from 8.5 on


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise ExportError(
            "`vau-export tensorrt` needs TensorRT: on a Jetson it ships with JetPack; on an x86 "
            "GPU host run `pip install vau-edge[gpu]`. CPU edges use `vau-export quantize` instead"
        ) from None
    major, minor = (int(p) for p in trt.__version__.split(".")[:2])
    if (major, minor) < MIN_TRT:
        raise ExportError(f"TensorRT {trt.__version__} is too old; {MIN_TRT} or newer is needed")
    return trt


def _calibrator(trt: Any, feeds: list[dict[str, F32]], cache: Path) -> Any:
    """INT8 entropy calibration over `quantize.stream_feeds`: real frames with real previous
    patches, so the SETS distances see the range they have at run time."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._items = list(feeds)
            self._held: list[Any] = []

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if not self._items:
                return None
            feed = self._items.pop(0)
            self._held = [torch.from_numpy(feed[name]).cuda() for name in names]
            return [int(t.data_ptr()) for t in self._held]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.write_bytes(bytes(data))

    return Calibrator()


def _profile(builder: Any, network: Any, settings: ExportSettings) -> Any:
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(
            tensor.name, (1, *rest), (settings.batch, *rest), (settings.max_batch, *rest)
        )
    return profile


def engine_stem(onnx_path: Path, settings: ExportSettings) -> str:
    """`<onnx stem>-<precision>-<device>`: the engine, timing cache and calibration cache names."""
    return f"{onnx_path.stem}-{settings.precision}-{settings.device}"


def build_engine(onnx_path: Path, settings: ExportSettings, calib: F32 | None = None) -> Path:
    """Write `<stem>-<precision>-<device>.engine` next to the ONNX file; returns its path."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # finds external weights beside the graph
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.add_optimization_profile(_profile(builder, network, settings))
    if settings.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    stem = engine_stem(onnx_path, settings)
    if settings.precision == "int8":
        if calib is None or len(calib) == 0:
            raise ExportError("INT8 needs calibration frames (--calib-frames N over real footage)")
        config.set_flag(trt.BuilderFlag.INT8)
        feeds = list(stream_feeds(onnx_path, calib))
        config.int8_calibrator = _calibrator(trt, feeds, onnx_path.with_name(f"{stem}.calib"))
    if settings.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    timing = onnx_path.with_name(f"{stem}.timing")
    cache = config.create_timing_cache(timing.read_bytes() if timing.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path}; see its log")
    timing.write_bytes(bytes(config.get_timing_cache().serialize()))
    engine = onnx_path.with_name(f"{stem}.engine")
    engine.write_bytes(bytes(serialized))
    _write_manifest(onnx_path, engine, settings, trt.__version__)
    return engine


def _write_manifest(onnx_path: Path, engine: Path, settings: ExportSettings, version: str) -> None:
    """`<engine>.json`: the ONNX graph's manifest re-described for the engine, so the edge's fused
    backend checks an engine (size, sha256, keep ratio, input size, head) like any artefact."""
    try:
        source = read_manifest(onnx_path)
    except ArtefactError:
        return  # an encoder-only graph (vau-models): the tensorrt encoder backend needs none
    manifest = source.model_copy(
        update={
            "artefact": engine.name, "sha256": sha256_file(engine), "size": engine.stat().st_size,
            "precision": settings.precision, "device": settings.device,
            "versions": {**source.versions, "tensorrt": version},
            "notes": [*source.notes, f"TensorRT engine of {onnx_path.name} ({source.sha256[:12]})"],
        }
    )  # fmt: skip
    write_manifest(manifest, engine.with_suffix(".json"))
