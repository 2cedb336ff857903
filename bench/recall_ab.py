"""This tree's recall against another tree's, in one process, query by query.

Timing two trees in two processes one after the other mixes their difference with the
host's load, which moves by more than a millisecond on a shared machine. This imports the
other tree's ``memstore`` under another name (a copy with its imports renamed), opens both
over one SQLite file (bench/latency.py's corpus at --n memories in one session) and, for
each query, recalls with each in turn (the order alternates): cached (the query's vector in
the engine's cache) and cold (the cache cleared, so the recall embeds), and embeds the
query alone beside them. It prints p50 wall and CPU, and cold over the embedding.

    .venv/bin/python bench/recall_ab.py --against ../memstore-main --n 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (  # noqa: E402
    SESSION,
    bench_corpus,
    corpus_options,
    fill_memstore,
    load_average,
)

from memstore import Memstore  # noqa: E402

OTHER = "memstore_other"
_IMPORT = re.compile(r"\b(from|import) memstore\b")
_NAMED = re.compile(r"\"memstore\.(?!db\")")  # module names, not the file memstore.db


def import_other(tree: Path, into: Path) -> Any:
    """The other tree's ``memstore`` package, copied into ``into`` as ``memstore_other``."""
    target = into / OTHER
    shutil.copytree(tree / "src" / "memstore", target)
    for path in target.rglob("*.py"):
        text = path.read_text()
        path.write_text(_NAMED.sub(f'"{OTHER}.', _IMPORT.sub(rf"\1 {OTHER}", text)))
    sys.path.insert(0, str(into))
    import memstore_other  # type: ignore[import-not-found]

    return memstore_other


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    cpu, start = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", type=Path, required=True, help="the other tree (its src/)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--cold", type=int, default=60, help="cold recalls per round and tree")
    corpus_options(ap)
    args = ap.parse_args()

    embedder, corpus, queries = bench_corpus(args.data, args.queries, args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        other = import_other(args.against, Path(tmp) / "pkg")
        data = Path(tmp) / "data"
        data.mkdir()
        fill_memstore(data, corpus, 0, args.n)
        trees = {
            "other": other.Memstore.local(data, embedder=embedder),
            "this": Memstore.local(data, embedder=embedder),
        }
        for ms in trees.values():
            for q in queries:
                ms.recall(q, session=SESSION, limit=10)
        samples: dict[str, dict[str, list[float]]] = {
            t: {"cached": [], "cached_cpu": [], "cold": []} for t in trees
        }
        embedding: list[float] = []
        load_before = load_average()
        names = list(trees)
        for _ in range(args.rounds):
            for i, q in enumerate(queries):
                for t in names[i % 2 :] + names[: i % 2]:
                    wall, cpu = _timed(
                        lambda t=t, q=q: trees[t].recall(q, session=SESSION, limit=10)
                    )
                    samples[t]["cached"].append(wall)
                    samples[t]["cached_cpu"].append(cpu)
            for i, q in enumerate(queries[: args.cold]):
                embedding.append(_timed(lambda q=q: embedder.embed_query(q))[0])
                for t in names[i % 2 :] + names[: i % 2]:
                    trees[t].backend.engine._queries.clear()
                    wall, _ = _timed(lambda t=t, q=q: trees[t].recall(q, session=SESSION, limit=10))
                    samples[t]["cold"].append(wall)
            for ms in trees.values():  # the next round's cached recalls find their vectors
                for q in queries:
                    ms.backend.engine._query_vector(ms.backend.account_id, q)
        embed = statistics.median(embedding)
        print(f"{args.n:,} memories, {len(queries)} queries x {args.rounds} rounds")
        print(f"query embedding alone p50 {embed:.2f} ms")
        for t in names:
            p50 = {k: statistics.median(v) for k, v in samples[t].items()}
            label = args.against if t == "other" else Path(__file__).resolve().parents[1]
            print(
                f"{t:5} ({label}): cached p50 {p50['cached']:.2f} ms wall,"
                f" {p50['cached_cpu']:.2f} ms CPU; cold p50 {p50['cold']:.2f} ms"
                f" = {p50['cold'] / embed:.3f}x the embedding"
            )
        for ms in trees.values():
            ms.close()
    print(f"load {load_before} -> {load_average()}")
    print(f"reproduce: .venv/bin/python bench/recall_ab.py {shlex.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
