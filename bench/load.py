"""Bounded loopback load test: concurrent clients mixing remember and recall.

    .venv/bin/python bench/load.py                      # 50 clients, 60 s, own server
    .venv/bin/python bench/load.py --duration 10 --json
    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8420 --key am_live_...

Without --base-url it starts `memstore serve` on a free loopback port over a fresh data
directory. Requests only ever go to a loopback address. Every run is bounded by both a
time limit and a request count. Prints throughput, p50/p99 latency and errors (any
response that is neither 2xx nor 429, or no response at all).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("apple", "river", "engine", "quota", "llama", "orbit", "cache", "vector", "crew")


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    ops_ok: int = 0  # operations that went through (a batch counts per memory)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def errors(self) -> int:
        """Failures other than 429 (quota or rate limit): must be zero."""
        bad = sum(n for s, n in self.statuses.items() if not (200 <= s < 300 or s == 429))
        return bad + self.transport_errors

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms) or [0.0]
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "throughput_rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(lat), 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
            "errors": self.errors,
            "ops_ok": self.ops_ok,
        }


def require_loopback(base_url: str) -> None:
    host = urlsplit(base_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to send load to {host!r}: loopback addresses only")


async def _client(
    n: int,
    base_url: str,
    key: str,
    deadline: float,
    budget: list[int],
    report: LoadReport,
    recall_share: float,
    words: tuple[str, ...],
    unique: bool,
) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {key}"}
    session = f"load-{n % 10}"
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
        i = 0
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            i += 1
            text = " ".join(rng.choice(words) for _ in range(3))
            tag = f" {n}-{i}" if unique else ""
            roll = rng.random()
            if roll < recall_share:
                method, url, kw, ops = "GET", "/v1/memory/recall", {"params": {"q": text}}, 1
                kw["params"]["session"] = session
            elif roll < recall_share + (1 - recall_share) * 0.8:
                body = {"content": text + tag, "session": session}
                method, url, kw, ops = "POST", "/v1/memory/remember", {"json": body}, 1
            else:
                items = [{"content": f"{text}{tag} {j}", "session": session} for j in range(5)]
                method, url = "POST", "/v1/memory/remember/batch"
                kw, ops = {"json": {"memories": items}}, len(items)
            started = time.perf_counter()
            try:
                r = await http.request(method, url, **kw)
            except httpx.HTTPError:
                report.transport_errors += 1
                continue
            finally:
                report.requests += 1
                report.latencies_ms.append((time.perf_counter() - started) * 1000)
            report.statuses[r.status_code] += 1
            if r.is_success:
                report.ops_ok += ops


async def run_load(
    base_url: str,
    key: str,
    *,
    clients: int = 50,
    duration: float = 60.0,
    max_requests: int = 200_000,
    recall_share: float = 0.5,
    words: tuple[str, ...] = WORDS,
    unique: bool = True,
) -> LoadReport:
    """Run ``clients`` concurrent clients until ``duration`` passes or ``max_requests`` are sent.

    Texts are three of ``words``; with ``unique`` each remembered text also gets a tag of
    its own (so nothing is deduplicated and everything is embedded).
    """
    require_loopback(base_url)
    report = LoadReport(clients=clients, seconds=0.0)
    budget = [max_requests]
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(
        *(
            _client(n, base_url, key, deadline, budget, report, recall_share, words, unique)
            for n in range(clients)
        )
    )
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def own_server(plan: str = "unlimited"):
    """A `memstore serve` on a free loopback port over a fresh data dir, and a key for it."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import ServerProcess

    with tempfile.TemporaryDirectory(prefix="memstore-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            yield server, server.key("bench", plan).key
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="a running server (loopback only)")
    parser.add_argument("--key", help="API key for --base-url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--recall-share", type=float, default=0.5)
    parser.add_argument("--plan", default="unlimited", help="plan of the key for own server")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    kw = dict(
        clients=args.clients,
        duration=args.duration,
        max_requests=args.max_requests,
        recall_share=args.recall_share,
    )
    if args.base_url:
        if not args.key:
            parser.error("--key is required with --base-url")
        report = asyncio.run(run_load(args.base_url, args.key, **kw))
    else:
        with own_server(args.plan) as (server, key):
            report = asyncio.run(run_load(server.url, key, **kw))
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        for name, value in summary.items():
            print(f"{name:>16}: {value}")
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()
