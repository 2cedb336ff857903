"""Round 4 of issue 17: candidate ranking methods measured on LoCoMo without touching recall.py.

Stores the conversations exactly as ``bench/locomo.py`` does (real engine, SQLite, vectors
cached by ``bench/locomo_variants.py``'s embedder), and after each conversation is stored
runs its questions once per variant. A variant adds ranked lists to recall's two fusions:
``memstore.recall.rrf`` is wrapped for the run, and the wrapper appends the variant's lists
(built from the fusion's own lists, the query and a per-conversation model of the
memories) to the first fusion (which picks the memories read in context) and/or the final
one. The baseline variant adds nothing, so its figures are ``bench/locomo.py``'s.

    python bench/experiments/round4.py --data ../shared/data/locomo-dev.json \
        [--cache /tmp/locomo-vectors.npz] [--only NAME ...] [--ranks]

``--ranks`` also prints where today's recall puts each evidence turn (top 10, 11-25, below
25 but in one of the fused lists, in none).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from locomo import (  # noqa: E402
    BENCH_ACCOUNT,
    CATEGORIES,
    SettableClock,
    mean,
    score_query,
    sessions_of,
    store_conversation,
    turn_text,
)
from locomo_variants import CachedEmbedder, warm  # noqa: E402

import memstore.recall as recall_module  # noqa: E402
from memstore import ranking  # noqa: E402
from memstore.embedding import load_embedder  # noqa: E402
from memstore.engine import MemoryEngine  # noqa: E402
from memstore.stores.keyword_index import Tokenizer  # noqa: E402
from memstore.stores.sqlite import SQLiteStore  # noqa: E402

Ranked = list[tuple[str, float]]
ORIGINAL_RRF = recall_module.rrf


TIES_BY_COSINE = False
K1, B = 1.2, 0.75  # FTS5's; the "bm25 k1/b" variants change them for their run


class BM25:
    """Okapi BM25 (k1 1.2, b 0.75) over token lists, FTS5's idf; for simulated indexes."""

    def __init__(self, docs: dict[str, list[str]], weights: dict[str, dict[str, float]]) -> None:
        # weights: doc -> token -> (possibly fractional) term frequency
        self.ids = list(docs)
        self.tf = weights
        self.length = {d: sum(w.values()) for d, w in weights.items()}
        self.avgdl = sum(self.length.values()) / max(len(self.length), 1)
        self.postings: dict[str, list[str]] = defaultdict(list)
        for d, w in weights.items():
            for t in w:
                self.postings[t].append(d)
        n = len(self.ids)
        self.idf = {
            t: max(1e-6, float(np.log((n - len(p) + 0.5) / (len(p) + 0.5))))
            for t, p in self.postings.items()
        }

    def search(self, tokens: list[str], k: int = 100) -> Ranked:
        scores: dict[str, float] = defaultdict(float)
        for t in dict.fromkeys(tokens):
            for d in self.postings.get(t, ()):
                f = self.tf[d][t]
                norm = K1 * (1 - B + B * self.length[d] / self.avgdl)
                scores[d] += self.idf[t] * f * (K1 + 1) / (f + norm)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


@dataclass
class Conversation:
    """What a variant may know of one stored conversation (all of it derivable at write
    time from the memories of one session, in insertion order)."""

    ids: list[str]
    texts: dict[str, str]
    tokens: dict[str, list[str]]
    vectors: dict[str, np.ndarray]
    created: dict[str, float]
    tokenizer: Tokenizer
    cache: dict[str, Any] = field(default_factory=dict)

    def neighbours(self, memory_id: str, radius: int, window: float = 3600.0) -> list[str]:
        i = self.ids.index(memory_id) if "pos" not in self.cache else self.cache["pos"][memory_id]
        out = []
        for j in range(max(0, i - radius), min(len(self.ids), i + radius + 1)):
            other = self.ids[j]
            if j != i and abs(self.created[other] - self.created[memory_id]) <= window:
                out.append(other)
        return out

    def query_tokens(self, question: str) -> list[str]:
        return [t for term in ranking.keyword_terms(question) for t in self.tokenizer.query(term)]


