"""Soak test (not run in CI): hours of mixed traffic while the server's RSS is sampled.

    .venv/bin/python bench/soak.py                     # 1 hour, 20 clients, own server
    .venv/bin/python bench/soak.py --duration 300 --json

Starts `memstore serve` on a free loopback port (or attaches to --base-url/--key/--pid),
runs bench/load.py's mixed remember/recall traffic in rounds, and samples the server's
resident memory every --sample seconds. Reports RSS after warm-up (the first round), at
the end and the peak, and the growth between them: steady traffic should not grow it
without bound (the in-memory vector index does grow with the memories stored, about
1.5 KiB each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import own_server, run_load  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` and its children (uvicorn workers), in MiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


async def soak(
    base_url: str, key: str, pid: int, duration: float, clients: int, rounds: int, sample: float
) -> dict:
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - started, rss_mib(pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), sample)

    task = asyncio.create_task(sampler())
    totals = {"requests": 0, "errors": 0, "ops_ok": 0}
    warm_rss = None
    round_seconds = duration / rounds
    latencies: list[float] = []
    for n in range(rounds):
        report = await run_load(base_url, key, clients=clients, duration=round_seconds)
        totals["requests"] += report.requests
        totals["errors"] += report.errors
        totals["ops_ok"] += report.ops_ok
        latencies += report.latencies_ms
        if n == 0:
            warm_rss = rss_mib(pid)
    stop.set()
    await task
    end_rss = rss_mib(pid)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}
    ) as c:
        sessions = (await c.get("/v1/sessions")).json()["sessions"]
    stored = sum(s["count"] for s in sessions)
    latencies.sort()
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 1),
        "clients": clients,
        **totals,
        "throughput_rps": round(totals["requests"] / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
        "rss_start_mib": round(samples[0][1], 1),
        "rss_after_warmup_mib": round(warm_rss, 1),
        "rss_end_mib": round(end_rss, 1),
        "rss_peak_mib": round(max(s[1] for s in samples), 1),
        "rss_growth_after_warmup_mib": round(end_rss - warm_rss, 1),
        "rss_growth_after_warmup_pct": round(100 * (end_rss - warm_rss) / warm_rss, 1),
        "memories_stored": stored,
        "samples": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="load rounds; the first is warm-up")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--base-url", help="a running server (loopback only)")
    parser.add_argument("--key", help="API key for --base-url")
    parser.add_argument("--pid", type=int, help="pid of the server at --base-url")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    kw = dict(duration=args.duration, clients=args.clients, rounds=args.rounds, sample=args.sample)
    if args.base_url:
        if not (args.key and args.pid):
            parser.error("--key and --pid are required with --base-url")
        result = asyncio.run(soak(args.base_url, args.key, args.pid, **kw))
    else:
        with own_server() as (server, key):
            result = asyncio.run(soak(server.url, key, server.proc.pid, **kw))
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>28}: {value}")
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
