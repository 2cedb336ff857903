"""Near-duplicates: two memories of one session whose e5 vectors have a cosine of at least
NEAR_DUPLICATE_COSINE. Used by ``remember(on_similar=...)`` and the hygiene figures; the
threshold is measured by bench/near_duplicates.py (docs/memory-over-time.md)."""

from __future__ import annotations

import numpy as np

from memstore.current import current_view
from memstore.stores.base import Store

NEAR_DUPLICATE_COSINE = 0.96
SIMILAR_CANDIDATES = 10  # current memories examined per remember(on_similar=...)


def similar_current(
    store: Store, account_id: str, session: str, vector: np.ndarray, now: float
) -> list[tuple[str, float]]:
    """Current memories of ``session`` that are near-duplicates of ``vector``, best first."""
    view = current_view(store, account_id, [session], None, False)
    found = view.dense_search(account_id, [session], vector, SIMILAR_CANDIDATES, now, None)
    return [(mid, cos) for mid, cos in found if cos >= NEAR_DUPLICATE_COSINE]


def near_duplicate_groups(vectors: np.ndarray, threshold: float = NEAR_DUPLICATE_COSINE) -> int:
    """How many groups of two or more rows are linked by cosine >= ``threshold`` (connected
    components of the similarity graph; rows are unit vectors). Cost O(n^2 * dim)."""
    n = len(vectors)
    if n < 2:
        return 0
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = np.argwhere(np.triu(vectors @ vectors.T >= threshold, k=1))
    for a, b in pairs:
        parent[root(int(a))] = root(int(b))
    sizes: dict[int, int] = {}
    for i in range(n):
        sizes[root(i)] = sizes.get(root(i), 0) + 1
    return sum(1 for size in sizes.values() if size > 1)
