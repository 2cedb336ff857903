"""What collapse and explain cost: recall p50 at N memories with them on and off, one run.

    python bench/collapse_cost.py --data ../shared/data/locomo-dev.json [--memories 10000]

Memories are LoCoMo turns in one session (the worst case: every recall scores them all),
imported without embedding: turn ``i`` gets a random unit vector, and memory ``j`` past the
turns repeats turn ``j mod turns`` with that vector plus a little noise (cosine ~0.97), so
near-duplicate groups are everywhere, as in a run log. Each query is a LoCoMo question (for
the keyword half) with the vector of a random stored turn plus noise (so its top hits are a
group to collapse). The recall pipeline runs with that vector (no query embedding: it costs
the same in every mode), interleaving the modes so that load from other processes hits all
alike; the ratios are the figure to read, with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memstore.models import content_hash
from memstore.recall import RecallQuery, recall
from memstore.stores.base import MemoryRow
from memstore.stores.sqlite import SQLiteStore

ACCOUNT = "bench"
SESSION = "cost"
DIM = 384
MODES = {"plain": (False, False), "collapse": (True, False), "collapse+explain": (True, True)}


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.25, help="jitter of a repeated turn")
    args = parser.parse_args(argv)
    samples = json.loads(args.data.read_text())
    turns = [
        f"{t['speaker']}: {t.get('text', '')}"
        for s in samples
        for key, value in s["conversation"].items()
        if key.startswith("session_") and isinstance(value, list)
        for t in value
    ]
    questions = [qa["question"] for s in samples for qa in s["qa"]][: args.queries]
    rng = np.random.default_rng(0)
    base = unit(rng.standard_normal((len(turns), DIM)))
    jitter = args.noise / np.sqrt(DIM)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore.open_dir(Path(tmp))
        store.create_account(ACCOUNT, ACCOUNT, "unlimited", time.time())
        for start in range(0, args.memories, 1000):
            idx = list(range(start, min(start + 1000, args.memories)))
            texts = [f"{turns[i % len(turns)]} ({i})" for i in idx]
            vectors = base[[i % len(turns) for i in idx]]
            noisy = np.array([i >= len(turns) for i in idx])[:, None]
            vectors = unit(vectors + noisy * rng.standard_normal(vectors.shape) * jitter)
            now = time.time()
            rows = [
                MemoryRow(f"mem_{i:024x}", ACCOUNT, SESSION, t, content_hash(t), {}, now, now)
                for i, t in zip(idx, texts, strict=True)
            ]
            store.insert(rows, vectors)
        queries = [
            (
                q,
                unit(
                    base[rng.integers(len(turns))] + rng.standard_normal(DIM) * 0.5 / np.sqrt(DIM)
                ),
            )
            for q in questions
        ]
        timings: dict[str, list[float]] = {mode: [] for mode in MODES}
        similar = []
        for _ in range(2):
            for text, vector in queries:
                for mode, (collapse, explain) in MODES.items():
                    q = RecallQuery(
                        ACCOUNT,
                        text,
                        [SESSION],
                        args.limit,
                        None,
                        None,
                        time.time(),
                        collapse,
                        explain,
                    )
                    t0 = time.perf_counter()
                    found = recall(store, vector, q)
                    timings[mode].append(time.perf_counter() - t0)
                    if mode == "collapse":
                        similar.append(sum(m.similar for m in found))
        store.close()
    load_after = os.getloadavg()
    p50 = {mode: statistics.median(t) * 1000 for mode, t in timings.items()}
    print(
        f"{args.memories} memories (SQLite, one session), {len(queries)} queries x 2, "
        f"limit {args.limit}; {statistics.mean(similar):.1f} versions collapsed per recall"
    )
    for mode in MODES:
        print(f"{mode:<18} p50 {p50[mode]:7.2f} ms  ratio {p50[mode] / p50['plain']:.3f}")
    print(
        "load average",
        " ".join(f"{x:.2f}" for x in load_before),
        "->",
        " ".join(f"{x:.2f}" for x in load_after),
    )
    argv_shown = " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"reproduce: python bench/collapse_cost.py {argv_shown}")


if __name__ == "__main__":
    main()