@dataclass
class Query:
    text: str
    vector: np.ndarray
    conv: Conversation


# a hook gets (stage "first" | "final", the fusion's lists, the query) and returns
# (extra lists, their weights), or replaces lists by returning ("replace", lists, weights)
Hook = Callable[[str, list[Ranked], Query], Any]
CURRENT: dict[str, Any] = {}
STORED: list[Conversation] = []  # the conversations stored so far, in order


def wrapped_rrf(ranked_lists, weights, k=ranking.RRF_K, *, into=None):  # type: ignore[no-untyped-def]
    hook: Hook | None = CURRENT.get("hook")
    if hook is None or into is not None:
        return ORIGINAL_RRF(ranked_lists, weights, k, into=into)
    stage = "first" if CURRENT["calls"] == 0 else "final"
    CURRENT["calls"] += 1
    got = hook(stage, list(ranked_lists), CURRENT["query"])
    if got and got[0] == "replace":
        _, lists, ws = got
        return ORIGINAL_RRF(lists, ws, k)
    extra, extra_w = got or ([], [])
    return ORIGINAL_RRF([*ranked_lists, *extra], [*weights, *extra_w], k)


# ---------------------------------------------------------------------------- variants


def minmax(results: Ranked) -> dict[str, float]:
    if not results:
        return {}
    vals = np.array([s for _, s in results])
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo if hi > lo else 1.0
    return {m: (s - lo) / span for m, s in results}


def zscore(results: Ranked) -> dict[str, float]:
    if not results:
        return {}
    vals = np.array([s for _, s in results])
    mu, sd = float(vals.mean()), float(vals.std()) or 1.0
    return {m: (s - mu) / sd for m, s in results}


def rsf_list(dense: Ranked, keyword: Ranked, alpha: float, norm: Callable) -> Ranked:
    """Relative score fusion: alpha x norm(dense) + (1 - alpha) x norm(keyword), best first;
    a memory missing from a list gets that list's floor (0 for min-max, its min for z)."""
    d, kw = norm(dense), norm(keyword)
    d_floor = min(d.values(), default=0.0) if norm is zscore else 0.0
    k_floor = min(kw.values(), default=0.0) if norm is zscore else 0.0
    fused = {m: alpha * d.get(m, d_floor) + (1 - alpha) * kw.get(m, k_floor) for m in d.keys() | kw}
    return sorted(fused.items(), key=lambda kv: -kv[1])


def rsf(alpha: float, weight: float, stages=("first", "final"), norm=minmax) -> Hook:
    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage not in stages:
            return None
        return [rsf_list(lists[0], lists[1], alpha, norm)[:100]], [weight]

    return hook


def rsf_replace(alpha: float, weight: float, norm=minmax) -> Hook:
    """Dense and keyword replaced by one score-fused list (weight ``weight``)."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        fused = rsf_list(lists[0], lists[1], alpha, norm)[:100]
        rest = lists[2:]
        ws = (
            [ranking.CENTRED_WEIGHT]
            if stage == "first"
            else [ranking.CENTRED_WEIGHT, ranking.LOCAL_WEIGHT]
        )
        return "replace", [fused, *rest], [weight, *ws[: len(rest)]]

    return hook


def strength(beta: float, stages=("first", "final")) -> Hook:
    """RRF where each entry's weight is scaled by (1 + beta x its min-max score in its list)."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage not in stages:
            return None
        base = [ranking.DENSE_WEIGHT, ranking.KEYWORD_WEIGHT, ranking.CENTRED_WEIGHT]
        if stage == "final":
            base.append(ranking.LOCAL_WEIGHT)
        fused: dict[str, float] = {}
        for w, results in zip(base, lists, strict=True):
            norm = minmax(results)
            for rank, (m, _) in enumerate(results, start=1):
                fused[m] = fused.get(m, 0.0) + w * (1 + beta * norm[m]) / (ranking.RRF_K + rank)
        ordered = sorted(fused.items(), key=lambda kv: -kv[1])
        # hand the fused order back as one list whose RRF sum keeps the order
        return "replace", [[(m, s) for m, s in ordered]], [1.0]

    return hook


