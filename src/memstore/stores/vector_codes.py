"""A cheap first pass for exact vector search: int8 codes with a proven error bound.

Scoring 100k x 384 float32 rows reads 154 MB and is bound by memory bandwidth (~8 ms).
int8 codes of the same rows are a quarter of that. Each row ``x`` is stored as
``mean + scale * code + e``, where ``code`` is int8 and ``||e||`` is kept per row; the query
``q`` is coded the same way (``q = q_scale * q_code + f``). Then

    q . x = q . mean + q_scale * scale * (q_code . code) + q . e + f . (scale * code)

and the last two terms are at most ``||q|| ||e|| + ||f|| ||scale * code||`` (Cauchy-Schwarz).
So every row's exact score lies in [approx - bound, approx + bound]. A row whose upper end is
below the k-th largest lower end cannot be in the top k; the rest (a few hundred rows of
100k with e5 vectors) are scored exactly in float32. The answer is therefore exact, not
approximate: the same ids, order and scores as scoring every row (``exact_top``).

The int8 dot products come from ``simsimd`` (SIMD kernels, a small wheel with no
dependencies: ``pip install memstore-ai[fast]``); without it the index scores every row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from memstore import embedding
from memstore.settings import Settings

simsimd: Any
try:  # optional: the ``fast`` extra
    import simsimd
except ImportError:  # pragma: no cover - depends on the install
    simsimd = None

# Below this many rows a float32 scan takes ~1 ms or less and codes would only cost memory
# (Settings.vector_codes_min_rows, read here from its variable alone, as sqlite_keywords does).
MIN_ROWS: int = Settings.model_fields["vector_codes_min_rows"].default
ENV_MIN_ROWS = "MEMSTORE_VECTOR_CODES_MIN_ROWS"
# Float rounding: the codes' float32 arithmetic errs by < 3e-5 x |q| x |x| (< 3e-5 on unit
# vectors); the bound is widened by this much (times max(1, |q| x |x|)) and by 0.1%.
_SLACK = 1e-4
_WIDEN = 1.001
# Rows within this (times max(1, |q| x |x|)) of the k-th score of a float32 BLAS scan are
# re-scored canonically: the scan errs by < 3e-5 x |q| x |x|.
TIE_MARGIN = np.float32(1e-4)


# From this many rows scored, the first pass is shared with a second thread while at most
# one recall or remember runs in the process (``embedding.OPERATIONS``): on an idle core it
# halves the pass (100k rows: ~4 -> ~2 ms); under many clients each recall keeps one core.
SPLIT_MIN_ROWS = 50_000
_PART = 16_384  # rows per part: the threads take parts in turn until none is left
_SECOND = ThreadPoolExecutor(1, thread_name_prefix="memstore-codes")


def _second_core_free() -> bool:
    """Whether a second thread may help: two cores or more, and no other operation."""
    return embedding.OPERATIONS.count <= 1 and embedding.cores() > 1


def shared(parts: list[Callable[[], None]]) -> None:
    """Run ``parts`` on this thread and one more, each part once, each thread taking the
    next part when it is done with one: a second thread that gets no core leaves all but
    the part it holds to this one."""
    left = iter(parts)  # a list iterator hands out each item once, from any thread

    def drain() -> None:
        for run in left:
            run()

    other = _SECOND.submit(drain)
    try:
        drain()
    finally:
        other.result()


def min_rows() -> int:
    """Rows from which an index codes its vectors (``MEMSTORE_VECTOR_CODES_MIN_ROWS``; 0: never)."""
    return int(os.environ.get(ENV_MIN_ROWS) or MIN_ROWS)


def available() -> bool:
    """Whether the int8 kernels are installed."""
    return simsimd is not None


def row_scores(vectors: np.ndarray, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The canonical score of each row: its dot product with the query in float64 (each
    product of two float32 is exact there), summed row by row. Unlike a float32 BLAS product,
    whose last bits depend on where a row sits in the matrix, it depends on the row alone."""
    sums: np.ndarray = np.multiply(vectors[positions], query, dtype=np.float64).sum(axis=1)
    return sums


