"""Near-duplicate collapse at recall: versions of one thing show up once, as the newest.

A project session that stores a summary after every run holds many near-identical texts;
without collapse recall's top 5 would be five versions of one run. Recall's ranked
candidates are walked best first: a candidate whose e5 vector has a cosine of at least
``SIMILAR_COSINE`` with the best member of an earlier group *of the same session* joins that
group, any other candidate starts a group. Each group is shown once, where its best member
ranked and with that member's score (so scores stay non-increasing), as its newest member
(latest ``created_at``); the others are its ``similar_ids``, best first. Only recall's
best ``depth(limit)`` candidates are grouped, never the whole session, and each is compared
with the groups' heads only (at most ``limit`` of them). See docs/memory-over-time.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memstore.stores.base import Store

# Passage-passage cosine of e5-small: the same run summary with other dates and figures sits
# at 0.95-0.99, two different facts of one project at 0.80-0.92 (bench/runlog.py, LoCoMo dev).
SIMILAR_COSINE = 0.95
# Only the best candidates are grouped: enough to fill ``limit`` when each thing has many
# versions, few enough to stay cheap.
DEPTH = 100
DEPTH_PER_RESULT = 10


@dataclass
class Group:
    """Candidates that say nearly the same thing: ``members`` in rank order (best first)."""

    members: list[str] = field(default_factory=list)
    shown: str = ""

    @property
    def similar_ids(self) -> list[str]:
        """The versions not shown, best first."""
        return [mid for mid in self.members if mid != self.shown]


def depth(limit: int) -> int:
    """How many of recall's best candidates are grouped for a result of ``limit``."""
    return max(DEPTH, DEPTH_PER_RESULT * limit)


def collapse(
    store: Store,
    account_id: str,
    ranked: list[tuple[str, float]],
    vectors: dict[str, np.ndarray],
    limit: int,
    now: float,
    *,
    one_session: bool,
) -> list[Group]:
    """The first ``limit`` groups of near-duplicates among ``ranked`` (best first).
    ``vectors`` are those recall already fetched; missing ones are read. ``one_session``:
    every candidate is of one session (else their sessions are read first)."""
    missing = [mid for mid, _ in ranked if mid not in vectors]
    if missing:
        vectors = {**vectors, **store.vectors(account_id, missing)}
    ids = [mid for mid, _ in ranked if mid in vectors]
    rows = {} if one_session or not ids else store.get_many(account_id, ids, now)
    session_of = None if one_session else {mid: row.session for mid, row in rows.items()}
    near = _near_heads(ids, vectors, limit, session_of)
    if one_session:  # only candidates near a group's head, and the heads, need their time
        involved = {ids[i] for i, heads in near.items() for i in (i, *heads)}
        rows = store.get_many(account_id, list(involved), now) if involved else {}
    at = {mid: i for i, mid in enumerate(ids)}
    groups: list[Group] = []
    group_at: dict[int, Group] = {}  # groups by the index of their head in ``ids``
    for mid, _ in ranked:
        i, row = at.get(mid), rows.get(mid)
        if i is not None and row is not None:
            joined = next(
                (
                    group_at[h]
                    for h in near.get(i, ())
                    if h in group_at and (head := rows.get(ids[h])) and head.session == row.session
                ),
                None,
            )
            if joined is not None:
                joined.members.append(mid)
                continue
        if len(groups) >= limit:
            continue  # later candidates may still join a shown group, none starts one
        group = Group(members=[mid])
        groups.append(group)
        if i is not None:
            group_at[i] = group
    for group in groups:
        group.shown = max(
            group.members,
            key=lambda m: rows[m].created_at if m in rows else float("-inf"),
        )
    return groups


def _near_heads(
    ids: list[str],
    vectors: dict[str, np.ndarray],
    limit: int,
    session_of: dict[str, str] | None,
) -> dict[int, list[int]]:
    """For each candidate (by index) that is a near-duplicate of an earlier group's head of
    its session, the indices of those heads, in order; the first ``limit`` candidates that
    are not start the groups. ``session_of`` None: all are of one session."""

    def same(i: int, h: int) -> bool:
        return session_of is None or session_of.get(ids[i]) == session_of.get(ids[h])

    if not ids:
        return {}
    first = vectors[ids[0]]
    heads_matrix = np.empty((limit, first.shape[0]), dtype=first.dtype)
    heads: list[int] = []
    near: dict[int, list[int]] = {}
    i = 0
    while i < len(ids) and len(heads) < limit:
        vector = vectors[ids[i]]
        hit = np.flatnonzero(heads_matrix[: len(heads)] @ vector >= SIMILAR_COSINE)
        matched = [heads[j] for j in hit if same(i, heads[j])]
        if matched:
            near[i] = matched
        else:
            heads_matrix[len(heads)] = vector
            heads.append(i)
        i += 1
    if i < len(ids):  # the groups are all started: the rest can only join one
        rest = np.stack([vectors[mid] for mid in ids[i:]])
        rows, cols = np.nonzero(rest @ heads_matrix[: len(heads)].T >= SIMILAR_COSINE)
        for r, j in zip(rows, cols, strict=True):
            if same(i + int(r), heads[int(j)]):
                near.setdefault(i + int(r), []).append(heads[int(j)])
    return near