def expansion_model(
    conv: Conversation, radius: int, own: float, other: float, side: int = 0, semantic: int = 0
) -> BM25:
    """BM25 over each memory's tokens (tf x own) plus its session neighbours' within
    ``radius`` (tf x other; ``side`` -1: only those before it, 1: only after): write-time
    document expansion. ``semantic`` > 0: the neighbours are instead the memory's
    ``semantic`` most similar earlier memories of the session (by stored vector)."""
    key = f"exp{radius}-{own}-{other}-{side}-{semantic}"
    if key not in conv.cache:
        # the account's statistics: every conversation stored so far, as the real index
        weights: dict[str, dict[str, float]] = {}
        for c in STORED:
            weights.update(expanded_weights(c, radius, own, other, side, semantic))
        conv.cache[key] = BM25({m: [] for m in weights}, weights)
    return conv.cache[key]


def expanded_weights(
    conv: Conversation, radius: int, own: float, other: float, side: int, semantic: int
) -> dict[str, dict[str, float]]:
    key = f"w{radius}-{own}-{other}-{side}-{semantic}"
    if key not in conv.cache:
        weights: dict[str, dict[str, float]] = {}
        pos = conv.cache["pos"]
        if semantic:
            x = np.array([conv.vectors[m] for m in conv.ids])
            sims = x @ x.T
        for m in conv.ids:
            w: dict[str, float] = defaultdict(float)
            for t in conv.tokens[m]:
                w[t] += own
            if semantic:
                i = pos[m]
                near = [conv.ids[j] for j in np.argsort(-sims[i, :i])[:semantic]] if i else []
            else:
                near = [
                    n
                    for n in conv.neighbours(m, radius)
                    if side == 0 or (pos[n] - pos[m]) * side > 0
                ]
            for n in near:
                share = other[abs(pos[n] - pos[m]) - 1] if isinstance(other, tuple) else other
                for t in conv.tokens[n]:
                    w[t] += share
            weights[m] = {t: f for t, f in w.items() if f > 0}
        conv.cache[key] = weights
    return conv.cache[key]


def expansion(
    radius: int,
    own: float,
    other: float,
    weight: float,
    stages=("first", "final"),
    side: int = 0,
    semantic: int = 0,
    replace: bool = False,
    plain: float = 0.0,
) -> Hook:
    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage not in stages:
            return None
        model = expansion_model(q.conv, radius, own, other, side, semantic)
        mine = q.conv.cache["pos"]
        found = [h for h in model.search(q.conv.query_tokens(q.text), 100_000) if h[0] in mine]
        if TIES_BY_COSINE:  # equal scores (b = 0: same words) ordered by the query's cosine
            cos = {m: float(q.conv.vectors[m] @ q.vector) for m, _ in found}
            found.sort(key=lambda h: (-round(h[1], 9), -cos[h[0]]))
        found = found[:100]
        if replace:  # the keyword list itself comes from the expanded index
            ws = [ranking.DENSE_WEIGHT, weight, ranking.CENTRED_WEIGHT, ranking.LOCAL_WEIGHT]
            if plain:  # the plain keyword list stays beside it at weight ``plain``
                return (
                    "replace",
                    [lists[0], found, *lists[2:], lists[1]],
                    [*ws[: len(lists)], plain],
                )
            return "replace", [lists[0], found, *lists[2:]], ws[: len(lists)]
        return [found], [weight]

    return hook


def plain_model(conv: Conversation) -> BM25:
    if "plain" not in conv.cache:
        weights = {m: dict(_counts(conv.tokens[m])) for m in conv.ids}
        conv.cache["plain"] = BM25(conv.tokens, weights)
    return conv.cache["plain"]


