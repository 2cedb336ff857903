"""Hybrid ranking: fuse dense (embedding) and keyword results into one list.

Order comes from weighted reciprocal-rank fusion of the lists, which uses rank positions
only, so it does not care how a store scales its keyword relevance (FTS5 BM25, Postgres
ts_rank). When the query names a month or a year, the memories created in it form a
third list. Memories are read in their context: the dense list compares the query with
each memory blended with the one stored before it in its session, and part of each
memory's fused relevance spreads to the memories stored just before and after it (a
question and its answer sit side by side). The score shown to users is made separately so that it
means the same thing in every query and depends on the (query, memory) pair only: a
calibrated cosine similarity raised by the share of the query's words the memory contains
(its own words -> >= 0.85, identical text -> about 1, unrelated text -> near 0). See
docs/ranking.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from itertools import repeat

import numpy as np
import snowballstemmer  # type: ignore[import-untyped]

# Cosine similarities of e5-small between a query and a passage live in a narrow band: the
# best unrelated hit sits near 0.78-0.82, a paraphrase near 0.81-0.88, the memory's own
# words near 0.85-0.93, the same text near 0.90-0.96 (tests/graded_scores.py).
# Calibration: straight lines between these (cosine, score) knots, flat outside them.
COSINE_KNOTS = ((0.80, 0.0), (0.84, 0.45), (0.92, 1.0))
# How far the share of the query's words found in the memory lifts the score: all of them
# lift it to at least TERM_LIFT, whatever the cosine; a part counts as its square.
TERM_LIFT = 0.85
# Measured on LoCoMo (bench/locomo.py): a small k trusts the top of each list more than
# the textbook 60 does, and BM25 is the stronger of the two lists on conversational
# memories, so dense results count 0.7 of a keyword result.
RRF_K = 5
DENSE_WEIGHT = 0.7
KEYWORD_WEIGHT = 1.0
PERIOD_WEIGHT = 1.0
# The centred dense list: every memory of a conversation or a project shares one direction
# in e5's space (its names, its framing, its topics), which dominates the query's cosine
# with all of them. Searching with the query minus CENTRING x the searched sessions' mean
# vector ranks by what sets a memory apart; that list joins both fusions at CENTRED_WEIGHT
# (measured on LoCoMo: docs/ranking.md, "The centred dense list").
CENTRING = 1.0
CENTRED_WEIGHT = 0.2
# The local list: the query minus the mean of its own LOCAL_TOP best dense hits (the same
# centring, around the query's neighbourhood instead of the whole scope) ranks what the
# query asks that its nearest memories do not already say: evidence told in another part
# of the conversation. Joins both fusions at LOCAL_WEIGHT (docs/ranking.md, round 3).
LOCAL_TOP = 20
LOCAL_WEIGHT = 0.3
# The centred list shares the plain query's pass over the scope where the store can
# (SQLite: VectorIndex.search_centred), so it has no size cap (None); an int caps it. The
# local list is one more dense search over the whole scope: past LOCAL_MAX_ROWS memories in
# the searched sessions (where a search costs milliseconds) recall leaves it out, to keep
# its latency (docs/ranking.md, "Round 3"; docs/performance.md).
CENTRED_MAX_ROWS: int | None = None
LOCAL_MAX_ROWS: int | None = 20_000
# Context: memories of one session stored within an hour of each other, in order, are read
# together. A memory's context vector is its own plus CONTEXT_MIX of the previous one's.
CONTEXT_RADIUS = 2
CONTEXT_WINDOW = 3600.0
CONTEXT_MIX = 0.5
# Share of a memory's fused relevance given to the memories 1 and 2 places before and after
# it: a question and its answer, a topic and what was said about it, sit side by side.
SPREAD = {1: 0.35, 2: 0.25}

# English function words: too common to say what a memory is about.
_FUNCTION_WORDS = """
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in
into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours
yourself yourselves
"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("english")
_MONTH_NAMES = "january february march april may june july august september october november"
_MONTH_NAMES += " december"
_MONTHS = {name: n + 1 for n, name in enumerate(_MONTH_NAMES.split())}
_MONTH_YEAR = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december)(?:\s+\d{1,2}(?:st|nd|rd|th)?)?,?\s+(\d{4})\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:in|of|during|since|from|by)\s+((?:19|20)\d{2})\b", re.IGNORECASE)


