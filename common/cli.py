"""What every vau command does at its edge: user errors become one line and exit 2, reports
are JSON on stdout and optionally in a file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    user_errors: Callable[[], tuple[type[Exception], ...]],
) -> int:
    """Parse, dispatch to `args.handler`; a user error prints `prog: error: ...` and exits 2."""
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except user_errors() as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def emit_report(report: Any, path: Path | None) -> None:
    """A benchmark's JSON report: printed, and written to `path` when given."""
    text = json.dumps(report, indent=2)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", "utf-8")
    print(text)