def exact_top(
    vectors: np.ndarray, seqs: np.ndarray, positions: np.ndarray, query: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``positions`` by canonical score (ties: older row first, by seq)
    as (positions, scores), best first. ``positions`` must hold every row that can be in
    the top ``k``."""
    scores = row_scores(vectors, positions, query)
    order = np.lexsort((seqs[positions], -scores))[:k]
    return positions[order], scores[order]


def near_top(scores: np.ndarray, k: int, magnitude: float = 1.0) -> np.ndarray:
    """Indexes into ``scores`` (a BLAS scan) of every row that can be in the top ``k`` by
    canonical score: those within TIE_MARGIN of the k-th best (``magnitude``: the largest
    |q| x |x|, 1 for unit vectors)."""
    if scores.size <= k:
        return np.arange(scores.size)
    kth = np.partition(scores, scores.size - k)[scores.size - k]
    return np.flatnonzero(scores >= kth - TIE_MARGIN * max(1.0, magnitude))


class Int8Codes:
    """int8 codes of the rows of a vector index, kept row by row as the index changes."""

    def __init__(self, vectors: np.ndarray, cap: int) -> None:
        """Codes for ``vectors`` (the index's live rows), with room for ``cap`` rows."""
        self.dim = vectors.shape[1]
        # Coding the difference from the mean makes codes of e5 vectors (which share a large
        # common part) 2x finer. The mean is fixed here; the bound holds for any mean.
        self.mean = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.codes = np.empty((0, self.dim), dtype=np.int8)
        self.scales = np.empty(0, dtype=np.float32)
        self.errors = np.empty(0, dtype=np.float32)  # ||residual - scale * code||
        self.lengths = np.empty(0, dtype=np.float32)  # ||scale * code||
        self.max_norm = 0.0  # the largest ||x|| coded so far (for the rounding slack)
        self.grow(cap, 0)
        for start in range(0, len(vectors), 10_000):
            self.set(start, vectors[start : start + 10_000])

    def grow(self, cap: int, n: int) -> None:
        """Room for ``cap`` rows, keeping the first ``n``."""
        for name, shape, dtype in (
            ("codes", (cap, self.dim), np.int8),
            ("scales", (cap,), np.float32),
            ("errors", (cap,), np.float32),
            ("lengths", (cap,), np.float32),
        ):
            arr = np.empty(shape, dtype=dtype)
            arr[:n] = getattr(self, name)[:n]
            setattr(self, name, arr)

    def set(self, start: int, vectors: np.ndarray) -> None:
        """Code ``vectors`` as rows ``start``, ``start + 1``..."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(vectors):
            self.max_norm = max(self.max_norm, float(np.linalg.norm(vectors, axis=1).max()))
        rest = vectors - self.mean
        stop = start + len(rest)
        scales = np.abs(rest).max(axis=1) / 127
        scales[scales == 0] = 1.0
        codes = np.rint(rest / scales[:, None]).astype(np.int8)
        coded = codes * scales[:, None]
        self.codes[start:stop] = codes
        self.scales[start:stop] = scales
        self.errors[start:stop] = np.linalg.norm(rest - coded, axis=1)
        self.lengths[start:stop] = np.linalg.norm(coded, axis=1)

    def move(self, src: int, dst: int) -> None:
        """Row ``src`` becomes row ``dst`` (the index fills a removed row with its last)."""
        for arr in (self.codes, self.scales, self.errors, self.lengths):
            arr[dst] = arr[src]

    def shortlist(self, query: np.ndarray, k: int, n: int, rows: np.ndarray | None) -> np.ndarray:
        """Row positions (among ``rows``, or the first ``n``) whose exact score may be in
        the top ``k``: a superset of the true top ``k``, ties included."""
        found = self.bounds(query, n, rows)
        if found is None:
            return np.arange(n) if rows is None else rows
        approx, bound = found
        if approx.size <= k:
            near = np.arange(approx.size)
        else:
            floor = np.partition(approx - bound, approx.size - k)[approx.size - k]
            near = np.flatnonzero(approx + bound >= floor)
        return near if rows is None else rows[near]

    def bounds(
        self, query: np.ndarray, n: int, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(approx, bound) for each of ``rows`` (or the first ``n``): every row's exact
        score with ``query`` lies within approx +- bound. None for a query of zeros or
        non-finite values (no bound: every row must be scored)."""
        assert simsimd is not None
        q_scale = float(np.abs(query).max()) / 127
        if q_scale == 0.0 or not np.isfinite(q_scale):
            return None
        # A few rows are gathered; most of them are cheaper to score all, then pick.
        gather = rows is not None and rows.size * 3 < n
        count = rows.size if gather and rows is not None else n
        q_code = np.rint(query / q_scale).astype(np.int8)[None]
        q_rest = float(np.linalg.norm(query - q_code[0] * np.float32(q_scale)))
        q_norm = float(np.linalg.norm(query))
        scale, q_rest32 = np.float32(q_scale), np.float32(q_rest)
        offset, q_norm32 = np.float32(self.mean @ query), np.float32(q_norm)
        slack = np.float32(_SLACK * max(1.0, q_norm * self.max_norm))
        approx = np.empty(count, dtype=np.float32)
        bound = np.empty(count, dtype=np.float32)

        def part(lo: int, hi: int) -> None:
            """approx and bound of the rows ``lo:hi`` of those scored (row by row: the
            same bits however the rows are split)."""
            take = rows[lo:hi] if gather and rows is not None else slice(lo, hi)
            dots = simsimd.cdist(q_code, self.codes[take], metric="dot", out_dtype="float32")
            a = np.asarray(dots).reshape(-1) * self.scales[take]
            a *= scale
            a += offset
            b = self.errors[take] * q_norm32
            b += self.lengths[take] * q_rest32
            b *= np.float32(_WIDEN)
            b += slack
            approx[lo:hi], bound[lo:hi] = a, b

        if count >= SPLIT_MIN_ROWS and _second_core_free():
            shared([partial(part, lo, min(lo + _PART, count)) for lo in range(0, count, _PART)])
        else:
            part(0, count)
        if rows is not None and not gather:
            approx, bound = approx[rows], bound[rows]
        return approx, bound
