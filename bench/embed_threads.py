"""The query embedding on one OpenMP thread or on several (``E5Embedder``'s lone-text rule).

    .venv/bin/python bench/embed_threads.py                 # 200 lone queries, 30 pairs
    .venv/bin/python bench/embed_threads.py --queries 400 --pairs 60 --json
    .venv/bin/python bench/embed_threads.py --recall 1000       # also cold recalls at 1k

In one process, interleaved query by query so machine noise hits both alike:

- **lone**: one query at a time through ``E5Embedder(threads=1)`` (one thread always)
  and ``E5Embedder(threads=0)`` (the default: a lone text on as many threads as handles,
  at most the cores): wall p50/p99 and CPU per query (all the process's threads);
- **pairs**: query A starts alone, query B arrives ``offset`` ms later, for three rules:
  ``one`` (both on one thread each, as before), ``wait`` (A wide, B waits for it: the
  rule when threads > 1) and ``share`` (A wide, B starts beside it on one thread: three
  threads on two cores). A's and B's latency (B's from its arrival) and the mean of both;
- **recall** (``--recall N``): cold recalls (every query new to its engine) through two
  ``Memstore.local`` engines over one SQLite store of N memories (bench/latency.py's corpus),
  one per rule, interleaved query by query;
- **idle**: CPU time the process spends in one idle second after all that (OpenMP workers
  that spin would show here; ``OMP_WAIT_POLICY=PASSIVE`` keeps them asleep).

Timing figures depend on the load (printed); compare the rules within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from memstore.embedding import E5Embedder

DEFAULT_DATA = "/work/shared/data/locomo-dev.json"
DEFAULT_CACHE = Path.home() / ".cache" / "memstore-bench"  # bench/latency.py's corpus cache


def questions(data: str, n: int) -> list[str]:
    if Path(data).exists():
        samples = json.loads(Path(data).read_text())
        found = list(dict.fromkeys(q["question"] for s in samples for q in s["qa"]))
    else:
        found = [
            f"what did the crew decide about release {i} and its launch date?" for i in range(n)
        ]
    return (found * (n // max(1, len(found)) + 1))[:n]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def lone(rules: dict[str, E5Embedder], texts: list[str]) -> dict[str, dict[str, float]]:
    wall: dict[str, list[float]] = {name: [] for name in rules}
    cpu: dict[str, list[float]] = {name: [] for name in rules}
    names = list(rules)
    for i, text in enumerate(texts):
        for name in names[i % 2 :] + names[: i % 2]:  # alternate who goes first
            c, t = time.process_time(), time.perf_counter()
            rules[name].embed_query(text)
            wall[name].append((time.perf_counter() - t) * 1000)
            cpu[name].append((time.process_time() - c) * 1000)
    return {
        name: {
            "p50_ms": round(statistics.median(wall[name]), 2),
            "p99_ms": round(pct(wall[name], 0.99), 2),
            "cpu_p50_ms": round(statistics.median(cpu[name]), 2),
        }
        for name in names
    }


def pair(embedder: E5Embedder, a: str, b: str, offset: float) -> tuple[float, float]:
    """(A's, B's) latency in ms: A starts at once, B ``offset`` seconds later."""
    got: dict[str, float] = {}
    go = threading.Event()

    def run(key: str, text: str, delay: float) -> None:
        go.wait()
        time.sleep(delay)
        t = time.perf_counter()
        embedder.embed_query(text)
        got[key] = (time.perf_counter() - t) * 1000

    threads = [
        threading.Thread(target=run, args=("a", a, 0.0)),
        threading.Thread(target=run, args=("b", b, offset)),
    ]
    for th in threads:
        th.start()
    go.set()
    for th in threads:
        th.join()
    return got["a"], got["b"]


def pairs(
    rules: dict[str, tuple[E5Embedder, bool]], texts: list[str], offsets: list[float], rounds: int
) -> list[dict[str, float | str]]:
    seen: dict[tuple[float, str], list[tuple[float, float]]] = {}
    i = 0
    for _ in range(rounds):
        for offset in offsets:
            for name, (embedder, wait) in rules.items():
                embedder.wait_for_wide = wait
                a, b = texts[i % len(texts)], texts[(i + 1) % len(texts)]
                i += 2
                seen.setdefault((offset, name), []).append(pair(embedder, a, b, offset / 1000))
    rows: list[dict[str, float | str]] = []
    for (offset, name), got in seen.items():
        a = statistics.median(x for x, _ in got)
        b = statistics.median(y for _, y in got)
        rows.append(
            {
                "offset_ms": offset,
                "rule": name,
                "a_p50_ms": round(a, 1),
                "b_p50_ms": round(b, 1),
                "mean_ms": round((a + b) / 2, 1),
            }
        )
    return rows


def cold_recalls(
    rules: dict[str, E5Embedder], n: int, data: str, want: int
) -> dict[str, dict[str, float]]:
    """Cold local recall p50/p99 per rule over one store of ``n`` memories, interleaved."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from latency import SESSION, Corpus, embed_corpus, fill_memstore, load_texts

    from memstore import Memstore

    texts, queries, _ = load_texts(data, want)
    base, _ = embed_corpus(next(iter(rules.values())), texts, DEFAULT_CACHE)
    with tempfile.TemporaryDirectory(prefix="memstore-bench-") as tmp:
        fill_memstore(Path(tmp), Corpus(texts, base, 0.35), 0, n)
        clients = {name: Memstore.local(tmp, embedder=e) for name, e in rules.items()}
        for ms in clients.values():
            ms.recall("warm up the index", session=SESSION)
        wall: dict[str, list[float]] = {name: [] for name in rules}
        names = list(rules)
        for i, q in enumerate(queries):
            for name in names[i % 2 :] + names[: i % 2]:
                t = time.perf_counter()
                clients[name].recall(q, session=SESSION, limit=10)
                wall[name].append((time.perf_counter() - t) * 1000)
        for ms in clients.values():
            ms.close()
    return {
        name: {
            "p50_ms": round(statistics.median(v), 2),
            "p99_ms": round(pct(v, 0.99), 2),
            "queries": len(v),
        }
        for name, v in wall.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="LoCoMo json (questions as queries)")
    ap.add_argument("--queries", type=int, default=200, help="lone queries per rule")
    ap.add_argument("--pairs", type=int, default=30, help="pairs per rule and offset")
    ap.add_argument("--offsets", default="0,8,16", help="ms after A that B arrives")
    ap.add_argument("--recall", type=int, default=0, help="also cold recalls at N memories")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args()
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    load_before = os.getloadavg()
    one, auto = E5Embedder(threads=1), E5Embedder(threads=0)
    texts = questions(args.data, max(args.queries, 2 * args.pairs))
    lone({"one thread": one, "auto": auto}, texts[:10])  # warm the model's pages
    result: dict = {"lone_threads": auto.lone_threads, "handles": len(auto._models)}
    result["lone"] = lone({"one thread": one, "auto": auto}, texts[: args.queries])
    offsets = [float(x) for x in args.offsets.split(",")]
    rules = {"one": (one, True), "wait": (auto, True), "share": (auto, False)}
    result["pairs"] = pairs(rules, texts, offsets, args.pairs)
    auto.wait_for_wide = True
    if args.recall:
        rules_ = {"one thread": one, "auto": auto}
        result["recall"] = cold_recalls(rules_, args.recall, args.data, args.queries)
    time.sleep(0.2)
    c = time.process_time()
    time.sleep(1.0)
    result["idle_cpu_ms_per_s"] = round((time.process_time() - c) * 1000, 2)
    result["load"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    print(f"load average before {load_before[:3]}, after {os.getloadavg()}")
    print(f"lone query, handles {result['handles']}, auto threads {auto.lone_threads}:")
    for name, row in result["lone"].items():
        print(
            f"  {name:10s} p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  "
            f"CPU p50 {row['cpu_p50_ms']:6.2f} ms"
        )
    print("B arrives while A runs (A wide under wait/share):")
    for row in sorted(result["pairs"], key=lambda r: (r["offset_ms"], str(r["rule"]))):
        print(
            f"  B at +{row['offset_ms']:4.0f} ms  {row['rule']:5s}  A p50 {row['a_p50_ms']:6.1f}"
            f"  B p50 {row['b_p50_ms']:6.1f}  mean {row['mean_ms']:6.1f} ms"
        )
    for name, row in result.get("recall", {}).items():
        print(
            f"cold local recall at {args.recall}, {name:10s}: p50 {row['p50_ms']:6.2f} ms"
            f"  p99 {row['p99_ms']:6.2f} ms ({row['queries']} queries)"
        )
    print(f"idle CPU after: {result['idle_cpu_ms_per_s']} ms per second")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
