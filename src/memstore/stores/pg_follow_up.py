"""A follow-up search scored in the plain query's pass, on PostgreSQL (``FollowUp``).

Recall's local list searches with the query centred on the mean of its 20 best dense hits:
a second exact scan of the scope, known only once the first has ended. The HNSW index
guesses those hits first (a few ms); the one exact pass then scores the plain, centred
and follow-up queries together, and the follow-up's answer is kept for recall's
``dense_search`` of that vector only when the pass's own best hits are the guessed ones,
in the same order: the follow-up query is then the very vector recall computes, so the
answer is the one a scan of its own would give. A wrong guess costs that scan, as before.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg

from memstore.stores.base import Filters
from memstore.stores.pg_session_sums import sent_vector

Answer = list[tuple[str, float]]
Key = tuple[Any, ...]


def guess_ef(scope_rows: int, table_rows: float, min_rows: int, base: int, most: int) -> int | None:
    """hnsw.ef_search for a guess over ``scope_rows`` of ``table_rows`` (the index
    post-filters, so it is asked for ``base`` / the scope's share candidates), or None: no
    guess (a scope under ``min_rows``, where a pass costs about as much, or past ``most``)."""
    if scope_rows < max(min_rows, 1):
        return None
    share = scope_rows / max(table_rows, scope_rows)
    ef = math.ceil(base / share)
    return ef if ef <= most else None


def guess_top(
    conn: psycopg.Connection,
    scope: str,
    args: Sequence[Any],
    query: np.ndarray,
    top: int,
    ef: int,
) -> dict[str, np.ndarray] | None:
    """The vectors of the HNSW index's guess at the ``top`` best rows of ``scope`` for
    ``query``, best first (by exact cosine, then seq, as the exact pass orders them); None
    when it finds fewer. Runs in ``conn``'s transaction (its setting ends with it)."""
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
    rows = conn.execute(
        "SELECT m.id, m.seq, 1 - (m.embedding <=> %s), vector_send(m.embedding)"
        f" FROM memories m WHERE {scope} ORDER BY m.embedding <=> %s LIMIT %s",
        (query, *args, query, top + top // 2),
        binary=True,
    ).fetchall()
    if len(rows) < top:
        return None
    best = sorted(rows, key=lambda r: (-r[2], r[1]))[:top]
    return {r[0]: sent_vector(r[3]) for r in best}


def answer_key(
    account_id: str,
    sessions: list[str] | None,
    vector: np.ndarray,
    k: int,
    now: float,
    filters: Filters | None,
) -> Key:
    """What a kept answer must match: the whole search, the vector to the bit."""
    where = json.dumps(filters, sort_keys=True) if filters else None
    scope = None if sessions is None else tuple(sessions)
    return (account_id, scope, np.asarray(vector, np.float32).tobytes(), k, now, where)


class KeptAnswers:
    """Follow-up answers waiting for their ``dense_search``: each is taken once; the oldest
    go past ``size`` (a recall that failed before asking)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, key: Key, answer: Answer) -> None:
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def take(self, key: Key) -> Answer | None:
        with self._lock:
            return self._answers.pop(key, None)
