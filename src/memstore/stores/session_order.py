"""The memories of each session in the order they were stored, for in-memory neighbours.

Recall reads each of its ~50 best candidates in context: the memories stored just before
and after it in its session (``Store.neighbors``). The SQLite store answered that with one
SQL query of two correlated subqueries per candidate (~1 ms at 1k memories, ~2.3 ms at
100k); the vector index already holds each row's session, expiry and seq, so with each
session's seqs kept sorted here it answers the same question in a few microseconds per
candidate. New memories take the largest seq so far, so keeping the lists sorted is an
append; a removal is a bisection and a ``del``.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable


class SessionOrder:
    """Per session (an int code), the sorted seqs of its rows."""

    def __init__(self) -> None:
        self._seqs: dict[int, list[int]] = {}

    def add(self, session: int, seq: int) -> None:
        seqs = self._seqs.setdefault(session, [])
        if not seqs or seqs[-1] < seq:
            seqs.append(seq)
        else:
            insort(seqs, seq)

    def discard(self, session: int, seq: int) -> None:
        seqs = self._seqs.get(session)
        if seqs:
            i = bisect_left(seqs, seq)
            if i < len(seqs) and seqs[i] == seq:
                del seqs[i]

    def around(
        self, session: int, seq: int, radius: int, live: Callable[[int], bool] | None
    ) -> tuple[list[int], list[int]]:
        """Seqs of the up to ``radius`` rows of ``session`` for which ``live`` holds (every
        row when None) just before ``seq`` and just after it, each side nearest first."""
        seqs = self._seqs.get(session, [])
        at = bisect_left(seqs, seq)
        if live is None:  # slices: no walk
            past = at + 1 if at < len(seqs) and seqs[at] == seq else at
            return seqs[max(0, at - radius) : at][::-1], seqs[past : past + radius]
        before: list[int] = []
        j = at - 1
        while j >= 0 and len(before) < radius:
            if live(seqs[j]):
                before.append(seqs[j])
            j -= 1
        after: list[int] = []
        j = at + 1 if at < len(seqs) and seqs[at] == seq else at
        while j < len(seqs) and len(after) < radius:
            if live(seqs[j]):
                after.append(seqs[j])
            j += 1
        return before, after
