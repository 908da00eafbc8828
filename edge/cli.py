"""`vau-edge`: run the edge agent, benchmark it, train its head, show its settings.

User errors (bad settings, missing video, wrong model path, mismatched head) print one line naming
the fix and exit 2, without a traceback. SIGINT / SIGTERM stop a run cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vau.common.cli import run_command
from vau.edge.settings import EdgeSettings, SettingsError, edge_environment_keys, load_settings

log = logging.getLogger("vau.edge")

# flag dest -> dotted settings key; a flag left unset does not override lower layers.
FLAG_KEYS = {
    "source": "source.uri",
    "fps": "source.fps",
    "backend": "encoder.backend",
    "precision": "encoder.precision",
    "keep_ratio": "sets.keep_ratio",
    "head": "head.path",
    "jsonl": "output.jsonl",
    "metrics_port": "output.metrics_port",
    "log_format": "output.log_format",
    "max_frames": "max_frames",
    "device_id": "device_id",
    "camera_id": "camera_id",
    "cache_dir": "cache_dir",
    "cloud": "uplink.cloud",
    "data_dir": "uplink.data_dir",
    "normality": "normality.path",  # run and bench
    "scorer": "normality.scorer",
    "select": "sets.select",
    "warmup": "normality.warmup_s",
}


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Nested override dict from the flags that were given."""
    out: dict[str, Any] = {}
    values = dict(vars(args))
    if getattr(args, "camera", None) is not None:
        values["source"] = str(args.camera)
    for dest, key in FLAG_KEYS.items():
        value = values.get(dest)
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def settings_from(args: argparse.Namespace) -> EdgeSettings:
    return load_settings(args.config, overrides_from(args))


def run_settings(args: argparse.Namespace) -> EdgeSettings:
    """`run`'s settings: one --source is source.uri (as in the settings file); several are one
    camera each, named by the --camera-id flags in order (else cam-0, cam-1, ...), and replace any
    [cameras] table of the settings file."""
    sources: list[str] = args.source or []
    ids: list[str] | None = args.camera_id
    many = len(sources) > 1
    one = argparse.Namespace(**vars(args))
    one.source = None if many or not sources else sources[0]
    one.camera_id = None if many or not ids else ids[-1]
    settings = settings_from(one)
    return cameras_from_flags(settings, sources, ids) if many else settings


def cameras_from_flags(
    settings: EdgeSettings, sources: list[str], ids: list[str] | None
) -> EdgeSettings:
    if ids is not None and len(ids) != len(sources):
        raise SettingsError(
            f"{len(sources)} --source but {len(ids)} --camera-id; give one id per source, or none"
        )
    names = ids or [f"cam-{i}" for i in range(len(sources))]
    if len(set(names)) != len(names):
        raise SettingsError(f"--camera-id values must differ: {', '.join(names)}")
    cameras = {name: {"source": uri} for name, uri in zip(names, sources, strict=True)}
    return load_settings(None, settings.model_dump() | {"cameras": cameras})


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML settings file (see firmware_configs/)")
    p.add_argument(
        "--backend",
        choices=["torch", "onnx", "tensorrt", "fused"],
        help="model backend (fused = DINOv2 + SETS + head in one graph)",
    )
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], help="inference precision")
    p.add_argument("--cache-dir", type=Path, help="model and footage cache (vau-models)")
    p.add_argument("--log-format", choices=["auto", "text", "json"])


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="run the edge agent on a camera, file or stream")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="N", help="camera index, e.g. 0")
    src.add_argument(
        "--source",
        action="append",
        metavar="PATH|URL",
        help="video file, rtsp:// or http(s):// URL; repeat for several cameras in one process",
    )
    _add_common(p)
    p.add_argument("--dry-run", action="store_true", help="no uplink: local outputs only")
    p.add_argument(
        "--cloud",
        metavar="HOST:PORT[,HOST:PORT...]",
        help="stream effective tokens to this cloud (several: replicas, failed over in order)",
    )
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="folder of the durable outbox")
    p.add_argument("--jsonl", type=Path, metavar="PATH", help="write frame/event records here")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    p.add_argument("--metrics-port", type=int, metavar="P", help="serve Prometheus metrics")
    p.add_argument("--fps", type=float, help="frames per second to process")
    p.add_argument("--keep-ratio", type=float, help="SETS share of patches kept")
    p.add_argument("--head", metavar="DIR", help="TETG head folder ('default' = bundled)")
    p.add_argument(
        "--normality", type=Path, metavar="DIR", help="normality model (`vau-edge learn --out`)"
    )
    p.add_argument("--scorer", choices=["head", "normality", "fused"], help="how frames are scored")
    p.add_argument(
        "--select", choices=["change", "novelty", "both"], help="what SETS keeps (see settings)"
    )
    p.add_argument(
        "--warmup", type=float, metavar="S", help="learn the normal online over the first S s"
    )
    p.add_argument("--device-id")
    p.add_argument(
        "--camera-id",
        action="append",
        help="this camera's id; with several --source, one per source in order (else cam-0, ...)",
    )
    p.set_defaults(handler=cmd_run)


