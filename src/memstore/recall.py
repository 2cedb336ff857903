"""The recall pipeline: candidates -> context -> fusion -> spreading -> scores.

1. candidates: the best ``CANDIDATES`` of the dense (vector), keyword and centred dense
   lists (the query minus the searched sessions' mean vector), fused by rank to pick the
   ``IN_CONTEXT`` worth reading in context;
2. context: the memories stored around each of those in its session, and the query's
   cosine with each memory blended with the one before it; beside it, the local list (the
   query minus the mean of its own best dense hits);
3. fusion: rank fusion of the in-context dense list, the keyword list, the centred dense
   lists and, when the query names a month or year, the memories created in it;
4. spreading: part of each memory's fused relevance goes to its neighbours;
5. scores: the calibrated cosine, lifted by the share of the query's words the memory
   contains, shown to users, best first.

The pure functions live in ``ranking.py``; this module only fetches and wires them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

import numpy as np

from memstore import blas, metrics
from memstore.collapse import collapse
from memstore.collapse import depth as collapse_depth
from memstore.explain import Trace
from memstore.models import RecalledMemory, memory_fields
from memstore.ranking import (
    CENTRED_MAX_ROWS,
    CENTRED_WEIGHT,
    CENTRING,
    CONTEXT_RADIUS,
    CONTEXT_WINDOW,
    DENSE_WEIGHT,
    KEYWORD_WEIGHT,
    LOCAL_MAX_ROWS,
    LOCAL_TOP,
    LOCAL_WEIGHT,
    PERIOD_WEIGHT,
    Context,
    centred_query,
    context_cosines_of,
    keyword_terms,
    query_periods,
    rows_of,
    rrf,
    scores,
    spread,
    term_coverage,
)
from memstore.stores.base import Filters, FollowUp, MemoryRow, Store

T = TypeVar("T")
CANDIDATES = 100  # per list; fusion finds evidence ranked ~50-100 by one list alone
IN_CONTEXT = 50  # the best candidates of the first fusion are read in their context
# Recall searches keywords on one of these threads while its own thread embeds the query
# and searches vectors (the model, numpy and SQLite release the GIL).
_BESIDE = ThreadPoolExecutor(4, thread_name_prefix="memstore-keywords")
# In a scope this small the local list is searched on recall's own thread: its search costs
# less than what running it beside costs the context stage's numpy (both want the GIL).
INLINE_MAX_ROWS = 4000


@dataclass(frozen=True)
class RecallQuery:
    """A validated recall request of one account."""

    account_id: str
    query: str
    sessions: list[str] | None
    limit: int
    min_score: float | None
    filters: Filters | None
    now: float
    collapse: bool = True  # near-duplicates of one session shown once (collapse.py)
    explain: bool = False  # each result says why it came back (explain.py)


def recall(
    store: Store, vector: np.ndarray | Callable[[], np.ndarray], q: RecallQuery
) -> list[RecalledMemory]:
    """The memories most relevant to ``q.query`` (whose embedding is ``vector``, or what
    calling ``vector`` returns: the keyword search then runs while it embeds), best first,
    each with a score in [0, 1]."""
    account, now, where = q.account_id, q.now, q.filters
    blas.one_thread()  # multi-threaded BLAS stalls on a busy host (blas.py)
    lap = metrics.laps()  # times each stage when metrics are on

    # 1. candidates
    k = max(CANDIDATES, q.limit * 4)
    terms = keyword_terms(q.query)
    # The keyword search runs beside the embedding (when the query is not cached) and the
    # dense search: only what it takes longer than both costs wall time. With the vector
    # at hand and a small scope, it runs here: beside, it and numpy would fight for the GIL.
    small: bool | None = None if callable(vector) else _small_scope(store, q)
    keyword_search = partial(store.keyword_search, account, q.sessions, terms, k, now, where)
    ahead = _Beside(keyword_search, here=bool(small))
    try:
        if callable(vector):
            vector = vector()
        lap("embedding")  # ~0 when cached
        dense, centred, nearby = dense_lists(store, q, vector, k)
        lap("dense")
    except BaseException:
        ahead.settle()  # never left running against a store its caller may close next
        raise
    keyword = ahead.result()
    lap("keyword")  # only the wait for it after the embedding and the dense search
    first = rrf([dense, keyword, centred], [DENSE_WEIGHT, KEYWORD_WEIGHT, CENTRED_WEIGHT])
    candidates = sorted(first, key=first.__getitem__, reverse=True)[: max(IN_CONTEXT, q.limit)]

    # 2. context: every memory that can be returned is scored by its real cosine, keyword-only
    # hits included, not as unrelated. The local list, needed by the final fusion only, is
    # searched beside it. Each vector is read once: those of the context and of the local
    # list's LOCAL_TOP best dense hits in one read.
    # the local list only beside the centred one, and in a scope of at most LOCAL_MAX_ROWS
    local_dense = dense if centred and nearby else []
    top = [mid for mid, _ in local_dense[:LOCAL_TOP]] if LOCAL_WEIGHT else []  # its own
    around = store.neighbors(account, candidates, CONTEXT_RADIUS, CONTEXT_WINDOW, now, where)
    pool = set(candidates).union(*(offsets.values() for offsets in around.values()))
    unscored = pool.union(mid for mid, _ in keyword + centred).difference(dict(dense))
    wanted = pool | unscored
    read = store.vectors(account, [*wanted, *(mid for mid in top if mid not in wanted)])
    fetched = {mid: v for mid, v in read.items() if mid in wanted}
    if small is None and local_dense:
        small = _small_scope(store, q)
    beside = _Beside(partial(local_search, store, q, vector, local_dense, k, read), bool(small))
    try:  # all that does not need the local list, while it is searched
        context = Context(around)
        order = list(fetched)
        matrix = _matrix(fetched, order, len(vector))
        in_pool = [i for i, mid in enumerate(order) if mid in pool]
        pool_ids = [order[i] for i in in_pool]
        in_context = context_cosines_of(vector, pool_ids, matrix[in_pool], context)
        # 3. fusion, the local list last (rrf sums in two steps equal those of one)
        fused = rrf([in_context, keyword, centred], [DENSE_WEIGHT, KEYWORD_WEIGHT, CENTRED_WEIGHT])
    except BaseException:
        beside.settle()
        raise
    local = beside.result()
    scored = unscored.union(mid for mid, _ in dense)  # a cosine known or asked for
    if missing := [mid for mid, _ in local if mid not in scored]:
        more = store.vectors(account, missing)
        fetched.update(more)
        order.extend(more)  # the rows of one matrix of all of fetched, in its order
        matrix = np.concatenate([matrix, _matrix(more, list(more), len(vector))])
    own = (matrix @ vector).tolist()
    cosines = {**dict(dense), **dict(zip(order, own, strict=True))}
    lap("context")
    fused = rrf([local], [LOCAL_WEIGHT], into=fused)  # (the period list, last, only adds)
    periods = query_periods(q.query)
    rows: dict[str, MemoryRow] = {}  # read for the period list: word coverage reuses them
    if periods:
        order = sorted(fused, key=fused.__getitem__, reverse=True)
        rows = store.get_many(account, order, now)
        in_period = [
            mid
            for mid in order
            if mid in rows and any(start <= rows[mid].created_at < end for start, end in periods)
        ]
        fused = rrf([[(mid, 0.0) for mid in in_period]], [PERIOD_WEIGHT], into=fused)

    # 4. spreading, 5. scores (each memory's own cosine and share of the query's words)
    relevance = spread(fused, context)  # (each context cosine's memory is in cosines)
    words = WordCoverage(store, q, sorted(relevance, key=relevance.__getitem__, reverse=True))
    words.rows.update(rows)
    if q.collapse and q.min_score is None:  # collapse reads only its candidates' order
        ranked = [(mid, 0.0) for mid in words.order[: collapse_depth(q.limit)]]
    else:
        ranked = scores(
            relevance,
            order=words.order,
            cosines=cosines,
            coverage=words,  # min_score drops candidates before collapse groups them
            limit=collapse_depth(q.limit) if q.collapse else q.limit,
            min_score=q.min_score,
        )
    similar: dict[str, list[str]] = {}
    if q.collapse:  # over more candidates than ``limit``, so that ``limit`` distinct ones show
        groups = {
            g.members[0]: g
            for g in collapse(store, account, ranked, {**read, **fetched}, q.limit, now, words.rows)
        }
        best = scores({m: relevance[m] for m in groups}, cosines=cosines, coverage=words)
        ranked = [(groups[m].shown, score) for m, score in best]
        similar = {g.shown: g.similar_ids for g in groups.values()}
        shown = [mid for mid, _ in ranked if mid not in words.rows]
        words.rows.update(store.get_many(account, shown, now) if shown else {})
    rows = words.rows
    lap("fusion")
    trace = Trace(terms, cosines, keyword, fused, context, periods) if q.explain else None
    return [
        RecalledMemory(
            **memory_fields(rows[mid]),
            score=score,
            similar=len(similar.get(mid, ())),
            similar_ids=similar.get(mid, []),
            why=None if trace is None else trace.why(rows[mid], similar.get(mid, [])),
        )
        for mid, score in ranked
        if mid in rows
    ]


def _small_scope(store: Store, q: RecallQuery) -> bool:
    """Whether the searched sessions hold at most INLINE_MAX_ROWS memories (and some)."""
    return store.session_mean(q.account_id, q.sessions, q.now, INLINE_MAX_ROWS) is not None


class _Beside(Generic[T]):
    """``run`` started on one of the ``_BESIDE`` threads, or, ``here``, run on the caller's
    own thread when its answer is asked for (in a small scope the hand-off costs more)."""

    def __init__(self, run: Callable[[], T], here: bool) -> None:
        self._run = run
        self._future = None if here else _BESIDE.submit(run)

    def result(self) -> T:
        return self._run() if self._future is None else self._future.result()

    def settle(self) -> None:
        """Wait until it no longer runs (its answer unread)."""
        if self._future is not None:
            wait([self._future])


def dense_and_centred(
    store: Store, q: RecallQuery, vector: np.ndarray, k: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The dense list of the query and the centred dense list: the query with the searched
    sessions' mean vector taken out (``ranking.centred_query``), empty when the sessions
    hold nothing (or more than CENTRED_MAX_ROWS). Both from one pass over the scope where
    the store can."""
    plain, centred, _ = dense_lists(store, q, vector, k)
    return plain, centred