def _counts(tokens: list[str]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for t in tokens:
        out[t] += 1.0
    return out


def rare_links(
    top: int, max_df: float, weight: float, min_shared: int = 1, stage_of="final"
) -> Hook:
    """Memories sharing rare tokens (document frequency <= max_df x rows, not in the query)
    with the first fusion's top ``top``: scored by the summed idf of the shared rare tokens."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage != stage_of:
            return None
        model = plain_model(q.conv)
        n = len(q.conv.ids)
        fused = ORIGINAL_RRF(
            lists[:3], [ranking.DENSE_WEIGHT, ranking.KEYWORD_WEIGHT, ranking.CENTRED_WEIGHT]
        )
        seeds = sorted(fused, key=fused.__getitem__, reverse=True)[:top]
        asked = set(q.conv.query_tokens(q.text))
        rare = {
            t
            for s in seeds
            for t in q.conv.tokens[s]
            if t not in asked
            and len(model.postings[t]) <= max(2, max_df * n)
            and len(t) > 2
            and not t.isdigit()
        }
        got: dict[str, float] = defaultdict(float)
        shared: dict[str, int] = defaultdict(int)
        for t in rare:
            for d in model.postings[t]:
                if d not in seeds:
                    got[d] += model.idf[t]
                    shared[d] += 1
        ranked = sorted(
            ((d, s) for d, s in got.items() if shared[d] >= min_shared), key=lambda kv: -kv[1]
        )
        return [ranked[:100]], [weight]

    return hook


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        labels = np.argmax(x @ centres.T, axis=1)  # spherical k-means
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c = members.sum(axis=0)
                centres[j] = c / np.linalg.norm(c)
    return labels


def clusters(size: int, best: int, weight: float, centred: bool = True) -> Hook:
    """Spherical k-means of the session's vectors (about ``size`` memories a cluster,
    centred on the session mean first); the ``best`` clusters by the query's cosine with
    their centroid, their members by the query's cosine, as one list."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage != "final":
            return None
        conv = q.conv
        key = f"km{size}-{centred}"
        if key not in conv.cache:
            x = np.array([conv.vectors[m] for m in conv.ids], dtype=np.float64)
            mu = x.mean(axis=0)
            xc = x - mu if centred else x.copy()
            xc /= np.linalg.norm(xc, axis=1, keepdims=True)
            labels = kmeans(xc, max(2, len(x) // size))
            cents = np.array([x[labels == j].mean(axis=0) for j in range(labels.max() + 1)])
            conv.cache[key] = (x, labels, cents, mu)
        x, labels, cents, mu = conv.cache[key]
        qv = q.vector - (mu if centred else 0)
        c = cents - (mu if centred else 0)
        sims = c @ qv / np.maximum(np.linalg.norm(c, axis=1), 1e-9)
        chosen = set(np.argsort(-sims)[:best].tolist())
        rows = [i for i in range(len(conv.ids)) if labels[i] in chosen]
        cos = x[rows] @ q.vector
        order = np.argsort(-cos)[:100]
        return [[(conv.ids[rows[i]], float(cos[i])) for i in order]], [weight]

    return hook


def episodes(best: int, weight: float, per: int = 100) -> Hook:
    """Episodes (runs of a session's memories created within an hour of the previous one)
    ranked by the sum of the first fusion's relevance of their members; the members of the
    ``best`` episodes, in first-fusion order then by cosine, as one list."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        if stage != "final":
            return None
        conv = q.conv
        if "episode" not in conv.cache:
            ep, current, last = {}, 0, None
            for m in conv.ids:
                if last is not None and conv.created[m] - conv.created[last] > 3600:
                    current += 1
                ep[m], last = current, m
            conv.cache["episode"] = ep
        ep = conv.cache["episode"]
        fused = ORIGINAL_RRF(
            lists[:3], [ranking.DENSE_WEIGHT, ranking.KEYWORD_WEIGHT, ranking.CENTRED_WEIGHT]
        )
        mass: dict[int, float] = defaultdict(float)
        for m, s in fused.items():
            mass[ep[m]] += s
        chosen = set(sorted(mass, key=mass.__getitem__, reverse=True)[:best])
        members = [m for m in conv.ids if ep[m] in chosen]
        cos = {m: float(conv.vectors[m] @ q.vector) for m in members}
        order = sorted(members, key=lambda m: (-fused.get(m, 0.0), -cos[m]))[:per]
        return [[(m, cos[m]) for m in order]], [weight]

    return hook


def bm25_params(k1: float, b: float, inner: Hook | None = None, ties: bool = False) -> Hook:
    """The keyword list from BM25 with other k1 / b (the memories' own words only, or
    ``inner``'s expanded documents)."""
    inner = inner or expansion(0, 1.0, 0.0, 1.0, replace=True)

    def hook(stage: str, lists: list[Ranked], q: Query):
        global K1, B, TIES_BY_COSINE
        saved, (K1, B, TIES_BY_COSINE) = (K1, B, TIES_BY_COSINE), (k1, b, ties)
        try:
            return inner(stage, lists, q)
        finally:
            K1, B, TIES_BY_COSINE = saved

    return hook


def combine(*hooks: Hook) -> Hook:
    """Each hook's extra lists together; a hook that replaces lists should come first."""

    def hook(stage: str, lists: list[Ranked], q: Query):
        weights = [ranking.DENSE_WEIGHT, ranking.KEYWORD_WEIGHT, ranking.CENTRED_WEIGHT]
        current, ws = list(lists), [*weights, ranking.LOCAL_WEIGHT][: len(lists)]
        for h in hooks:
            got = h(stage, lists, q)
            if got and got[0] == "replace":
                current, ws = list(got[1]), list(got[2])
            elif got:
                current += got[0]
                ws += got[1]
        return "replace", current, ws

    return hook


VARIANTS: dict[str, Hook | None] = {
    "baseline": None,
    "simulated plain keyword (replace)": expansion(0, 1.0, 0.0, 1.0, replace=True),
    "plain keyword kw0.8": expansion(0, 1.0, 0.0, 0.8, replace=True),
    "expand prev r2 nb0.2 kw0.8": expansion(2, 1.0, 0.2, 0.8, replace=True, side=-1),
    "expand next r2 nb0.2 kw0.8": expansion(2, 1.0, 0.2, 0.8, replace=True, side=1),
    "expand r2 nb0.2 kw0.6 + plain0.3": expansion(2, 1.0, 0.2, 0.6, replace=True, plain=0.3),
    "expand r2 nb0.2 kw0.4 + plain0.5": expansion(2, 1.0, 0.2, 0.4, replace=True, plain=0.5),
    "expand r2 nb0.1 kw0.8": expansion(2, 1.0, 0.1, 0.8, replace=True),
    "expand r2 nb0.15 kw0.9": expansion(2, 1.0, 0.15, 0.9, replace=True),
    "expand r1 nb0.3 kw0.8": expansion(1, 1.0, 0.3, 0.8, replace=True),
    "expand r2 nb0.2 kw0.7": expansion(2, 1.0, 0.2, 0.7, replace=True),
    "expand r2 nb0.2 kw0.8 final": expansion(2, 1.0, 0.2, 0.8, replace=True, stages=("final",)),
    "bm25 k1 0.9 b 0.4": bm25_params(0.9, 0.4),
    "bm25 k1 1.2 b 0.05": bm25_params(1.2, 0.05),
    "bm25 k1 1.2 b 0.0 ties by cosine": bm25_params(1.2, 0.0, ties=True),
    "bm25 k1 1.2 b 0.75 ties by cosine": bm25_params(1.2, 0.75, ties=True),
    "bm25 k1 1.2 b 0.0 kw0.8": bm25_params(1.2, 0.0, expansion(0, 1.0, 0.0, 0.8, replace=True)),
    "bm25 k1 1.2 b 0.0": bm25_params(1.2, 0.0),
    "bm25 k1 1.2 b 0.2": bm25_params(1.2, 0.2),
    "bm25 k1 1.5 b 0.1": bm25_params(1.5, 0.1),
    "bm25 k1 0.9 b 0.1": bm25_params(0.9, 0.1),
    "bm25 k1 1.2 b 0.5": bm25_params(1.2, 0.5),
    "bm25 k1 1.2 b 0.1": bm25_params(1.2, 0.1),
    "bm25 k1 0.9 b 0.3": bm25_params(0.9, 0.3),
    "expand r2 nb0.15 kw0.9 b0.3": bm25_params(
        1.2, 0.3, expansion(2, 1.0, 0.15, 0.9, replace=True)
    ),
    "expand r2 nb0.15 kw0.9 b0.5": bm25_params(
        1.2, 0.5, expansion(2, 1.0, 0.15, 0.9, replace=True)
    ),
    "expand r2 nb0.1 kw0.9 b0.4 k0.9": bm25_params(
        0.9, 0.4, expansion(2, 1.0, 0.1, 0.9, replace=True)
    ),
    "bm25 k1 1.2 b 0.3": bm25_params(1.2, 0.3),
    "bm25 k1 2.0 b 0.75": bm25_params(2.0, 0.75),
    "clusters s15 best3 w0.15": clusters(15, 3, 0.15),
    "clusters s10 best3 w0.2": clusters(10, 3, 0.2),
    "clusters s15 best2 w0.2": clusters(15, 2, 0.2),
    "rare top3 df2% w0.15": rare_links(3, 0.02, 0.15),
    "rare top5 df1% w0.15 shared2": rare_links(5, 0.01, 0.15, min_shared=2),
    "expand r2 nb0.15 kw0.9 + clusters s15 best3 w0.15": combine(
        expansion(2, 1.0, 0.15, 0.9, replace=True), clusters(15, 3, 0.15)
    ),
    "expand r2 nb0.1 replace": expansion(2, 1.0, 0.1, 1.0, replace=True),
    "expand r2 nb0.15 replace": expansion(2, 1.0, 0.15, 1.0, replace=True),
    "expand r2 nb0.3 replace": expansion(2, 1.0, 0.3, 1.0, replace=True),
    "expand r2 nb(0.2,0.1) replace": expansion(2, 1.0, (0.2, 0.1), 1.0, replace=True),
    "expand r3 nb0.15 replace": expansion(3, 1.0, 0.15, 1.0, replace=True),
    "expand r2 nb0.2 replace kw0.8": expansion(2, 1.0, 0.2, 0.8, replace=True),
    "expand r2 nb0.2 replace kw1.2": expansion(2, 1.0, 0.2, 1.2, replace=True),
    "expand r2 nb0.2 beside w0.5": expansion(2, 1.0, 0.2, 0.5),
    "expand r2 nb0.2 replace final": expansion(2, 1.0, 0.2, 1.0, replace=True, stages=("final",)),
    "expand r2 nb0.2 replace first": expansion(2, 1.0, 0.2, 1.0, replace=True, stages=("first",)),
    "expand prev r1 nb0.5 w0.3": expansion(1, 1.0, 0.5, 0.3, side=-1),
    "expand next r1 nb0.5 w0.3": expansion(1, 1.0, 0.5, 0.3, side=1),
    "expand prev r1 own0 nb1 w0.3": expansion(1, 0.0, 1.0, 0.3, side=-1),
    "expand next r1 own0 nb1 w0.3": expansion(1, 0.0, 1.0, 0.3, side=1),
    "expand r1 own0 nb1 w0.2": expansion(1, 0.0, 1.0, 0.2),
    "expand r1 own0 nb1 w0.15 final": expansion(1, 0.0, 1.0, 0.15, stages=("final",)),
    "expand r1 nb0.3 replace": expansion(1, 1.0, 0.3, 1.0, replace=True),
    "expand r2 nb0.2 replace": expansion(2, 1.0, 0.2, 1.0, replace=True),
    "semantic5 nb0.3 w0.3": expansion(0, 1.0, 0.3, 0.3, semantic=5),
    "semantic3 own0 nb1 w0.3": expansion(0, 0.0, 1.0, 0.3, semantic=3),
    "semantic5 nb0.3 replace": expansion(0, 1.0, 0.3, 1.0, semantic=5, replace=True),
    "rsf a0.5 w0.3": rsf(0.5, 0.3),
    "rsf a0.5 w0.6": rsf(0.5, 0.6),
    "rsf a0.3 w0.5": rsf(0.3, 0.5),
    "rsf-z a0.5 w0.5": rsf(0.5, 0.5, norm=zscore),
    "rsf replace a0.4": rsf_replace(0.4, 1.5),
    "strength b0.5": strength(0.5),
    "strength b1.0": strength(1.0),
    "expand r1 own1 nb0.5 w0.3": expansion(1, 1.0, 0.5, 0.3),
    "expand r2 own1 nb0.3 w0.3": expansion(2, 1.0, 0.3, 0.3),
    "expand r1 own0 nb1 w0.3": expansion(1, 0.0, 1.0, 0.3),
    "expand r1 own1 nb0.5 w0.6 final": expansion(1, 1.0, 0.5, 0.6, stages=("final",)),
    "rare top3 df1% w0.3": rare_links(3, 0.01, 0.3),
    "rare top5 df0.5% w0.3": rare_links(5, 0.005, 0.3),
    "rare top3 df1% w0.3 shared2": rare_links(3, 0.01, 0.3, min_shared=2),
    "clusters s30 best2 w0.3": clusters(30, 2, 0.3),
    "clusters s15 best3 w0.3": clusters(15, 3, 0.3),
    "clusters s30 best2 w0.3 raw": clusters(30, 2, 0.3, centred=False),
    "episodes best2 w0.3": episodes(2, 0.3),
    "episodes best3 w0.2": episodes(3, 0.2),
}


def conversation_model(
    store: SQLiteStore, dia_of: dict[str, str], texts: dict[str, str]
) -> Conversation:
    ids = list(dia_of)  # insertion order
    rows = store.get_many(BENCH_ACCOUNT, ids, time.time())
    tokenizer = Tokenizer("porter unicode61 remove_diacritics 2")
    seqs = {i + 1: m for i, m in enumerate(ids)}
    tokens = {
        seqs[s]: t for s, t in tokenizer.sequences([(s, texts[m]) for s, m in seqs.items()]).items()
    }
    conv = Conversation(
        ids=ids,
        texts=texts,
        tokens=tokens,
        vectors=store.vectors(BENCH_ACCOUNT, ids),
        created={m: rows[m].created_at for m in ids},
        tokenizer=tokenizer,
    )
    conv.cache["pos"] = {m: i for i, m in enumerate(ids)}
    return conv


def evidence_ranks(
    engine: MemoryEngine,
    session: str,
    qa: dict[str, Any],
    dia_of: dict[str, str],
    conv: Conversation,
) -> list[tuple[str, int, bool]]:
    """For each evidence turn of ``qa``: (category, its rank in the default recall's top 25,
    0 when below, whether any fused list of that recall holds it)."""
    listed: set[str] = set()

    def capture(stage: str, lists: list[Ranked], q: Query) -> None:
        listed.update(m for results in lists for m, _ in results)

    vector = engine.embedder.embed_query(qa["question"])
    CURRENT.update(hook=capture, calls=0, query=Query(qa["question"], vector, conv))
    hits = engine.recall(BENCH_ACCOUNT, qa["question"], session=session, limit=25)
    CURRENT["hook"] = None
    found = [dia_of.get(h.id, "") for h in hits]
    id_of = {d: m for m, d in dia_of.items()}
    return [
        (
            CATEGORIES[qa["category"]],
            found.index(e) + 1 if e in found else 0,
            id_of.get(e) in listed,
        )
        for e in qa["evidence"]
    ]


def run(
    data: Path, embedder: CachedEmbedder, names: list[str], ranks: list | None = None
) -> dict[str, dict[str, list]]:
    """Figures per variant; ``ranks`` (when given) collects ``evidence_ranks`` of every
    question."""
    samples = json.loads(data.read_text())
    clock = SettableClock()
    out: dict[str, dict[str, list]] = {n: defaultdict(list) for n in names}
    recall_module.rrf = wrapped_rrf
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore.open_dir(Path(tmp))
            engine = MemoryEngine(store, embedder, clock=clock)
            engine.ensure_account(BENCH_ACCOUNT)
            for n, sample in enumerate(samples):
                session = str(sample.get("sample_id", f"conversation-{n}"))
                dia_of = store_conversation(engine, clock, sample, session)
                texts_by_dia = {
                    t["dia_id"]: turn_text(t, when)
                    for when, turns in sessions_of(sample["conversation"])
                    for t in turns
                }
                conv = conversation_model(
                    store, dia_of, {m: texts_by_dia[d] for m, d in dia_of.items()}
                )
                STORED.append(conv)
                if ranks is not None:
                    for qa in sample["qa"]:
                        if qa.get("category") in CATEGORIES and qa.get("evidence"):
                            ranks += evidence_ranks(engine, session, qa, dia_of, conv)
                for name in names:
                    t0 = time.perf_counter()
                    for qa in sample["qa"]:
                        if qa.get("category") not in CATEGORIES or not qa.get("evidence"):
                            continue
                        vector = embedder.embed_query(qa["question"])
                        CURRENT.update(
                            hook=VARIANTS[name], calls=0, query=Query(qa["question"], vector, conv)
                        )
                        hits = engine.recall(
                            BENCH_ACCOUNT, qa["question"], session=session, limit=10
                        )
                        CURRENT["hook"] = None
                        found = [dia_of.get(h.id, "") for h in hits]
                        scored = score_query(found, set(qa["evidence"]))
                        out[name][CATEGORIES[qa["category"]]].append(scored)
                        out[name][session].append(scored)
                        out[name]["all"].append(scored)
                    print(f"  {session} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            store.close()
    finally:
        recall_module.rrf = ORIGINAL_RRF
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locomo-vectors.npz"))
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--json", type=Path, help="write the per-query figures here")
    parser.add_argument(
        "--ranks", action="store_true", help="also where each evidence turn ranks today"
    )
    args = parser.parse_args(argv)
    embedder = CachedEmbedder(load_embedder(), args.cache)
    warm(embedder, args.data)
    names = ["baseline", *[n for n in (args.only or VARIANTS) if n != "baseline"]]
    ranks: list | None = [] if args.ranks else None
    result = run(args.data, embedder, names, ranks)
    if ranks:
        print("evidence turns: top 10 / ranks 11-25 / below 25 but in a fused list / in none")
        for category in CATEGORIES.values():
            mine = [(r, listed) for c, r, listed in ranks if c == category]
            print(
                f"  {category:<12} {len(mine):>4}: {sum(0 < r <= 10 for r, _ in mine)} / "
                f"{sum(r > 10 for r, _ in mine)} / {sum(r == 0 and ok for r, ok in mine)} / "
                f"{sum(r == 0 and not ok for r, ok in mine)}"
            )
    groups = [
        "all",
        *CATEGORIES.values(),
        *sorted(k for k in result["baseline"] if k.startswith("conv")),
    ]
    print(f"{'variant':<34}" + "".join(f"{g:>15}" for g in groups))
    for name in names:
        cells = []
        for g in groups:
            rows = result[name][g]
            cells.append(f"{mean(rows, 'recall@5'):.3f}/{mean(rows, 'recall@10'):.3f}")
        print(f"{name:<34}" + "".join(f"{c:>15}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps(result))
    print("reproduce: python bench/experiments/round4.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
