"""Near-duplicate collapse at recall: versions of one thing show up once, as the newest.

A project session that stores a summary after every run holds many near-identical texts;
without collapse recall's top 5 would be five versions of one run. Recall's ranked
candidates are walked best first: a candidate whose e5 vector has a cosine of at least
``SIMILAR_COSINE`` with the best member of an earlier group *of the same session* joins that
group, any other candidate starts a group. Each group is shown once, where its best member
ranked and with that member's score (so scores stay non-increasing), as its newest member
(latest ``created_at``); the others are its ``similar_ids``, best first. Only recall's
candidates are grouped (a few hundred at most), never the whole session. See
docs/memory-over-time.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memstore.stores.base import Store

# Passage-passage cosine of e5-small: the same run summary with other dates and figures sits
# at 0.95-0.99, two different facts of one project at 0.80-0.92 (bench/runlog.py, LoCoMo dev).
SIMILAR_COSINE = 0.95


@dataclass
class Group:
    """Candidates that say nearly the same thing: ``members`` in rank order (best first)."""

    members: list[str] = field(default_factory=list)
    shown: str = ""

    @property
    def similar_ids(self) -> list[str]:
        """The versions not shown, best first."""
        return [mid for mid in self.members if mid != self.shown]


def collapse(
    store: Store,
    account_id: str,
    ranked: list[tuple[str, float]],
    vectors: dict[str, np.ndarray],
    limit: int,
    now: float,
) -> list[Group]:
    """The first ``limit`` groups of near-duplicates among ``ranked`` (best first, scores
    non-increasing). ``vectors`` are those recall already fetched; missing ones are read."""
    missing = [mid for mid, _ in ranked if mid not in vectors]
    if missing:
        vectors = {**vectors, **store.vectors(account_id, missing)}
    ids = [mid for mid, _ in ranked if mid in vectors]
    near = _near_pairs(ids, vectors)
    # Only candidates with a near twin can share a group: read just their session and time.
    twins = [ids[i] for i in np.flatnonzero(near.any(axis=1))] if len(ids) else []
    rows = store.get_many(account_id, twins, now) if twins else {}
    row_of = {mid: i for i, mid in enumerate(ids)}
    groups: list[Group] = []
    heads: list[tuple[int, Group]] = []  # (row in ``near``, group) of groups with a twin
    for mid, _ in ranked:
        i = row_of.get(mid)
        row = rows.get(mid)
        if i is not None and row is not None:
            joined = next(
                (g for h, g in heads if near[i, h] and rows[g.members[0]].session == row.session),
                None,
            )
            if joined is not None:
                joined.members.append(mid)
                continue
        if len(groups) >= limit:
            continue  # later candidates may still join a shown group, none starts one
        group = Group(members=[mid])
        groups.append(group)
        if i is not None and row is not None:
            heads.append((i, group))
    for group in groups:
        group.shown = max(
            group.members,
            key=lambda m: rows[m].created_at if m in rows else float("-inf"),
        )
    return groups


def _near_pairs(ids: list[str], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean matrix: ``[i, j]`` when candidates i and j (i != j) are near-duplicates."""
    if not ids:
        return np.zeros((0, 0), dtype=bool)
    matrix = np.stack([vectors[mid] for mid in ids])
    near = (matrix @ matrix.T) >= SIMILAR_COSINE
    np.fill_diagonal(near, False)
    return near
