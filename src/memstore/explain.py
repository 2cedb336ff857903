"""Why a memory came back: the parts of its rank, read from what recall's stages computed.

Nothing is searched or embedded again: the cosines, the keyword list, the fused relevance
before spreading, the context and the query's periods are recall's own; only the matched
terms are found by reading the returned memories' text (a handful). See
docs/memory-over-time.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from memstore.models import RecallPeriod, RecallWhy, to_datetime
from memstore.ranking import SPREAD, Context
from memstore.stores.base import MemoryRow

_WORD = re.compile(r"\w+", re.UNICODE)
STEM_MIN = 4  # a word and a term sharing this many first letters count as one (porter stems)


@dataclass
class Trace:
    """What recall's stages found, kept for explaining its results (None when explain is off)."""

    terms: list[str]
    cosines: Mapping[str, float] = field(default_factory=dict)
    keyword: list[tuple[str, float]] = field(default_factory=list)
    fused: Mapping[str, float] = field(default_factory=dict)
    context: Context = field(default_factory=Context)
    periods: list[tuple[float, float]] = field(default_factory=list)

    def why(self, row: MemoryRow, similar_ids: list[str]) -> RecallWhy:
        """The parts of one returned memory's rank (``similar_ids``: the versions collapsed
        into it, which are not named as its neighbour)."""
        mid = row.id
        ranks = {m: r for r, (m, _) in enumerate(self.keyword, start=1)}
        cosine = self.cosines.get(mid)
        return RecallWhy(
            cosine=None if cosine is None else round(float(cosine), 4),
            keywords=matched_terms(self.terms, row.content) if mid in ranks else [],
            keyword_rank=ranks.get(mid),
            neighbor_of=self._neighbor_of(mid, set(similar_ids)),
            period=next(
                (
                    RecallPeriod(start=to_datetime(start), end=to_datetime(end))
                    for start, end in self.periods
                    if start <= row.created_at < end
                ),
                None,
            ),
            similar=len(similar_ids),
        )

    def _neighbor_of(self, mid: str, versions: set[str]) -> str | None:
        """The neighbour that passed ``mid`` the largest share of relevance, when that
        neighbour matched the query better than ``mid`` did on its own."""
        shares = [
            (SPREAD[abs(offset)] * self.fused.get(other, 0.0), other)
            for offset, other in self.context.around.get(mid, ())
            if other not in versions
        ]
        if not shares:
            return None
        share, other = max(shares)
        return (
            other if share > 0 and self.fused.get(other, 0.0) > self.fused.get(mid, 0.0) else None
        )


def matched_terms(terms: list[str], content: str) -> list[str]:
    """The query terms found in ``content``: the word itself or one sharing its stem."""
    words = {w.lower() for w in _WORD.findall(content)}
    return [t for t in terms if t in words or any(_same_stem(t, w) for w in words)]


def _same_stem(term: str, word: str) -> bool:
    shorter = min(len(term), len(word))
    if shorter < STEM_MIN:
        return False
    common = STEM_MIN if shorter <= STEM_MIN + 1 else shorter - 2
    return term[:common] == word[:common]
