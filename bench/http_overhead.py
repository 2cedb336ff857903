"""HTTP overhead over local recall (cached query vector): wall time and CPU per request.

At each size (memories in one session, LoCoMo turns as bench/latency.py builds them) it
measures, interleaved round by round so machine noise falls on every variant alike:

- ``local``: the SDK's local mode in this process (the reference);
- ``sdk``: the SDK over HTTP to a real ``memstore serve`` (POST /v1/memory/recall);
- ``raw GET``: one httpx.Client GET /v1/memory/recall on the same server (no SDK parsing);
- ``httpx POST``: the SDK's request as it was sent before its sync client moved to urllib3
  (httpx POST, json.loads, one pydantic model per memory): the client's share, A/B;
- with ``--compare SRC``: the same two against a server importing memstore from ``SRC``
  (another tree's ``src/``, e.g. ``git archive main src | tar -x -C /tmp/main``): an A/B.

Every query is recalled once before measuring, so each path has its query vector cached.
Per variant: p50 / p90 wall ms per request, the server's CPU ms per request (user + system
of its process) and this process' CPU ms per request, and the overhead over local at p50.
``engine`` is the p50 wall time inside ``MemoryEngine.recall`` for the same requests (in
the server process for the HTTP variants, in this one for ``local``; the method is wrapped
with a timer in both): the HTTP layer's share is ``p50 - engine``.

    .venv/bin/python bench/http_overhead.py                       # 1k and 10k
    .venv/bin/python bench/http_overhead.py --n 1000 --compare /tmp/main/src --rounds 8
    .venv/bin/python bench/http_overhead.py --alternate --same-store  # latency.py's way

``--alternate`` calls every variant on each query in turn (bench/latency.py's cached pass),
``--same-store`` opens local mode on the first server's store (as bench/latency.py does, so
each side's writes, such as the quota charge, reach the other's readers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402
from engine_timer import ENGINE_LOG_ENV, LOCAL_ENGINE_MS, time_engine  # noqa: E402
from latency import (  # noqa: E402
    SESSION,
    Corpus,
    bench_corpus,
    corpus_options,
    fill_memstore,
    load_average,
)

from memstore import Memstore  # noqa: E402
from memstore.accounts import DEFAULT_ACCOUNT  # noqa: E402
from memstore.models import RecalledMemory  # noqa: E402
from memstore.server.auth import issue_key  # noqa: E402
from memstore.stores.sqlite import SQLiteStore  # noqa: E402

K = 10


class Server(latency.Server):
    """``memstore serve`` on a free loopback port, importing memstore from ``src`` if given
    (readiness and stopping as ``bench/latency.py``'s server), after running ``prelude``
    (code that sees ``engine_timer``'s names; by default, recall's timer)."""

    def __init__(
        self, data_dir: Path, src: str | None, log: Path, prelude: str = "time_engine()"
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if src:
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.log = open(log, "wb")  # noqa: SIM115
        self.engine_log = log.with_suffix(".engine")
        env[ENGINE_LOG_ENV] = str(self.engine_log)
        bench_dir = str(Path(__file__).resolve().parent)
        code = (
            f"import sys; sys.path.insert(0, {bench_dir!r}); "
            f"from engine_timer import *; {prelude}; "
            "from memstore.cli import app; sys.argv[0] = 'memstore'; app()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--port", str(self.port)]
            + ["--data-dir", str(data_dir), "--log-level", "warning"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def engine_mark(self) -> int:
        """Where the next engine times will start in the server's engine log."""
        return self.engine_log.stat().st_size if self.engine_log.exists() else 0

    def engine_times(self, mark: int) -> list[float]:
        """The server's engine wall ms per recall since ``mark``."""
        with open(self.engine_log, "rb") as f:
            f.seek(mark)
            return [float(line) for line in f.read().split()]


def engine_mark(server: Server | None) -> int:
    """Where the next engine times will start: in ``server``'s log, or (None) this process'."""
    return server.engine_mark() if server else len(LOCAL_ENGINE_MS)


def engine_since(server: Server | None, mark: int) -> list[float]:
    """The engine wall ms per call since ``mark`` (``engine_mark``)."""
    return server.engine_times(mark) if server else LOCAL_ENGINE_MS[mark:]


def keyed_store(base: Path, corpus: Corpus, n: int) -> str:
    """A new data dir ``base`` holding the corpus' first ``n`` memories in one session, and
    an API key of its default account (the key)."""
    base.mkdir()
    fill_memstore(base, corpus, 0, n)
    admin = SQLiteStore(base / "memstore.db")
    try:
        return issue_key(admin, DEFAULT_ACCOUNT).key
    finally:
        admin.close()


def httpx_post(client: httpx.Client) -> Callable[[str], Any]:
    """What the SDK did before it sent with urllib3: httpx POST, json.loads, one model each."""

    def call(q: str) -> Any:
        r = client.post("/v1/memory/recall", json={"query": q, "session": SESSION, "limit": K})
        r.raise_for_status()
        return [RecalledMemory.model_validate(m) for m in r.json()["memories"]]

    return call


def raw_get(client: httpx.Client) -> Callable[[str], Any]:
    def call(q: str) -> Any:
        r = client.get("/v1/memory/recall", params={"q": q, "session": SESSION, "limit": K})
        r.raise_for_status()
        return r.content

    return call


def measure(
    n: int, args: argparse.Namespace, embedder: Any, corpus: Corpus, queries: list[str], work: Path
) -> dict[str, Any]:
    base = work / f"base-{n}"
    key = keyed_store(base, corpus, n)
    trees = {"": None} | ({"main ": args.compare} if args.compare else {})
    servers: dict[str, Server] = {}
    clients: list[Any] = []
    calls: dict[str, tuple[Callable[[str], Any], Server | None]] = {}
    # --same-store: the local engine opens the first server's store, as bench/latency.py does
    local_dir = work / (f"server0-{n}" if args.same_store else f"local-{n}")
    shutil.copytree(base, local_dir)
    local = Memstore.local(local_dir, embedder=embedder)
    calls["local"] = (lambda q: local.recall(q, session=SESSION, limit=K), None)
    try:
        for label, src in trees.items():
            data_dir = work / f"server{len(servers)}-{n}"
            if not data_dir.exists():  # (server0 is the local store's with --same-store)
                shutil.copytree(base, data_dir)
            server = Server(data_dir, src, work / f"server{len(servers)}-{n}.log")
            servers[label] = server
            server.wait_ready()
            sdk = Memstore(api_key=key, base_url=server.url)
            raw = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
            clients += [sdk, raw]
            calls[label + "sdk"] = (lambda q, s=sdk: s.recall(q, session=SESSION, limit=K), server)
            calls[label + "raw GET"] = (raw_get(raw), server)
            if not label:  # the client's cost: the same server, the SDK's former transport
                calls["httpx POST"] = (httpx_post(raw), server)
        for call, _ in calls.values():  # every query vector cached on every path
            for q in queries:
                call(q)
        wall: dict[str, list[float]] = {name: [] for name in calls}
        server_cpu: dict[str, float] = dict.fromkeys(calls, 0.0)
        engine_ms: dict[str, list[float]] = {name: [] for name in calls}
        client_cpu: dict[str, float] = dict.fromkeys(calls, 0.0)
        names = list(calls)
        loads = [load_average()]
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            # a pass of all queries per variant, or (--alternate) every variant per query
            steps = (
                [(name, [q]) for q in queries for name in order]
                if args.alternate
                else [(name, queries) for name in order]
            )
            for name, batch in steps:
                call, server = calls[name]
                s0 = server.cpu() if server else 0.0
                mark = engine_mark(server)
                c0 = time.process_time()
                for q in batch:
                    t0 = time.perf_counter()
                    call(q)
                    wall[name].append((time.perf_counter() - t0) * 1000)
                client_cpu[name] += time.process_time() - c0
                if server:
                    server_cpu[name] += server.cpu() - s0
                engine_ms[name] += engine_since(server, mark)
        loads.append(load_average())
    finally:
        for c in clients:
            c.close()
        for server in servers.values():
            server.stop()
        local.close()
    count = args.rounds * len(queries)
    rows = {}
    local_p50 = float(np.percentile(wall["local"], 50))
    for name in names:
        p50 = float(np.percentile(wall[name], 50))
        rows[name] = {
            "p50_ms": p50,
            "p90_ms": float(np.percentile(wall[name], 90)),
            "overhead_p50_ms": p50 - local_p50,
            "engine_p50_ms": float(np.percentile(engine_ms[name], 50)),
            "server_cpu_ms": server_cpu[name] * 1000 / count,
            "client_cpu_ms": client_cpu[name] * 1000 / count,
        }
    return {"n": n, "load": loads, "variants": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append", help="memories (repeatable; 1k and 10k)")
    ap.add_argument("--queries", type=int, default=100, help="distinct queries per pass")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved passes per variant")
    ap.add_argument("--compare", help="another tree's src/ to A/B against")
    ap.add_argument(
        "--alternate",
        action="store_true",
        help="every variant on each query in turn (as bench/latency.py), not a pass each",
    )
    ap.add_argument(
        "--same-store",
        action="store_true",
        help="local mode and the (first) server share one store, as in bench/latency.py",
    )
    corpus_options(ap)
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args()
    sizes = args.n or [1_000, 10_000]
    time_engine()
    embedder, corpus, queries = bench_corpus(args.data, args.queries, args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="memstore-http-overhead-"))
    results = []
    try:
        for n in sizes:
            results.append(measure(n, args, embedder, corpus, queries, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ncached recall, {len(queries)} queries x {args.rounds} interleaved rounds")
    print(
        f"{'memories':>9} {'variant':<14} {'p50':>7} {'p90':>7} {'over local':>10} "
        f"{'engine':>7} {'server CPU':>10} {'client CPU':>10}  (ms per request)"
    )
    for res in results:
        for name, v in res["variants"].items():
            print(
                f"{res['n']:>9,} {name:<14} {v['p50_ms']:>7.2f} {v['p90_ms']:>7.2f} "
                f"{v['overhead_p50_ms']:>+10.2f} {v['engine_p50_ms']:>7.2f} "
                f"{v['server_cpu_ms']:>10.2f} "
                f"{v['client_cpu_ms']:>10.2f}"
            )
        print(f"{'':>9} load average {res['load'][0]} -> {res['load'][-1]}")
    print(f"\nreproduce: .venv/bin/python bench/http_overhead.py {' '.join(sys.argv[1:])}")
    if args.json:
        print(json.dumps({"results": results, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
