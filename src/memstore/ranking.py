"""Hybrid ranking: fuse dense (embedding) and keyword (BM25) results into one list.

Order comes from reciprocal-rank fusion of the two lists, which is robust to their very
different score scales. The score shown to users is made separately so that it means
the same thing in every query: a calibrated cosine similarity (near-identical text ->
about 1, unrelated text -> near 0), raised a little when the memory also shares the
query's rarer words. See docs/ranking.md.
"""

from __future__ import annotations

import re

# Cosine similarities of e5-small between a query and a passage live in a narrow band:
# unrelated text sits near 0.75, a paraphrase near 0.85, the same text near 0.95.
COSINE_FLOOR = 0.74
COSINE_CEILING = 0.93
RRF_K = 60
KEYWORD_BOOST = 0.15

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)

_WORD = re.compile(r"\w+", re.UNICODE)


def keyword_terms(query: str, limit: int = 32) -> list[str]:
    """The query's searchable words: lower-cased, stopwords dropped, order kept, unique."""
    words = [w.lower() for w in _WORD.findall(query)]
    terms = [w for w in dict.fromkeys(words) if w not in STOPWORDS]
    return (terms or list(dict.fromkeys(words)))[:limit]


def calibrate_cosine(cosine: float) -> float:
    """Map a raw cosine similarity onto [0, 1] so that thresholds mean something."""
    return min(1.0, max(0.0, (cosine - COSINE_FLOOR) / (COSINE_CEILING - COSINE_FLOOR)))


def fuse(
    dense: list[tuple[str, float]],
    keyword: list[tuple[str, float]],
    *,
    dense_weight: float = 1.0,
    keyword_weight: float = 1.0,
) -> list[tuple[str, float]]:
    """Merge two best-first (id, raw score) lists into (id, score in [0, 1]), best first."""
    rrf: dict[str, float] = {}
    for weight, results in ((dense_weight, dense), (keyword_weight, keyword)):
        for rank, (memory_id, _) in enumerate(results):
            rrf[memory_id] = rrf.get(memory_id, 0.0) + weight / (RRF_K + rank + 1)

    cosines = dict(dense)
    top_keyword = keyword[0][1] if keyword else 0.0
    keyword_scores = {mid: s / top_keyword for mid, s in keyword} if top_keyword > 0 else {}

    def shown_score(memory_id: str) -> float:
        base = calibrate_cosine(cosines.get(memory_id, COSINE_FLOOR))
        bonus = KEYWORD_BOOST * keyword_scores.get(memory_id, 0.0)
        return min(1.0, base + bonus * (1.0 - base))

    ordered = sorted(rrf, key=lambda mid: rrf[mid], reverse=True)
    fused, ceiling = [], 1.0
    for mid in ordered:
        # Keep scores non-increasing down the list, so "best first" holds for the score too.
        ceiling = min(ceiling, shown_score(mid))
        fused.append((mid, round(ceiling, 4)))
    return fused