def keyword_terms(query: str, limit: int = 32) -> list[str]:
    """The query's searchable words: lower-cased, stopwords dropped, order kept, unique."""
    words = [w.lower() for w in _WORD.findall(query)]
    terms = [w for w in dict.fromkeys(words) if w not in STOPWORDS]
    return (terms or list(dict.fromkeys(words)))[:limit]


def query_periods(query: str) -> list[tuple[float, float]]:
    """UTC [start, end) timestamps of the months ("June 2022", "May 8, 2023") and years
    ("in 2022") a query names; empty when it names none."""
    periods = []
    for match in _MONTH_YEAR.finditer(query):
        year, month = int(match.group(2)), _MONTHS[match.group(1).lower()]
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        periods.append((start.timestamp(), end.timestamp()))
    for match in _YEAR.finditer(query):
        year = int(match.group(1))
        start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        periods.append((start.timestamp(), end.timestamp()))
    return periods


def calibrate_cosine(cosine: float) -> float:
    """Map a raw cosine similarity onto [0, 1] so that thresholds mean something."""
    (x0, y0), *rest = COSINE_KNOTS
    if cosine <= x0:
        return y0
    for x1, y1 in rest:
        if cosine <= x1:
            return y0 + (y1 - y0) * (cosine - x0) / (x1 - x0)
        x0, y0 = x1, y1
    return y0


def centred_query(vector: np.ndarray, mean: np.ndarray | None) -> np.ndarray | None:
    """normalise(vector - CENTRING x mean): the query with the searched scope's common
    direction taken out; None without a mean, or when nothing is left of the query."""
    if mean is None:
        return None
    shifted = np.asarray(vector, dtype=np.float32) - CENTRING * np.asarray(mean, np.float32)
    norm = float(np.linalg.norm(shifted))
    return shifted / norm if norm > 1e-6 else None


