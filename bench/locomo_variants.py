"""LoCoMo quality of ranking variants, quickly: ``bench/locomo.py`` with every vector cached.

The turns and questions are embedded once into a cache file (the first run takes as long
as ``bench/locomo.py``); later runs store the conversations through the real engine with
the cached vectors and recall exactly as ``bench/locomo.py`` does, so their figures are
the same, in a fraction of the time. ``--set module.NAME=value`` changes a ranking
constant for one run (``--set ranking.DENSE_WEIGHT=0.8``); several ``--set`` lists run one
after another, each against the same baseline.

    python bench/locomo_variants.py --data ../shared/data/locomo-dev.json \
        [--cache /tmp/locomo-vectors.npz] [--set "ranking.RRF_K=5 recall.IN_CONTEXT=50" ...]
        [--postgres]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
from locomo import CATEGORIES, mean, pgserver_url, run, sessions_of, turn_text

from memstore.embedding import Embedder, load_embedder


class CachedEmbedder:
    """The default embedder with a dictionary of every vector it already computed."""

    def __init__(self, inner: Embedder, cache: Path) -> None:
        self.inner, self.cache = inner, cache
        self.name, self.dim = inner.name, inner.dim
        self.vectors: dict[str, np.ndarray] = {}
        if cache.exists():
            loaded = np.load(cache)
            self.vectors = {k: loaded[k] for k in loaded.files}
        self.dirty = False

    @staticmethod
    def key(kind: str, text: str) -> str:
        return kind + hashlib.sha1(text.encode()).hexdigest()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if self.key("d", t) not in self.vectors]
        if missing:
            for t, v in zip(missing, self.inner.embed_documents(missing), strict=True):
                self.vectors[self.key("d", t)] = v
            self.dirty = True
        return np.stack([self.vectors[self.key("d", t)] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        k = self.key("q", text)
        if k not in self.vectors:
            self.vectors[k] = self.inner.embed_query(text)
            self.dirty = True
        return self.vectors[k]

    def save(self) -> None:
        if self.dirty:
            np.savez(self.cache, **self.vectors)
            self.dirty = False


def warm(embedder: CachedEmbedder, data: Path) -> None:
    """Embed every turn and question of ``data`` not in the cache yet, in big batches."""
    samples = json.loads(data.read_text())
    texts = [
        turn_text(t, when)
        for s in samples
        for when, turns in sessions_of(s["conversation"])
        for t in turns
    ]
    for start in range(0, len(texts), 256):
        embedder.embed_documents(texts[start : start + 256])
    for s in samples:
        for qa in s["qa"]:
            embedder.embed_query(qa["question"])
    embedder.save()


def apply(settings: str) -> dict[str, Any]:
    """Set ``module.NAME=value`` pairs (memstore modules); return the previous values."""
    previous: dict[str, Any] = {}
    for pair in settings.split():
        name, value = pair.split("=", 1)
        module_name, attr = name.rsplit(".", 1)
        module = importlib.import_module(f"memstore.{module_name}")
        previous[name] = getattr(module, attr)
        setattr(module, attr, ast.literal_eval(value))
    return previous


def restore(previous: dict[str, Any]) -> None:
    for name, value in previous.items():
        module_name, attr = name.rsplit(".", 1)
        setattr(importlib.import_module(f"memstore.{module_name}"), attr, value)


def summary(result: dict[str, Any]) -> dict[str, float]:
    """R@5 and R@10 overall, per category and per conversation."""
    out: dict[str, float] = {}
    everything = [r for rows in result["per_category"].values() for r in rows]
    for m in ("recall@5", "recall@10"):
        out[f"all {m}"] = mean(everything, m)
    for cat, rows in sorted(result["per_category"].items()):
        for m in ("recall@5", "recall@10"):
            out[f"{CATEGORIES[cat]} {m}"] = mean(rows, m)
    for conv, rows in result["per_conversation"].items():
        for m in ("recall@5", "recall@10"):
            out[f"{conv} {m}"] = mean(rows, m)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locomo-vectors.npz"))
    parser.add_argument("--set", action="append", default=[], help="'module.NAME=value ...'")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="store in a throwaway pgserver")
    args = parser.parse_args(argv)
    url, _server = pgserver_url() if args.postgres else (None, None)
    embedder = CachedEmbedder(load_embedder(), args.cache)
    warm(embedder, args.data)
    runs = ([] if args.no_baseline else [""]) + args.set
    table: dict[str, dict[str, float]] = {}
    for settings in runs:
        previous = apply(settings)
        try:
            table[settings or "baseline"] = summary(run(args.data, embedder=embedder, postgres=url))
        finally:
            restore(previous)
        label = settings or "baseline"
        figures = table[label]
        print(
            f"{label}: R@5 {figures['all recall@5']:.3f} R@10 {figures['all recall@10']:.3f}",
            flush=True,
        )
    keys = list(next(iter(table.values())))
    print(f"\n{'':<26}" + "".join(f"{i:>9}" for i in range(len(table))))
    for key in keys:
        print(f"{key:<26}" + "".join(f"{row[key]:>9.3f}" for row in table.values()))
    for i, label in enumerate(table):
        print(f"{i}: {label}")
    print("reproduce: python bench/locomo_variants.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