def dense_lists(
    store: Store, q: RecallQuery, vector: np.ndarray, k: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], bool]:
    """``dense_and_centred``, and whether the scope holds at most LOCAL_MAX_ROWS memories
    (the local list's cap)."""
    mean, nearby = _centring_mean(store, q)
    centred = centred_query(vector, mean)
    if centred is None:
        plain = store.dense_search(q.account_id, q.sessions, vector, k, q.now, q.filters)
        return plain, [], nearby
    shift = CENTRING * np.asarray(mean, np.float32)  # as centred_query takes it out
    # the local list recall asks for next, which a store may score in the same pass
    follow = FollowUp(LOCAL_TOP, partial(local_query, vector)) if nearby and LOCAL_WEIGHT else None
    plain, shifted = store.dense_search_many(
        q.account_id, q.sessions, [vector, centred], k, q.now, q.filters, shift, follow
    )
    return plain, shifted, nearby


def _centring_mean(store: Store, q: RecallQuery) -> tuple[np.ndarray | None, bool]:
    """The searched sessions' mean vector, None without the centred list (no weight, no
    memories, more than CENTRED_MAX_ROWS), and whether they hold at most LOCAL_MAX_ROWS:
    one ``session_mean`` under the smaller cap, a second only past it."""
    if not CENTRED_WEIGHT:
        return None, False
    caps = [CENTRED_MAX_ROWS, LOCAL_MAX_ROWS]
    least = min((c for c in caps if c is not None), default=None)
    mean = store.session_mean(q.account_id, q.sessions, q.now, least)
    if mean is not None:
        return mean, True
    if least is None or least == CENTRED_MAX_ROWS:
        return None, False  # empty, or past the centred list's own cap
    return store.session_mean(q.account_id, q.sessions, q.now, CENTRED_MAX_ROWS), False