def rrf(
    ranked_lists: Sequence[Sequence[tuple[str, float]]],
    weights: Sequence[float],
    k: int = RRF_K,
    *,
    into: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: id -> sum of weight / (k + rank), rank from 1.

    Only positions count, never the lists' own scores. ``into`` is an earlier fusion the
    lists add to (fusing in two steps gives exactly the same sums as in one)."""
    fused: dict[str, float] = dict(into or {})
    get = fused.get
    for weight, results in zip(weights, ranked_lists, strict=True):
        for (memory_id, _), gain in zip(results, _gains(weight, k, len(results)), strict=False):
            fused[memory_id] = get(memory_id, 0.0) + gain
    return fused


@lru_cache(maxsize=256)
def _gains(weight: float, k: int, n: int) -> tuple[float, ...]:
    """weight / (k + rank) for ranks 1..n, in multiples of 64 (the first n are used)."""
    return tuple(weight / (k + rank) for rank in range(1, -(-n // 64) * 64 + 1))


def shown_score(cosine: float | None, coverage: float = 0.0) -> float:
    """The user-facing score of a (query, memory) pair: its calibrated cosine, with the
    headroom above it filled by TERM_LIFT x coverage^2 (``coverage``: share of the query's
    words in the memory, from ``term_coverage``)."""
    base = 0.0 if cosine is None else calibrate_cosine(cosine)
    lift = TERM_LIFT * min(1.0, max(0.0, coverage)) ** 2
    return 1.0 - (1.0 - base) * (1.0 - lift)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """English (Porter 2) stem of a lower-case word: "camping" -> "camp"."""
    return str(_STEMMER.stemWord(word))


def term_coverage(terms: Sequence[str], content: str) -> float:
    """Share of ``terms`` (from ``keyword_terms``) that ``content`` contains, each compared
    by its stem, so "camping" finds "camp" and "vendors" finds "vendor"."""
    if not terms:
        return 0.0
    stems, wanted, starts = _stems(tuple(terms))
    # Only words that start like a wanted stem can share it (stemming strips suffixes), so
    # only those are stemmed: a cold stem costs ~0.1 ms in pure Python.
    words = {w for w in _WORD.findall(content.lower()) if w[:2] in starts}
    found = {stem(w) for w in words} & wanted
    return sum(s in found for s in stems) / len(terms)


@lru_cache(maxsize=1024)
def _stems(terms: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]]:
    """The stem of each term, the set of them and their first two letters (once a query,
    not once a memory)."""
    stems = tuple(stem(t) for t in terms)
    return stems, frozenset(stems), frozenset(s[:2] for s in stems)


class Context:
    """Who comes before and after whom, from a store's ``neighbors`` answer
    (id -> {offset: id}), walked up to CONTEXT_RADIUS steps from any memory it names."""

    def __init__(self, neighbors: Mapping[str, Mapping[int, str]] | None = None) -> None:
        self.before: dict[str, str] = {}
        self.after: dict[str, str] = {}
        after, before = self.after, self.before
        for memory_id, offsets in (neighbors or {}).items():
            if not offsets:
                continue
            previous = None  # memories at consecutive offsets (0: memory_id) are linked
            for offset in range(min(0, *offsets), max(0, *offsets) + 1):
                current = memory_id if offset == 0 else offsets.get(offset)
                if current is not None and previous is not None:
                    after[previous], before[current] = current, previous
                previous = current

    @cached_property
    def around(self) -> dict[str, list[tuple[int, str]]]:
        """id -> [(offset, id)] of ``reach``, built when first asked for (explain)."""
        return {mid: list(self.reach(mid)) for mid in self.after.keys() | self.before.keys()}

    @cached_property
    def table(self) -> tuple[dict[str, int], list[str], np.ndarray]:
        """``reach`` of every linked memory as numbers: (id -> number, the ids, a matrix
        whose row i holds the numbers ``reach(ids[i])`` yields at offsets 1..R, -1..-R;
        len(ids) where it yields none). The last row (number len(ids)) is all len(ids)."""
        ids = list(dict.fromkeys([*self.after, *self.before]))
        number = dict(zip(ids, range(len(ids)), strict=True))
        none = len(ids)
        columns = []
        for links in (self.after, self.before):
            step = np.full(none + 1, none, dtype=np.intp)
            if links:
                size = len(links)
                at = np.fromiter(map(number.__getitem__, links), np.intp, size)
                step[at] = np.fromiter(map(number.__getitem__, links.values()), np.intp, size)
            current = np.arange(none + 1)
            for _ in range(CONTEXT_RADIUS):
                current = step[current]
                columns.append(current)
        return number, ids, np.stack(columns, axis=1)

    def reach(self, memory_id: str) -> Iterator[tuple[int, str]]:
        """(offset, id) of the memories up to CONTEXT_RADIUS steps after (1, 2...), then
        before (-1, -2...) ``memory_id``."""
        for step, links in ((1, self.after), (-1, self.before)):
            current = memory_id
            for distance in range(1, CONTEXT_RADIUS + 1):
                if (following := links.get(current)) is None:
                    break
                yield step * distance, following
                current = following


def rows_of(vectors: Mapping[str, np.ndarray], ids: Sequence[str]) -> np.ndarray:
    """The vectors of ``ids`` as the rows of one matrix (``np.array`` over the list: several
    times faster than ``np.stack``, which reshapes each vector first)."""
    return np.array([vectors[i] for i in ids], dtype=np.float32).reshape(len(ids), -1)


def context_cosines(
    query: np.ndarray, vectors: Mapping[str, np.ndarray], context: Context
) -> list[tuple[str, float]]:
    """(id, cosine of the query with the memory's context vector), best first. The context
    vector is the memory's vector plus CONTEXT_MIX of the previous memory's, when known."""
    ids = list(vectors)
    return context_cosines_of(query, ids, rows_of(vectors, ids), context)


def context_cosines_of(
    query: np.ndarray, ids: Sequence[str], matrix: np.ndarray, context: Context
) -> list[tuple[str, float]]:
    """``context_cosines`` of the memories ``ids`` whose vectors are the rows of ``matrix``."""
    if not len(ids):
        return []
    row = dict(zip(ids, range(len(ids)), strict=True))
    before = context.before
    rows, previous = [], []
    for i, memory_id in enumerate(ids):
        if (p := before.get(memory_id)) in row:
            rows.append(i)
            previous.append(row[p])
    blended = matrix.copy()
    if rows:
        blended[rows] += CONTEXT_MIX * matrix[previous]
    # np.linalg.norm(blended, axis=1)'s very sums, without its copies (conj, checks)
    norms = np.sqrt(np.add.reduce(blended * blended, axis=1))
    cosines = blended @ query / np.maximum(norms, 1e-12)
    order = np.argsort(-cosines, kind="stable").tolist()
    values = cosines.tolist()
    return [(ids[i], values[i]) for i in order]


def spread(fused: Mapping[str, float], context: Context) -> dict[str, float]:
    """Add SPREAD shares of each memory's fused relevance to the memories around it (the
    sums of a walk of ``fused`` in its order and of each memory's ``reach``, added in that
    order: np.add.at adds repeated targets one after the other)."""
    number, ids, table = context.table
    none = len(ids)
    source = np.fromiter(map(number.get, fused, repeat(none)), np.intp, len(fused))
    linked = np.flatnonzero(source != none)
    if not linked.size:
        return dict(fused)
    relevance = np.fromiter(fused.values(), np.float64, len(fused))
    targets = table[source[linked]]  # one row per linked source, in the order of fused
    shares = np.array([SPREAD[d] for d in range(1, CONTEXT_RADIUS + 1)] * 2)
    gains = relevance[linked, None] * shares
    found = targets != none
    targets, gains = targets[found], gains[found]
    # each target's place in the answer: its place in fused, else after fused's memories
    # in the order the walk first reaches it
    place = np.full(none + 1, -1, dtype=np.intp)
    place[source[linked]] = linked
    at = place[targets]
    new = at < 0
    first, where = np.unique(targets[new], return_index=True)
    added = first[np.argsort(where, kind="stable")]
    place[added] = np.arange(len(fused), len(fused) + added.size)
    out = np.concatenate([relevance, np.zeros(added.size)])
    np.add.at(out, place[targets], gains)
    return dict(zip([*fused, *(ids[i] for i in added.tolist())], out.tolist(), strict=True))


def fuse(
    dense: list[tuple[str, float]],
    keyword: list[tuple[str, float]],
    *,
    in_period: list[str] | None = None,
    cosines: dict[str, float] | None = None,
    context: Context | None = None,
    limit: int | None = None,
    min_score: float | None = None,
    coverage: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Merge best-first dense (id, cosine) and keyword (id, relevance) lists into
    (id, score in [0, 1]), best first, scores non-increasing.

    ``in_period`` lists candidates created in a period the query names, best first;
    ``cosines`` gives each candidate's own cosine similarity (default: the dense list's
    scores) and ``coverage`` the share of the query's words it contains, for the shown score;
    ``context`` spreads relevance to neighbouring memories;
    ``limit`` keeps only the best that many; ``min_score`` drops memories whose own score
    is below it (before the limit, so the limit fills with memories that pass)."""
    lists: list[list[tuple[str, float]]] = [dense, keyword]
    weights = [DENSE_WEIGHT, KEYWORD_WEIGHT]
    if in_period:
        lists.append([(mid, 0.0) for mid in in_period])
        weights.append(PERIOD_WEIGHT)
    fused = rrf(lists, weights)
    if context is not None:
        fused = spread(fused, context)
    return scores(
        fused,
        cosines={**dict(dense), **(cosines or {})},
        coverage=coverage,
        limit=limit,
        min_score=min_score,
    )


def scores(
    fused: Mapping[str, float],
    *,
    cosines: Mapping[str, float],
    coverage: Mapping[str, float] | Callable[[str], float] | None = None,
    limit: int | None = None,
    min_score: float | None = None,
    order: Sequence[str] | None = None,
) -> list[tuple[str, float]]:
    """Order by fused relevance and give each memory its shown score (from its own cosine
    and the share of the query's words it contains, ``coverage``: a mapping or a function
    of the id): (id, score in [0, 1]), best first, scores non-increasing.
    ``min_score`` drops memories below it before ``limit`` keeps the best that many.
    ``order``: the ids of ``fused`` already in that order, when the caller has sorted them."""
    share = coverage if callable(coverage) else (coverage or {}).get
    ordered: list[str] = []
    shown: list[float] = []
    if order is None:
        order = sorted(fused, key=fused.__getitem__, reverse=True)
    for mid in order:
        if limit is not None and len(ordered) >= limit:
            break
        score = shown_score(cosines.get(mid), share(mid) or 0.0)
        if min_score is None or score >= min_score:
            ordered.append(mid)
            shown.append(score)
    # Keep scores non-increasing down the list, so "best first" holds for the score too: a
    # memory ranked above another (by its keywords or its context) shows at least its score.
    for i in range(len(shown) - 2, -1, -1):
        shown[i] = max(shown[i], shown[i + 1])
    return [(mid, round(score, 4)) for mid, score in zip(ordered, shown, strict=True)]
