"""`vau-export`: onnx | verify | quantize | tensorrt. Each reads files and writes files plus JSON.

Exit status: 0 done, 1 parity over threshold (verify), 2 a user error (message says what to do).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vau.common.cli import emit_report, run_command
from vau.edge.types import F32
from vau.export.settings import ExportError, load_export_settings


def _dinov2(path: Path | None) -> Path:
    if path is not None:
        return path
    from vau.assets import AssetError, asset_path

    try:
        return asset_path("dinov2-s14")
    except AssetError as exc:
        raise ExportError(f"{exc}; or pass --weights DIR") from None


def _frames(args: argparse.Namespace, n: int, size: int) -> F32:
    from vau.export.frames import default_footage, pixel_batches

    return pixel_batches(args.source or default_footage(), n, size)


def cmd_onnx(args: argparse.Namespace) -> int:
    from vau.export.onnx_export import export_onnx

    settings = load_export_settings(args.device_config)
    update: dict[str, object] = {}
    if args.keep_ratio is not None:
        update["keep_ratio"] = args.keep_ratio
    if args.input_size is not None:
        update["input_size"] = args.input_size
    if args.opset is not None:
        update["opset"] = args.opset
    if args.external_data is not None:
        update["external_data"] = args.external_data
    settings = type(settings)(**{**settings.model_dump(), **update})
    path = export_onnx(_dinov2(args.weights), args.out, settings, args.head)
    emit_report({"model": str(path), "manifest": str(path.parent / "manifest.json")}, None)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from vau.edge.encoders.artefact import check_artefact
    from vau.export.verify import THRESHOLDS, compare

    manifest = check_artefact(args.model, keep_ratio=args.keep_ratio)
    batches = _frames(args, args.frames, manifest.input_size)
    parity = compare(args.model, _dinov2(args.weights), batches, head_ref=args.head)
    failures = parity.failures(THRESHOLDS[manifest.precision])
    emit_report({**parity.as_dict(), "failures": failures}, args.json)
    if failures:
        print(f"vau-export verify: over threshold: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from vau.edge.encoders.artefact import check_artefact
    from vau.export.quantize import quantize

    size = check_artefact(args.model).input_size
    calib = _frames(args, args.calib_frames, size) if args.mode == "static" else None
    path = quantize(args.model, args.mode, calib, sensitive=args.all_blocks)
    emit_report({"model": str(path), "manifest": str(path.with_suffix(".json"))}, None)
    return 0


def cmd_tensorrt(args: argparse.Namespace) -> int:
    from vau.export.tensorrt import build_engine, import_tensorrt

    import_tensorrt()  # fail before decoding calibration frames
    settings = load_export_settings(args.device_config)
    calib = None
    if settings.precision == "int8":
        calib = _frames(args, settings.calib_frames, settings.input_size)
    engine = build_engine(args.onnx, settings, calib)
    emit_report({"engine": str(engine)}, None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vau-export", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    p = sub.add_parser("onnx", help="export the fused DINOv2 + SETS + TETG graph")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--device-config", type=Path, help="firmware_configs/export/<device>.toml")
    p.add_argument("--keep-ratio", type=float, help="SETS keep ratio (fixes K); overrides config")
    p.add_argument("--input-size", type=int, help="square input side in px; overrides config")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17); overrides config")
    p.add_argument(
        "--external-data",
        choices=["auto", "always", "never"],
        help="weights in <model>.onnx.data (auto: past protobuf's 2 GB limit)",
    )
    p.add_argument("--weights", type=Path, help="transformers DINOv2 folder (default: asset)")
    p.add_argument("--head", default="default", help="TETG head folder (default: bundled)")
    p.set_defaults(handler=cmd_onnx)
    p = sub.add_parser("verify", help="parity of a fused artefact against the torch reference")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--frames", type=int, default=16, help="real frames compared (default 16)")
    p.add_argument("--keep-ratio", type=float, help="refuse the model unless it was made for it")
    p.add_argument("--source", type=Path, help="footage (default: vtest.avi)")
    p.add_argument("--weights", type=Path, help="transformers DINOv2 folder (default: asset)")
    p.add_argument("--head", default="default", help="the TETG head it was exported with")
    p.add_argument("--json", type=Path, help="write the report here too")
    p.set_defaults(handler=cmd_verify)
    p = sub.add_parser("quantize", help="ONNX Runtime int8 (dynamic or static)")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--mode", choices=["dynamic", "static"], default="dynamic")
    p.add_argument(
        "--all-blocks",
        action="store_true",
        help="also quantise the 3 most sensitive sub-blocks (faster, less accurate)",
    )
    p.add_argument("--calib-frames", type=int, default=32, help="static: real frames (default 32)")
    p.add_argument("--source", type=Path, help="calibration footage (default: vtest.avi)")
    p.set_defaults(handler=cmd_quantize)
    p = sub.add_parser("tensorrt", help="ONNX -> TensorRT engine (needs TensorRT and a GPU)")
    p.add_argument("--onnx", type=Path, required=True)
    p.add_argument("--device-config", type=Path, required=True)
    p.add_argument("--source", type=Path, help="INT8 calibration footage (default: vtest.avi)")
    p.set_defaults(handler=cmd_tensorrt)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    from pydantic import ValidationError

    from vau.edge.encoders.artefact import ArtefactError
    from vau.edge.encoders.base import EncoderError

    return (ArtefactError, EncoderError, ValidationError)  # ArtefactError covers ExportError


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv, user_errors)


if __name__ == "__main__":
    sys.exit(main())
