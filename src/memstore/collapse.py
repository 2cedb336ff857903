"""Near-duplicate collapse at recall: versions of one thing show up once, as the newest.

A project session that stores a summary after every run holds many near-identical texts;
without collapse recall's top 5 would be five versions of one run. Recall's best
candidates are walked best first: a candidate joins the first earlier group whose head
(its best-ranked member) is a near-duplicate of it, any other candidate starts a group.
Two memories are near-duplicates when they are of the same session, their e5 vectors have
a cosine of at least ``SIMILAR_COSINE`` and their content words (stopwords and numbers left
out) overlap by at least ``SIMILAR_WORDS`` (Jaccard): e5 alone puts short chit-chat ("Thanks,
Mel!" / "Thanks, Caroline!") as close as two versions of a run summary. Each group is shown
once, where its head ranked, as its newest member (latest ``created_at``); the others are
its ``similar_ids``, best first. Only recall's best ``depth(limit)`` candidates are grouped,
never the whole session. See docs/memory-over-time.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from memstore.ranking import STOPWORDS
from memstore.stores.base import MemoryRow, Store

# Measured with bench/runlog.py and the LoCoMo dev file (docs/memory-over-time.md): versions
# of one run summary sit at cosine 0.95-0.99 and share 30-80% of their words; LoCoMo's
# chit-chat reaches cosine 0.98 but rarely shares 40% of its words.
SIMILAR_COSINE = 0.95
SIMILAR_WORDS = 0.4
# Only the best candidates are grouped: enough to fill ``limit`` when each thing has many
# versions, few enough to stay cheap.
DEPTH = 100
DEPTH_PER_RESULT = 4

_WORD = re.compile(r"\w+", re.UNICODE)


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


def content_words(text: str) -> frozenset[str]:
    """The words that say what a text is about: lower-cased, no stopwords, no numbers."""
    return frozenset(
        w
        for w in (m.lower() for m in _WORD.findall(text))
        if w not in STOPWORDS and not w.isdigit()
    )


def same_words(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two memories' content words overlap by at least SIMILAR_WORDS (Jaccard)."""
    return len(a & b) >= SIMILAR_WORDS * max(1, len(a | b))


def collapse(
    store: Store,
    account_id: str,
    ranked: list[tuple[str, float]],
    vectors: dict[str, np.ndarray],
    limit: int,
    now: float,
) -> list[Group]:
    """The first ``limit`` groups of near-duplicates among ``ranked`` (best first).
    ``vectors`` are those recall already fetched; missing ones are read."""
    missing = [mid for mid, _ in ranked if mid not in vectors]
    if missing:
        vectors = {**vectors, **store.vectors(account_id, missing)}
    ids = [mid for mid, _ in ranked if mid in vectors]
    near = _near_pairs(ids, vectors)
    # Only candidates with a near twin can share a group: read just those.
    twins = [ids[i] for i in np.flatnonzero(near.any(axis=1))] if ids else []
    rows = store.get_many(account_id, twins, now) if twins else {}
    words = {mid: content_words(row.content) for mid, row in rows.items()}
    at = {mid: i for i, mid in enumerate(ids)}
    groups: list[Group] = []
    heads: list[tuple[int, MemoryRow, Group]] = []  # groups whose head has a near twin
    for mid, _ in ranked:
        i, row = at.get(mid), rows.get(mid)
        if i is not None and row is not None:
            joined = next(
                (
                    group
                    for h, head, group in heads
                    if near[i, h]
                    and head.session == row.session
                    and same_words(words[head.id], words[mid])
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
        if i is not None and row is not None:
            heads.append((i, row, group))
    for group in groups:
        group.shown = max(
            group.members,
            key=lambda m: rows[m].created_at if m in rows else float("-inf"),
        )
    return groups


def _near_pairs(ids: list[str], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean matrix: ``[i, j]`` when the vectors of candidates i and j (i != j) have a
    cosine of at least SIMILAR_COSINE."""
    if not ids:
        return np.zeros((0, 0), dtype=bool)
    matrix = np.stack([vectors[mid] for mid in ids])
    # Row by row: a matrix-vector product runs on one thread, where BLAS would spread a
    # 100 x 100 product over threads and wait for them on a busy machine (10x slower).
    near = np.stack([matrix @ row for row in matrix]) >= SIMILAR_COSINE
    np.fill_diagonal(near, False)
    return near