def local_search(
    store: Store,
    q: RecallQuery,
    vector: np.ndarray,
    dense: list[tuple[str, float]],
    k: int,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> list[tuple[str, float]]:
    """The dense list of the query centred on the mean of its LOCAL_TOP best ``dense`` hits
    (``ranking.centred_query``), best first; empty without hits. Their vectors are taken
    from ``vectors`` when given (recall reads them with the context's), else read."""
    if not LOCAL_WEIGHT or not dense:
        return []
    ids = [mid for mid, _ in dense[:LOCAL_TOP]]
    if vectors is None:
        top = store.vectors(q.account_id, ids)
    else:
        top = {mid: vectors[mid] for mid in ids if mid in vectors}
    if not top:
        return []
    shifted = local_query(vector, top)
    if shifted is None:
        return []
    return store.dense_search(q.account_id, q.sessions, shifted, k, q.now, q.filters)


def local_query(vector: np.ndarray, top: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The local list's query: ``vector`` centred on the mean of ``top`` (its best dense
    hits' vectors, best first)."""
    return centred_query(vector, rows_of(top, list(top)).mean(axis=0))


def _matrix(vectors: dict[str, np.ndarray], ids: list[str], dim: int = 0) -> np.ndarray:
    """``ranking.rows_of``, also for no ids (0 x ``dim``)."""
    return rows_of(vectors, ids) if ids else np.empty((0, dim), dtype=np.float32)


class WordCoverage:
    """Share of the query's words each ranked memory contains (for its shown score). Rows
    are read best first, in batches as scoring reaches them: ``limit`` rows unless
    ``min_score`` skips some; the rows read are kept in ``rows`` (rows put there before,
    such as collapse's, are not read again)."""

    def __init__(self, store: Store, q: RecallQuery, order: list[str]) -> None:
        self.store, self.q, self.order = store, q, order
        self.terms = keyword_terms(q.query)
        self.rows: dict[str, MemoryRow] = {}
        self.asked: set[str] = set()

    def __call__(self, memory_id: str) -> float:
        while memory_id not in self.asked and len(self.asked) < len(self.order):
            start = len(self.asked)  # batches of limit, then doubling
            batch = self.order[start : start + max(self.q.limit, start)]
            self.asked.update(batch)
            if unread := [mid for mid in batch if mid not in self.rows]:
                self.rows.update(self.store.get_many(self.q.account_id, unread, self.q.now))
        row = self.rows.get(memory_id)
        return 0.0 if row is None else term_coverage(self.terms, row.content)
