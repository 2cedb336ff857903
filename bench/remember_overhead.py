"""Where one remember's time goes: its text's embedding, and the write path around it.

At each size (memories in one session, as bench/latency.py builds them) it remembers new
texts one at a time, local (the SDK's local mode in this process) and over HTTP (the SDK
against a real ``memstore serve``), each step side by side with embedding the same text
alone, in an order that rotates text by text:

- ``embed``: the text's embedding alone (the model, no cache);
- ``local`` / ``http``: a remember of that text;
- ``local known`` / ``http known``: a remember of another new text whose vector was
  computed beforehand (bench/known_vectors.py, in both processes): the write path alone,
  the least a remember acknowledged before its embedding could cost (issue 15's "consider
  acknowledging a remember once it is durable and keyword-searchable").

Per variant: p50 / p90 wall ms, the p50 of each remember minus its text's embedding (the
target: HTTP within the embedding + 3 ms), the engine's own time (``remember_many``, timed
in both processes) and the server's CPU per request.

    .venv/bin/python bench/remember_overhead.py                 # 1k and 10k
    .venv/bin/python bench/remember_overhead.py --n 1000 --texts 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_timer import ENGINE_LOG_ENV, time_engine  # noqa: E402
from http_overhead import Server, engine_mark, engine_since, keyed_store  # noqa: E402
from known_vectors import KNOWN_ENV, save, use_known_vectors  # noqa: E402
from latency import SESSION, Corpus, bench_corpus, corpus_options, load_average  # noqa: E402

from memstore import Memstore  # noqa: E402

VARIANTS = ("embed", "local", "http", "local known", "http known")


def measure(
    n: int, args: argparse.Namespace, embedder: Any, corpus: Corpus, work: Path
) -> dict[str, Any]:
    base = work / f"base-{n}"
    key = keyed_store(base, corpus, n)
    # new texts: the corpus' own after the first n, each remembered once per store
    texts, _ = corpus.chunk(n, n + args.texts)
    known = [f"{t} (noted)" for t in texts]
    known_file = work / f"known-{n}.npz"
    save(known_file, known, embedder.embed_documents(known))
    use_known_vectors(str(known_file))
    for name in ("local", "server"):
        shutil.copytree(base, work / f"{name}-{n}")
    os.environ[KNOWN_ENV] = str(known_file)
    server = Server(
        work / f"server-{n}",
        None,
        work / f"server-{n}.log",
        prelude="time_engine('remember_many'); import known_vectors; "
        "known_vectors.use_known_vectors()",
    )
    local = Memstore.local(work / f"local-{n}", embedder=embedder)
    remote = None
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    engine: dict[str, list[float]] = {v: [] for v in VARIANTS}
    server_cpu: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
    try:
        server.wait_ready()
        remote = Memstore(api_key=key, base_url=server.url)
        session = f"{SESSION}-remembered"
        local.remember("warm up", session=session)
        remote.remember("warm up", session=session)
        loads = [load_average()]
        for i, (text, other) in enumerate(zip(texts, known, strict=True)):
            steps: dict[str, tuple[Callable[[], Any], Server | None]] = {
                "embed": (lambda t=text: embedder.embed_documents([t]), None),
                "local": (lambda t=text: local.remember(t, session=session), None),
                "http": (lambda t=text: remote.remember(t, session=session), server),
                "local known": (lambda t=other: local.remember(t, session=session), None),
                "http known": (lambda t=other: remote.remember(t, session=session), server),
            }
            order = VARIANTS[i % len(VARIANTS) :] + VARIANTS[: i % len(VARIANTS)]
            for name in order:
                call, via = steps[name]
                mark, s0 = engine_mark(via), via.cpu() if via else 0.0
                t0 = time.perf_counter()
                call()
                wall[name].append((time.perf_counter() - t0) * 1000)
                if via:
                    server_cpu[name] += via.cpu() - s0
                engine[name] += engine_since(via, mark)
        loads.append(load_average())
    finally:
        if remote is not None:
            remote.close()
        server.stop()
        local.close()
    rows = {}
    for name in VARIANTS:
        over = np.subtract(wall[name], wall["embed"])
        rows[name] = {
            "p50_ms": float(np.percentile(wall[name], 50)),
            "p90_ms": float(np.percentile(wall[name], 90)),
            "over_embed_p50_ms": None if name == "embed" else float(np.percentile(over, 50)),
            "engine_p50_ms": float(np.percentile(engine[name], 50)) if engine[name] else None,
            "server_cpu_ms": server_cpu[name] * 1000 / len(texts) if "http" in name else None,
        }
    return {"n": n, "load": loads, "variants": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append", help="memories (repeatable; 1k and 10k)")
    ap.add_argument("--texts", type=int, default=150, help="texts remembered per variant")
    corpus_options(ap)
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args()
    sizes = args.n or [1_000, 10_000]
    os.environ.pop(ENGINE_LOG_ENV, None)
    time_engine("remember_many")
    embedder, corpus, _ = bench_corpus(args.data, 1, args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="memstore-remember-overhead-"))
    try:
        results = [measure(n, args, embedder, corpus, work) for n in sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\none remember at a time, {args.texts} new texts per variant, side by side")
    print(
        f"{'memories':>9} {'variant':<12} {'p50':>7} {'p90':>7} {'over embed':>10} "
        f"{'engine':>7} {'server CPU':>10}  (ms per remember)"
    )
    for res in results:
        for name, v in res["variants"].items():
            over = "" if v["over_embed_p50_ms"] is None else f"{v['over_embed_p50_ms']:+.2f}"
            eng = "" if v["engine_p50_ms"] is None else f"{v['engine_p50_ms']:.2f}"
            cpu = "" if v["server_cpu_ms"] is None else f"{v['server_cpu_ms']:.2f}"
            print(
                f"{res['n']:>9,} {name:<12} {v['p50_ms']:>7.2f} {v['p90_ms']:>7.2f} "
                f"{over:>10} {eng:>7} {cpu:>10}"
            )
        print(f"{'':>9} load average {res['load'][0]} -> {res['load'][-1]}")
    print(f"\nreproduce: .venv/bin/python bench/remember_overhead.py {' '.join(sys.argv[1:])}")
    if args.json:
        print(json.dumps({"results": results, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
