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

from memstore.ranking import STOPWORDS, rows_of
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
    read: dict[str, MemoryRow] | None = None,
) -> list[Group]:
    """The first ``limit`` groups of near-duplicates among ``ranked`` (best first).
    ``vectors`` are those recall already fetched; missing ones are read. The rows read on
    the way are added to ``read`` when given (recall shows them without reading again)."""
    missing = [mid for mid, _ in ranked if mid not in vectors]
    if missing:
        vectors = {**vectors, **store.vectors(account_id, missing)}
    near = _Near([mid for mid, _ in ranked if mid in vectors], vectors)
    # Rows (session, words, time) are read only for the candidates near a group's head:
    # first for the heads the vectors alone would pick, then for any other head on the way.
    rows = near.read(store, account_id, now, near.vector_heads(limit))
    words: dict[str, frozenset[str]] = {}

    def same(head: MemoryRow, row: MemoryRow) -> bool:
        for r in (head, row):
            if r.id not in words:
                words[r.id] = content_words(r.content)
        return head.session == row.session and same_words(words[head.id], words[row.id])

    groups: list[Group] = []
    # (head, its group, the candidates near it); a head near none is left out: none joins it
    heads: list[tuple[int, Group, set[int]]] = []
    for mid, _ in ranked:
        i, row = near.at.get(mid), rows.get(mid)
        if i is not None and row is not None and heads:
            joined = next(
                (g for h, g, close in heads if i in close and same(rows[near.ids[h]], row)), None
            )
            if joined is not None:
                joined.members.append(mid)
                continue
        if len(groups) >= limit:
            continue  # later candidates may still join a shown group, none starts one
        group = Group(members=[mid])
        groups.append(group)
        if i is not None:
            rows.update(near.read(store, account_id, now, [i], have=rows))
            if near.ids[i] in rows and (close := near.indices(i)):
                heads.append((i, group, close))
    for group in groups:
        group.shown = max(
            group.members,
            key=lambda m: rows[m].created_at if m in rows else float("-inf"),
        )
    if read is not None:
        read.update(rows)
    return groups


class _Near:
    """Which candidates' vectors have a cosine of at least SIMILAR_COSINE, computed one
    head at a time (a matrix-vector product runs on one thread; a full matrix product
    would be spread over BLAS threads and wait for them on a busy machine)."""

    def __init__(self, ids: list[str], vectors: dict[str, np.ndarray]) -> None:
        self.ids = ids
        self.at = {mid: i for i, mid in enumerate(ids)}
        self.matrix = rows_of(vectors, ids) if ids else None
        self._of: dict[int, np.ndarray] = {}

    def of(self, h: int) -> np.ndarray:
        """Boolean over the candidates: near-duplicates of candidate ``h`` (not itself)."""
        if h not in self._of:
            assert self.matrix is not None
            near = self.matrix @ self.matrix[h] >= SIMILAR_COSINE
            near[h] = False
            self._of[h] = near
        return self._of[h]

    def indices(self, h: int) -> set[int]:
        """``of(h)`` as the set of the candidates' numbers (a set lookup beats a numpy one)."""
        return set(np.flatnonzero(self.of(h)).tolist())

    def vector_heads(self, limit: int) -> list[int]:
        """The heads the vectors alone would pick: the first ``limit`` candidates not near
        an earlier head."""
        heads: list[int] = []
        covered = np.zeros(len(self.ids), dtype=bool)
        for i in range(len(self.ids)):
            if len(heads) >= limit:
                break
            if not covered[i]:
                heads.append(i)
                covered |= self.of(i)
        return heads

    def read(
        self,
        store: Store,
        account_id: str,
        now: float,
        heads: list[int],
        have: dict[str, MemoryRow] | None = None,
    ) -> dict[str, MemoryRow]:
        """The rows of ``heads`` that have near-duplicates and of those, unless in ``have``."""
        want = {
            self.ids[j]
            for h in heads
            if self.of(h).any()
            for j in (h, *np.flatnonzero(self.of(h)).tolist())
        }
        want.difference_update(have or ())
        return store.get_many(account_id, list(want), now) if want else {}
