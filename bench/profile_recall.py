"""Where one recall's time goes: per-stage wall times and a cProfile, cold and cached.

Builds bench/latency.py's corpus (real e5 vectors of LoCoMo turns, jittered past 2,759) at
--n memories in one session, then runs distinct LoCoMo questions through the SDK's local
mode twice: cold (the query is embedded) and cached (the per-account query-vector LRU).
A profile under load still shows the shares of each function, which the wall time does not.

    .venv/bin/python bench/profile_recall.py --n 10000
    .venv/bin/python bench/profile_recall.py --n 100000 --top 25
    .venv/bin/python bench/profile_recall.py --n 100000 --fts5   # + a cached pass on FTS5

First, without the profiler, a cached pass reports each recall stage's mean wall time (the
engine's own stage timer, ``metrics.laps``): embedding, dense, keyword (the wait for it),
context, fusion. ``MEMSTORE_VECTOR_CODES_MIN_ROWS=0`` turns dense search's int8 first pass
off (the float32 scan, as before it), for a before/after in one tree.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (  # noqa: E402
    SESSION,
    bench_corpus,
    corpus_options,
    fill_memstore,
    load_average,
)

from memstore import Memstore, metrics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=150)
    corpus_options(ap)
    ap.add_argument("--top", type=int, default=20, help="profile lines shown")
    ap.add_argument(
        "--fts5", action="store_true", help="add a cached pass with keywords from FTS5 (before)"
    )
    ap.add_argument("--stages-only", action="store_true", help="skip the cProfile passes")
    args = ap.parse_args()

    embedder, corpus, queries = bench_corpus(args.data, args.queries, args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fill_memstore(Path(tmp), corpus, 0, args.n)
        ms = Memstore.local(tmp, embedder=embedder)
        ms.recall("warm up the index", session=SESSION)
        embed = [_ms(lambda q=q: embedder.embed_query(q)) for q in queries]
        c0 = time.process_time()
        for q in queries:
            embedder.embed_query(q)
        embed_cpu = (time.process_time() - c0) * 1000 / len(queries)
        ms.backend.engine._queries.clear()
        print(f"{args.n:,} memories, {len(queries)} queries; load {load_average()}")
        print(
            f"query embed alone p50 {statistics.median(embed):7.2f} ms wall,"
            f" {embed_cpu:7.2f} ms CPU (mean)"
        )
        store = ms.backend.engine.store
        _stage_pass(ms, queries)
        indexed = store.keyword_index_max_rows
        passes = ("cold", "cached") + (("cached-fts5",) if args.fts5 else ())
        for name in () if args.stages_only else passes:
            store.keyword_index_max_rows = 0 if name == "cached-fts5" else indexed
            # CPU time, not wall time: other processes' load then does not show in the profile
            prof = cProfile.Profile(time.process_time)
            times, cpu = [], []
            for q in queries:
                c0 = time.process_time()
                prof.enable()
                t = _ms(lambda q=q: ms.recall(q, session=SESSION, limit=10))
                prof.disable()
                cpu.append((time.process_time() - c0) * 1000)
                times.append(t)
            print(
                f"recall {name:<6} p50 {statistics.median(times):7.2f} ms wall,"
                f" {statistics.median(cpu):7.2f} ms CPU (all threads)"
            )
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
        ms.close()
    print(f"load {load_average()}; cpus {os.cpu_count()}")
    print(f"reproduce: .venv/bin/python bench/profile_recall.py {' '.join(sys.argv[1:])}")


def _stage_pass(ms: Memstore, queries: list[str]) -> None:
    """Cached recalls without the profiler: wall p50, CPU p50 and each stage's mean."""
    metrics.enable()
    for q in queries:  # the vectors into the engine's cache
        ms.recall(q, session=SESSION, limit=10)
    registry = metrics._metrics.registry if metrics._metrics else None
    name = "memstore_recall_stage_duration_seconds"

    def stage_sums() -> dict[str, float]:
        return {
            s: (registry.get_sample_value(f"{name}_sum", {"stage": s}) or 0.0) if registry else 0.0
            for s in metrics.STAGES
        }

    before, times, cpu = stage_sums(), [], []
    for q in queries:
        c0 = time.process_time()
        times.append(_ms(lambda q=q: ms.recall(q, session=SESSION, limit=10)))
        cpu.append((time.process_time() - c0) * 1000)
    after = stage_sums()
    stages = ", ".join(
        f"{s} {(after[s] - before[s]) * 1000 / len(queries):.2f}" for s in metrics.STAGES
    )
    codes = os.environ.get("MEMSTORE_VECTOR_CODES_MIN_ROWS", "default")
    print(
        f"recall cached, no profiler: p50 {statistics.median(times):7.2f} ms wall,"
        f" {statistics.median(cpu):7.2f} ms CPU; stage means (ms): {stages};"
        f" vector codes min rows: {codes}; RSS {_rss_mb():.0f} MB; load {load_average()}"
    )


def _rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ms(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main()
