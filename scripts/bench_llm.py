"""Explanations per minute through the `openai` backend with N in flight (N = 1 vs 4 by default).

Starts vLLM's CPU build from .venv-vllm (`make vllm`) on the offline SmolLM2 folder on a free
loopback port, unless --base-url names a running OpenAI-compatible server, then runs the same
`--events` explanations (the explainer's real prompts: title and summary, retry, checks) through
a pool of N threads, as the service's LLM pool does. Writes a JSON report and prints a table:

    .venv/bin/python scripts/bench_llm.py --concurrency 1,4 --events 16 --json out/llm_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer, ExplainResult
from vau.cloud.explain.llm import build_llm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.explain.vllm_local import VllmServer, vllm_python

MODEL = "smollm2-135m-instruct"
PRIOR = "Known common anomaly types are: 'Fighting', 'Vandalism'."
REGIONS = ((176, 177, 192), (8, 9, 24), (120, 121, 136), (40, 56, 72))  # lower left, top, ...


def evidence(i: int) -> EventEvidence:
    """Event i: a different place and span each, so no two prompts are the same."""
    start = 2.0 + i
    frames = tuple(
        FrameEvidence(start + 0.5 * k, 0.8, REGIONS[i % len(REGIONS)], (16, 16)) for k in range(3)
    )
    return EventEvidence(
        "cam-0",
        f"ev-{i}",
        start,
        start + 4.0,
        0.92,
        start + 2.0,
        f"{PRIOR} One occurred from {start:.1f}s.",
        frames,
        0.1,
    )


def run(settings: ExplainSettings, n: int, events: int) -> dict[str, Any]:
    metrics = ExplainMetrics(CollectorRegistry())
    explainer = Explainer(settings, build_llm(settings, metrics.llm), metrics)
    explainer.explain(evidence(1000 + n))  # warm: connection, server caches
    began = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results: list[ExplainResult] = list(
            pool.map(explainer.explain, map(evidence, range(events)))
        )
    seconds = time.perf_counter() - began
    latency = sorted(r.seconds for r in results)
    outcomes = {o: sum(r.outcome == o for r in results) for o in ("llm", "retry", "fallback")}
    ok = metrics.value("vau_cloud_llm_requests_total", {"backend": "openai", "result": "ok"})
    failed = metrics.value(
        "vau_cloud_llm_requests_total", {"backend": "openai", "result": "failed"}
    )
    return {
        "concurrency": n,
        "explanations": events,
        "seconds": round(seconds, 2),
        "per_minute": round(60.0 * events / seconds, 2),
        "latency_p50_s": round(statistics.median(latency), 2),
        "latency_max_s": round(latency[-1], 2),
        "llm_requests": int(ok),  # every request, the warm-up included
        "llm_failed": int(failed),
        "outcomes": outcomes,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", help="a running OpenAI-compatible server (default: start vLLM)")
    p.add_argument("--model", default=MODEL, help="the served model name (and local asset)")
    p.add_argument("--concurrency", default="1,4", help="comma-separated N to measure")
    p.add_argument("--events", type=int, default=16, help="explanations per N")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--compile", action="store_true", help="let vLLM torch.compile (slow start)")
    p.add_argument("--json", type=Path, default=Path("out/llm_bench.json"))
    a = p.parse_args()
    server: VllmServer | None = None
    base_url = a.base_url
    if base_url is None:
        python = vllm_python()
        if python is None:
            print("vLLM CPU is not installed: make vllm (or pass --base-url)", file=sys.stderr)
            return 2
        from vau.assets import asset_path

        server = VllmServer(python, asset_path(a.model), a.model, eager=not a.compile)
        server.start(timeout_s=600)
        base_url = server.base_url
        print(f"vLLM served {a.model} after {server.start_s:.0f}s at {base_url}", file=sys.stderr)
    try:
        s = ExplainSettings.model_validate(
            {
                "backend": "openai",
                "model": a.model,
                "max_new_tokens": a.max_new_tokens,
                "concurrency": max(int(n) for n in a.concurrency.split(",")),
                "openai": {"base_url": base_url, "timeout_s": 600.0},
            }
        )
        rows = [run(s, int(n), a.events) for n in a.concurrency.split(",")]
    finally:
        if server is not None:
            server.stop()
    report = {
        "model": a.model,
        "server": "vLLM CPU (started here)" if server is not None else base_url,
        "vllm_start_s": round(server.start_s, 1) if server is not None else None,
        "eager": not a.compile,
        "max_new_tokens": a.max_new_tokens,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "runs": rows,
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2) + "\n")
    print("| N in flight | explanations | seconds | per minute | p50 latency s | max latency s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['concurrency']} | {r['explanations']} | {r['seconds']} | {r['per_minute']} "
            f"| {r['latency_p50_s']} | {r['latency_max_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
