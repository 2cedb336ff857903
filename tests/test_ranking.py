"""Recall ranking: what comes first, how it is scored, and the fusion function itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memstore.ranking import fuse, keyword_terms, query_periods, rrf, shown_score

FACTS = [
    "Competitor analysis complete: Acme Corp lacks API docs",
    "The quarterly offsite is booked at the lake house in Oregon",
    "Maria prefers tea over coffee in the morning",
    "Deploys to production happen on Tuesdays after the standup",
    "The cat's name is Biscuit and she is afraid of the vacuum",
]


def remember_all(engine, session="s", facts=FACTS) -> None:
    engine.remember_many("acct_a", [{"content": f, "session": session} for f in facts])


def test_exact_match_comes_first_and_scores_high(engine):
    remember_all(engine)
    hits = engine.recall("acct_a", FACTS[0], session="s")
    assert hits[0].content == FACTS[0]
    assert hits[0].score >= 0.9


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("competitor analysis", FACTS[0]),
        ("what does Maria like to drink?", FACTS[2]),
        ("when do we deploy to production", FACTS[3]),
        ("Biscuit", FACTS[4]),
    ],
)
def test_the_relevant_memory_beats_the_unrelated_ones(engine, query, expected):
    remember_all(engine)
    hits = engine.recall("acct_a", query, session="s")
    assert hits[0].content == expected
    assert hits[0].score > hits[-1].score


def test_sharing_a_word_does_not_beat_sharing_the_meaning(engine):
    engine.remember_many(
        "acct_a",
        [
            {"content": "The bank approved our loan for the new warehouse", "session": "s"},
            {"content": "We had a picnic on the river bank on Sunday", "session": "s"},
        ],
    )
    hits = engine.recall("acct_a", "did the lender approve the financing?", session="s")
    assert hits[0].content.startswith("The bank approved")


def test_recall_only_searches_the_given_session(engine):
    remember_all(engine, session="mine")
    engine.remember(
        "acct_a", "Competitor analysis: Acme Corp lacks API docs (other team)", "theirs"
    )
    engine.remember("acct_b", "Competitor analysis complete: Acme Corp lacks API docs", "mine")
    hits = engine.recall("acct_a", "competitor analysis", session="mine", limit=10)
    assert {h.session for h in hits} == {"mine"}
    assert len(hits) == len(FACTS)


def test_min_score_drops_unrelated_memories(engine):
    remember_all(engine)
    hits = engine.recall("acct_a", FACTS[0], session="s", min_score=0.5, limit=10)
    assert [h.content for h in hits] == [FACTS[0]]


def test_min_score_above_every_score_returns_nothing(engine):
    remember_all(engine)
    assert (
        engine.recall("acct_a", "quantum chromodynamics lecture", session="s", min_score=0.9) == []
    )


@pytest.mark.parametrize("query", [FACTS[1], "offsite", "zebra migration patterns", "tea"])
def test_scores_are_in_bounds_and_never_increase(engine, query):
    remember_all(engine)
    scores = [h.score for h in engine.recall("acct_a", query, session="s", limit=10)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_unrelated_text_scores_low(engine):
    remember_all(engine)
    hits = engine.recall("acct_a", "the mitochondria is the powerhouse of the cell", session="s")
    assert max(h.score for h in hits) < 0.5


def test_a_named_month_lifts_memories_created_in_it(engine, clock):
    clock.now = datetime(2023, 5, 10, tzinfo=UTC).timestamp()
    engine.remember("acct_a", "Went hiking with the team", "s")
    clock.now = datetime(2023, 8, 10, tzinfo=UTC).timestamp()
    engine.remember("acct_a", "Went hiking with the family", "s")
    hits = engine.recall("acct_a", "where did I go hiking in May 2023?", session="s")
    assert hits[0].content == "Went hiking with the team"


# -- the fusion function


def test_rrf_uses_positions_not_scores():
    a = rrf([[("x", 1000.0), ("y", 999.0)], [("y", 0.2), ("x", 0.1)]], [1.0, 1.0])
    b = rrf([[("x", 0.9), ("y", 0.1)], [("y", 7.0), ("x", 0.0)]], [1.0, 1.0])
    assert a == b
    assert a["x"] == a["y"]


def test_rrf_weights_decide_ties_between_lists():
    fused = rrf([[("d", 0.9)], [("k", 5.0)]], [0.7, 1.0])
    assert fused["k"] > fused["d"]


def test_fuse_puts_a_memory_found_by_both_lists_first():
    dense = [("a", 0.90), ("b", 0.88), ("c", 0.80)]
    keyword = [("d", 9.0), ("b", 4.0), ("c", 1.0)]
    ids = [mid for mid, _ in fuse(dense, keyword)]
    assert ids[0] == "b"
    assert set(ids) == {"a", "b", "c", "d"}


def test_fuse_scores_are_bounded_and_non_increasing():
    dense = [("a", 0.99), ("b", 0.70), ("c", 0.85)]
    keyword = [("b", 3.0), ("a", 1.0)]
    scores = [s for _, s in fuse(dense, keyword)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_fuse_of_nothing_is_nothing():
    assert fuse([], []) == []


def test_fuse_ranks_the_period_list_in():
    dense = [("a", 0.9), ("b", 0.89)]
    keyword = [("a", 2.0), ("b", 1.9)]
    assert fuse(dense, keyword, in_period=["b"])[0][0] == "b"


@pytest.mark.parametrize(
    ("cosine", "keyword_rank", "low", "high"),
    [(0.96, 0, 0.99, 1.0), (0.75, None, 0.0, 0.1), (None, 0, 0.1, 0.2), (0.5, None, 0.0, 0.0)],
)
def test_shown_score(cosine, keyword_rank, low, high):
    assert low <= shown_score(cosine, keyword_rank) <= high


def test_keyword_terms_drop_stopwords_and_repeats():
    assert keyword_terms("What did the cat do to the cat toy?") == ["cat", "toy"]
    assert keyword_terms("who is it") == ["who", "is", "it"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Who came to the party in June 2022?", [(2022, 6, 2022, 7)]),
        ("what happened on December 3, 2023", [(2023, 12, 2024, 1)]),
        ("what did we ship in 2021", [(2021, 1, 2022, 1)]),
        ("how do you do", []),
    ],
)
def test_query_periods(query, expected):
    def ts(y, m):
        return datetime(y, m, 1, tzinfo=UTC).timestamp()

    assert query_periods(query) == [(ts(a, b), ts(c, d)) for a, b, c, d in expected]


def test_fuse_limit_keeps_the_best():
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
    assert fuse(dense, [], limit=2) == fuse(dense, [])[:2]
