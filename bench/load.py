"""Bounded loopback load test: concurrent clients mixing remember and recall.

    .venv/bin/python bench/load.py                      # 50 clients, 60 s, own server
    .venv/bin/python bench/load.py --duration 10 --json
    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8420 --key am_live_...
    .venv/bin/python bench/load.py --servers 3 --postgres  # 3 servers over one pgserver
    .venv/bin/python bench/load.py --embedder-rate        # and the embedder's own ceiling

Without --base-url it starts `memstore serve` (``--servers`` of them, each with
``--workers`` processes) on free loopback ports over a fresh data directory, or over one
throwaway pgserver database with ``--postgres``; clients are spread over the servers.
Requests only ever go to a loopback address. Every run is bounded by both a time limit and
a request count. Prints throughput, p50/p99 latency and errors (any response that is
neither 2xx nor 429, or no response at all), and the texts the server embedded per request.
All clients start at once on a cold server, so the first seconds queue the most; the
``steady`` figures leave out requests sent in the first ``WARM_UP_SECONDS`` and break
the latency down by request kind.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
WARM_UP_SECONDS = 5.0
WORDS = ("apple", "river", "engine", "quota", "llama", "orbit", "cache", "vector", "crew")


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    ops_ok: int = 0  # operations that went through (a batch counts per memory)
    passages_ok: int = 0  # memories remembered (each a unique text: each one embedded)
    cold_queries: int = 0  # recalls of a query text not sent before (not in the query cache)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    kinds: list[str] = field(default_factory=list, repr=False)  # each latency's request kind
    starts: list[float] = field(default_factory=list, repr=False)  # when each was sent
    started: float = field(default_factory=time.perf_counter)  # when the run began
    warm_up: float = WARM_UP_SECONDS  # the steady-state figures leave out requests sent before
    queries_seen: set[tuple[str, str]] = field(default_factory=set, repr=False)
    by_server: Counter = field(default_factory=Counter)  # answered requests per base URL

    @property
    def errors(self) -> int:
        """Failures other than 429 (quota or rate limit): must be zero."""
        bad = sum(n for s, n in self.statuses.items() if not (200 <= s < 300 or s == 429))
        return bad + self.transport_errors

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms) or [0.0]
        steady: dict[str, list[float]] = {}
        for kind, sent, ms in zip(self.kinds, self.starts, self.latencies_ms, strict=True):
            if sent - self.started >= self.warm_up:
                steady.setdefault(kind, []).append(ms)
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
            "embeddings_per_request": round(self.embeddings / self.requests, 3)
            if self.requests
            else 0.0,
            "embeddings_per_s": round(self.embeddings / self.seconds, 1) if self.seconds else 0.0,
            # after the first warm_up seconds (all clients start at once on a cold server):
            # p50 / p99 ms and count, in all and by kind (where the tail comes from)
            "warm_up_s": self.warm_up,
            "steady": _spread([ms for kind in steady.values() for ms in kind]),
            "steady_by_kind": {kind: _spread(ms) for kind, ms in sorted(steady.items())},
        }

    @property
    def embeddings(self) -> int:
        """Texts the server embedded: remembered memories and first-seen recall queries."""
        return self.passages_ok + self.cold_queries


def _spread(samples: list[float]) -> dict[str, float]:
    """p50 and p99 ms of ``samples`` and their count (zeros for none)."""
    if not samples:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "n": 0}
    lat = sorted(samples)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {"p50_ms": round(statistics.median(lat), 1), "p99_ms": round(p99, 1), "n": len(lat)}


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
    base_url: str | list[str],
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
    url = base_url if isinstance(base_url, str) else base_url[n % len(base_url)]
    seen: set[tuple[str, str]] = report.queries_seen
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        i = 0
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            i += 1
            text = " ".join(rng.choice(words) for _ in range(3))
            tag = f" {n}-{i}" if unique else ""
            roll = rng.random()
            recall = roll < recall_share
            if recall:
                method, path, kw, ops = "GET", "/v1/memory/recall", {"params": {"q": text}}, 1
                kw["params"]["session"] = session
                kind = "recall" if (url, text) in seen else "recall, first-seen query"
            elif roll < recall_share + (1 - recall_share) * 0.8:
                body = {"content": text + tag, "session": session}
                method, path, kw, ops = "POST", "/v1/memory/remember", {"json": body}, 1
                kind = "remember"
            else:
                kind = "remember batch of 5"
                items = [{"content": f"{text}{tag} {j}", "session": session} for j in range(5)]
                method, path = "POST", "/v1/memory/remember/batch"
                kw, ops = {"json": {"memories": items}}, len(items)
            started = time.perf_counter()
            try:
                r = await http.request(method, path, **kw)
            except httpx.HTTPError:
                report.transport_errors += 1
                continue
            finally:
                report.requests += 1
                report.latencies_ms.append((time.perf_counter() - started) * 1000)
                report.kinds.append(kind)
                report.starts.append(started)
            report.statuses[r.status_code] += 1
            report.by_server[url] += 1
            if r.is_success:
                report.ops_ok += ops
                if not recall:
                    report.passages_ok += ops
                elif (url, text) not in seen:  # per account and process: all clients share one
                    seen.add((url, text))
                    report.cold_queries += 1


async def run_load(
    base_url: str | list[str],
    key: str,
    *,
    clients: int = 50,
    duration: float = 60.0,
    max_requests: int = 200_000,
    recall_share: float = 0.5,
    words: tuple[str, ...] = WORDS,
    unique: bool = True,
) -> LoadReport:
    """Run ``clients`` concurrent clients until ``duration`` passes or ``max_requests`` are sent
    (client ``n`` talks to ``base_url[n % len(base_url)]`` when given several servers).

    Texts are three of ``words``; with ``unique`` each remembered text also gets a tag of
    its own (so nothing is deduplicated and everything is embedded).
    """
    for url in [base_url] if isinstance(base_url, str) else base_url:
        require_loopback(url)
    report = LoadReport(clients=clients, seconds=0.0)  # (its clock starts here)
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
def own_servers(
    plan: str = "unlimited", servers: int = 1, workers: int = 1, postgres: bool = False
) -> Iterator[tuple[list[str], str, list[int]]]:
    """``servers`` `memstore serve` processes on free loopback ports over one fresh store (a
    SQLite data dir, or a throwaway pgserver database), and a key for them: (URLs, key,
    server pids)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from tests.servers import ServerProcess

    with tempfile.TemporaryDirectory(prefix="memstore-bench-") as tmp, ExitStack() as stack:
        url = None
        if postgres:
            from pg_recall import start_pgserver

            url, pg, _ = start_pgserver()
            stack.callback(pg.cleanup)
        running: list[ServerProcess] = []
        stack.callback(lambda: [s.stop() for s in running])
        for _ in range(servers):
            server = ServerProcess(Path(tmp) / "data", database_url=url, workers=workers)
            running.append(server.start(timeout=120))
        key = running[0].key("bench", plan).key
        yield [s.url for s in running], key, [s.proc.pid for s in running if s.proc]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and all their children (uvicorn workers)."""
    import psutil

    total = 0.0
    for pid in pids:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@contextmanager
def own_server(plan: str = "unlimited") -> Iterator[tuple[Any, str]]:
    """A `memstore serve` on a free loopback port over a fresh data dir, and a key for it."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import ServerProcess

    with tempfile.TemporaryDirectory(prefix="memstore-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            yield server, server.key("bench", plan).key
        finally:
            server.stop()


def embedder_rate(seconds: float = 10.0, callers: int = 8) -> tuple[float, float]:
    """(texts/s, CPU ms per text) of the default embedder alone in this process, ``callers``
    threads each embedding one load-like text at a time (what the server's requests do)."""
    from concurrent.futures import ThreadPoolExecutor

    from memstore.embedding import load_embedder

    embedder = load_embedder()
    embedder.embed_documents(["warm up"])
    rng = random.Random(0)
    done = [0]
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        while time.monotonic() < deadline:
            text = " ".join(rng.choice(WORDS) for _ in range(3)) + f" rate-{n}-{done[0]}"
            embedder.embed_documents([text])
            done[0] += 1

    started, cpu = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(worker, range(callers)))
    cpu_ms = (time.process_time() - cpu) * 1000 / max(1, done[0])
    return done[0] / (time.monotonic() - started), cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="a running server (loopback only)")
    parser.add_argument("--key", help="API key for --base-url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--recall-share", type=float, default=0.5)
    parser.add_argument("--plan", default="unlimited", help="plan of the key for own server")
    parser.add_argument("--servers", type=int, default=1, help="own servers (one store)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    parser.add_argument("--postgres", action="store_true", help="own servers over a pgserver")
    parser.add_argument(
        "--embedder-rate",
        action="store_true",
        help="first measure the embedder alone (10 s) and print the throughput it allows",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    command = "bench/load.py " + " ".join(sys.argv[1:])
    kw = dict(
        clients=args.clients,
        duration=args.duration,
        max_requests=args.max_requests,
        recall_share=args.recall_share,
    )
    rate = embedder_rate() if args.embedder_rate else None
    load_before = load_average()
    if args.base_url:
        if not args.key:
            parser.error("--key is required with --base-url")
        report = asyncio.run(run_load(args.base_url, args.key, **kw))
    else:
        own = own_servers(args.plan, args.servers, args.workers, args.postgres)
        with own as (urls, key, pids):
            server_cpu, client_cpu = cpu_seconds(pids), time.process_time()
            report = asyncio.run(run_load(urls, key, **kw))
            server_cpu = cpu_seconds(pids) - server_cpu
            client_cpu = time.process_time() - client_cpu
    summary: dict[str, Any] = report.summary()
    if not args.base_url and report.requests:
        # CPU per request holds under load better than wall time: 2 cores / CPU per request
        # is what this machine could serve if nothing else ran on it.
        summary["server_cpu_ms_per_request"] = round(server_cpu * 1000 / report.requests, 2)
        summary["client_cpu_ms_per_request"] = round(client_cpu * 1000 / report.requests, 2)
    summary.update(
        servers=1 if args.base_url else args.servers,
        workers=args.workers,
        store="postgres" if args.postgres else "sqlite",
        load=f"{load_before} -> {load_average()}",
        command=command,
    )
    cores = len(os.sched_getaffinity(0))
    if not args.base_url and report.requests:
        # Ceilings from CPU time, which a loaded machine disturbs far less than wall time:
        # every core busy with this server and its clients and nothing else.
        per_request = summary["server_cpu_ms_per_request"] + summary["client_cpu_ms_per_request"]
        summary["cpu_bound_rps"] = round(cores * 1000 / per_request, 1) if per_request else None
    if rate is not None:
        # Every core doing nothing but this mix's embeddings: the most it can reach.
        summary["embedder_texts_per_s"] = round(rate[0], 1)
        summary["embedder_cpu_ms_per_text"] = round(rate[1], 2)
        texts = summary["embeddings_per_request"] * rate[1]
        summary["embedder_bound_rps"] = round(cores * 1000 / texts, 1) if texts else None
    if args.json:
        print(json.dumps(summary))
    else:
        for name, value in summary.items():
            print(f"{name:>22}: {value}")
        print(f"reproduce: .venv/bin/python {command}")
    sys.exit(1 if report.errors else 0)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
