"""Score floors for the exact pass of a large scope on PostgreSQL.

The exact pass of ``dense_search_many`` keeps every row's scores, then sorts them once per
query: at 100k rows that keeping and sorting cost about as much as the scan. Any ``k`` rows
of the scope bound each query's k-th best score from below, and the HNSW index finds good
ones in a few ms: the pass then keeps only the rows at or above some query's floor, which
holds every query's true top ``k`` (ties included), so the answers are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg


def bounds_ef(scope_rows: int, table_rows: float, k: int, min_rows: int, most: int) -> int | None:
    """hnsw.ef_search for floors over ``scope_rows`` of ``table_rows`` (twice ``k`` over the
    scope's share: the index post-filters), or None: no floors (a scope under
    ``min_rows``, where keeping every row costs little, or past ``most``)."""
    if scope_rows < max(min_rows, 1) or k <= 0:
        return None
    share = scope_rows / max(table_rows, scope_rows)
    ef = math.ceil(2 * k / share)
    return ef if ef <= most else None


def score_floors(
    conn: psycopg.Connection,
    scope: str,
    args: Sequence[Any],
    queries: Sequence[np.ndarray],
    k: int,
    ef: int,
) -> list[float] | None:
    """For each query, the k-th best score of ``k`` rows of ``scope`` the HNSW index finds
    (a floor under its true k-th best); None when it finds fewer for one of them. Runs in
    ``conn``'s transaction (its setting ends with it)."""
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
    floors = []
    for query in queries:
        (floor, found), *_ = conn.execute(
            "SELECT min(s), count(*) FROM (SELECT 1 - (m.embedding <=> %s) AS s"
            f" FROM memories m WHERE {scope} ORDER BY m.embedding <=> %s LIMIT %s) best",
            (query, *args, query, k),
        ).fetchall()
        if found < k:
            return None
        floors.append(float(floor))
    return floors