def _add_outbox(sub: Any) -> None:
    p = sub.add_parser("outbox", help="inspect the durable outbox")
    ops = p.add_subparsers(dest="op", required=True)
    stats = ops.add_parser("stats", help="lifetime totals: enqueued, acked, pending, evicted...")
    stats.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    stats.add_argument("--json", action="store_true", help="one JSON object (for scripts)")
    stats.set_defaults(handler=cmd_outbox_stats)


def cmd_outbox_stats(args: argparse.Namespace) -> int:
    from vau.edge.uplink.outbox import read_stats

    stats = read_stats(args.data_dir)
    if args.json:
        print(json.dumps(stats))
    else:
        print("  ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


def _add_config(sub: Any) -> None:
    p = sub.add_parser("config", help="print the effective settings as JSON")
    _add_common(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="a table instead: key, value, default, bounds or choices, description",
    )
    p.set_defaults(handler=cmd_config)


def build_parser() -> argparse.ArgumentParser:
    from vau.edge import bench, bench_bandwidth, evaluate, train_cli
    from vau.edge.normality import learn

    parser = argparse.ArgumentParser(prog="vau-edge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_config(sub)
    _add_outbox(sub)
    bench.add_parser(sub, _add_common)
    bench_bandwidth.add_parser(sub, _add_common)
    learn.add_parser(sub, _add_common)
    evaluate.add_parser(sub, _add_common)
    train_cli.add_parsers(sub, _add_common)
    return parser


def cmd_config(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.explain:
        from vau.common.settings_table import format_table, setting_rows

        print(format_table(setting_rows(settings)))
    else:
        print(settings.model_dump_json(indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from vau.edge.runner import run_agent

    settings = run_settings(args)
    _setup_logging(settings)
    stop = threading.Event()
    _install_signal_handlers(stop)
    return run_agent(settings, stop, dry_run=args.dry_run)


def _setup_logging(settings: EdgeSettings) -> None:
    from vau.edge.console import setup_logging

    setup_logging(settings.output.log_format)
    if edge_environment_keys():
        log.info("settings from environment: %s", ", ".join(edge_environment_keys()))


def _install_signal_handlers(stop: threading.Event) -> None:
    """The first SIGINT / SIGTERM sets `stop`, which every waiting part of a run watches (the
    source's connecting and reconnecting included); a second one ends the process at once."""

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)  # a second signal stops at once

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the user must change something: one line, exit 2, no traceback."""
    from vau.assets import AssetError
    from vau.common.net import PortError
    from vau.edge.encoders.base import EncoderError
    from vau.edge.manifest import ManifestError
    from vau.edge.normality.store import NormalityError
    from vau.edge.sources import SourceError
    from vau.edge.tetg import HeadError
    from vau.edge.uplink.channel import UplinkConfigError
    from vau.edge.uplink.outbox import OutboxError

    return (
        SettingsError, SourceError, EncoderError, HeadError, AssetError, ManifestError,
        UplinkConfigError, OutboxError, NormalityError, PortError,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv, user_errors)


if __name__ == "__main__":
    sys.exit(main())
