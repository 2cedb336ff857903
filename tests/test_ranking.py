"""Recall ranking: what comes first, how it is scored, and the fusion function itself."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from memstore.ranking import (
    CONTEXT_WINDOW,
    Context,
    context_cosines,
    fuse,
    keyword_terms,
    query_periods,
    rrf,
    shown_score,
    spread,
    term_coverage,
)

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


# -- context: memories stored one after another in a session are read together

CHAT = [
    "Maria: Have you tried the new ramen place on 5th street yet?",
    "John: Not yet. I made coconut milk ice cream at home yesterday though.",
    "Maria: Oh nice, how did it turn out?",
    "John: Honestly? Best thing I have made all year, rich and creamy.",
    "Maria: I adopted a kitten last week, she is called Pepper.",
    "John: What do you think of the name? I think Pepper suits a black cat.",
    "Maria: Work is busy, we now deploy on Tuesdays after the standup.",
    "John: I think I will finally repaint the garage this weekend.",
]


def test_the_reply_to_a_matching_question_is_recalled_with_it(engine):
    engine.remember_many("acct_a", [{"content": c, "session": "chat"} for c in CHAT])
    hits = engine.recall(
        "acct_a", "What did John think of the coconut milk ice cream?", session="chat", limit=2
    )
    assert {h.content for h in hits} == {CHAT[1], CHAT[3]}


def test_context_stays_inside_its_session_and_time_window(engine, clock):
    engine.remember("acct_a", "Maria: what did you think of the coconut ice cream?", "one")
    engine.remember("acct_a", "John: the deploy finished without errors", "two")
    clock.now += CONTEXT_WINDOW + 1
    engine.remember("acct_a", "John: the kitten chewed my headphones", "one")
    hits = engine.recall("acct_a", "coconut ice cream", session=["one", "two"], limit=3)
    lifted = engine.store.neighbors("acct_a", [hits[0].id], 2, CONTEXT_WINDOW, clock.now, None)
    assert hits[0].content.startswith("Maria")
    assert lifted == {}  # the next memory of "one" came too late; "two" is another session


def test_a_memory_stored_after_a_match_does_not_borrow_its_score(engine):
    engine.remember_many(
        "acct_a",
        [
            {"content": "The deployment uses PostgreSQL 16 on three replicas", "session": "s"},
            {"content": "Banana bread needs very ripe bananas", "session": "s"},
        ],
    )
    hits = engine.recall("acct_a", "PostgreSQL replicas deployment", session="s")
    assert [h.content for h in hits][0].startswith("The deployment")
    assert hits[1].score < 0.3
    assert [
        h.content
        for h in engine.recall(
            "acct_a", "PostgreSQL replicas deployment", session="s", min_score=0.5
        )
    ] == ["The deployment uses PostgreSQL 16 on three replicas"]


def test_context_walks_the_neighbour_lists():
    context = Context({"c": {-2: "a", -1: "b", 1: "d"}, "d": {1: "e", 2: "f"}})
    assert context.before == {"b": "a", "c": "b", "d": "c", "e": "d", "f": "e"}
    assert dict(context.around["c"]) == {-2: "a", -1: "b", 1: "d", 2: "e"}
    assert dict(context.around["a"]) == {1: "b", 2: "c"}


def test_context_with_a_gap_does_not_link_across_it():
    context = Context({"c": {-2: "a", 1: "d"}})  # -1 missing: a is not c's previous
    assert "c" not in context.before and context.before == {"d": "c"}


def test_spread_gives_nearer_neighbours_more():
    context = Context({"q": {-2: "far before", -1: "before", 1: "after", 2: "far after"}})
    lifted = spread({"q": 1.0}, context)
    assert lifted["q"] == 1.0
    assert lifted["after"] == lifted["before"] > lifted["far after"] == lifted["far before"] > 0


def test_context_cosines_blend_in_the_previous_memory():
    question, reply, other = np.eye(3, dtype=np.float32)
    vectors = {"question": question, "reply": reply, "other": other}
    query = question
    alone = dict(context_cosines(query, vectors, Context()))
    blended = dict(context_cosines(query, vectors, Context({"reply": {-1: "question"}})))
    assert alone["reply"] == 0.0
    assert blended["reply"] > 0.4
    assert blended["question"] == alone["question"] == 1.0
    assert blended["other"] == 0.0


def test_fuse_with_context_scores_never_increase_and_stay_own():
    dense = [("q", 0.93), ("x", 0.85), ("r", 0.75)]
    context = Context({"q": {1: "r"}})
    out = fuse(dense, [], context=context, cosines=dict(dense))
    assert [mid for mid, _ in out][:2] == ["q", "r"]
    scores = [s for _, s in out]
    assert scores == sorted(scores, reverse=True)
    assert dict(out)["r"] == round(shown_score(0.85), 4)  # at least the score below it


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
    ("cosine", "coverage", "low", "high"),
    [
        (0.96, 1.0, 0.99, 1.0),  # identical text
        (0.83, 1.0, 0.85, 0.95),  # the memory's own words, middling similarity
        (0.86, 0.0, 0.5, 0.7),  # a paraphrase
        (0.86, 0.5, 0.55, 0.75),  # a paraphrase sharing half the words
        (0.80, 0.0, 0.0, 0.0),  # unrelated
        (None, 1.0, 0.85, 0.85),  # words alone
        (0.5, 0.0, 0.0, 0.0),
    ],
)
def test_shown_score(cosine, coverage, low, high):
    assert low <= shown_score(cosine, coverage) <= high


@pytest.mark.parametrize(
    ("terms", "content", "expected"),
    [
        (["camping", "mountains"], "We took the kids camping in the mountains", 1.0),
        (["camp", "mountain"], "We went camping in the mountains", 1.0),
        (["vendors", "deployment"], "one vendor offers on-premise deploys", 1.0),
        (["competitor", "analysis"], "Competitor analysis complete", 1.0),
        (["tea", "coffee"], "Maria prefers tea in the morning", 0.5),
        (["orchid"], "Maria prefers tea in the morning", 0.0),
        ([], "anything", 0.0),
    ],
)
def test_term_coverage_compares_stems(terms, content, expected):
    assert term_coverage(terms, content) == expected


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


def test_min_score_judges_each_memory_by_its_own_score_before_the_limit():
    dense = [("q", 0.93), ("x", 0.85), ("r", 0.75)]
    context = Context({"q": {1: "r"}})
    assert [mid for mid, _ in fuse(dense, [], context=context, limit=2)] == ["q", "r"]
    kept = fuse(dense, [], context=context, limit=2, min_score=0.5)
    assert [mid for mid, _ in kept] == ["q", "x"]  # r ranks second for its context only
    assert all(score >= 0.5 for _, score in kept)


def test_a_memory_lifted_by_a_named_month_shows_its_own_similarity(engine, embedder, clock):
    """May's notes rank outside the 50 candidates read in context (August's are closer),
    then the period list lifts them: they are scored by their real cosine, not as if
    only their keywords matched."""
    clock.now = datetime(2023, 5, 10, tzinfo=UTC).timestamp()
    may = [f"Note {i}: cleaned the hiking boots after the walk" for i in range(5)]
    engine.remember_many(
        "acct_a", [{"content": c, "session": f"may-{i}"} for i, c in enumerate(may)]
    )
    clock.now = datetime(2023, 8, 10, tzinfo=UTC).timestamp()
    august = [
        f"Hiking trip {i}: we went hiking on the ridge trail, great hiking" for i in range(60)
    ]
    engine.remember_many(
        "acct_a", [{"content": c, "session": f"aug-{i}"} for i, c in enumerate(august)]
    )
    query = "hiking in May 2023"
    hits = engine.recall("acct_a", query, session="*", limit=10)
    assert set(may) & {h.content for h in hits}
    q = embedder.embed_query(query)
    for hit, vector in zip(hits, embedder.embed_documents([h.content for h in hits]), strict=True):
        own = round(shown_score(float(np.dot(vector, q))), 4)
        assert hit.score >= own - 1e-4, (hit.content, hit.score, own)


def test_word_coverage_reads_rows_down_the_list_only_as_far_as_scoring_goes(engine, clock):
    from memstore.recall import RecallQuery, WordCoverage

    remember_all(engine)
    listed = engine.list("acct_a", session="s").memories
    order = [m.id for m in listed]
    by_id = {m.id: m.content for m in listed}
    q = RecallQuery("acct_a", "tea coffee", ["s"], 1, 0.5, None, clock())
    words = WordCoverage(engine.store, q, order)
    words(order[0])
    assert set(words.rows) == {order[0]}  # limit 1: one row read
    assert words(order[-1]) == (1.0 if "tea" in by_id[order[-1]] else 0.0)
    assert set(words.rows) == set(order)
    assert words("mem_not_there") == 0.0
