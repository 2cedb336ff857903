"""The shown score means the same thing everywhere: graded (query, memory) pairs over a store
of agent run summaries, user facts and conversation turns, on the real e5 model.

Grades (tests/graded_scores.py): identical text >= 0.95; the memory's own words >= 0.85;
a paraphrase in between; an unrelated query's best hit <= 0.25, in a full store and in a
store holding one memory.
"""

from __future__ import annotations

import statistics

import pytest

from tests.graded_scores import CASES, MEMORIES


def remember_graded(engine, session: str = "graded") -> None:
    engine.remember_many("acct_a", [{"content": m, "session": session} for m in MEMORIES])


def score_of(engine, query: str, target: str | None, session: str = "graded") -> float:
    """The score recall shows for ``target`` (None: the best hit), 0 when it is not in the top 10."""
    hits = engine.recall("acct_a", query, session=session, limit=10)
    if target is None:
        return hits[0].score if hits else 0.0
    return next((h.score for h in hits if h.content == target), 0.0)


def graded_scores(engine) -> dict[str, list[float]]:
    remember_graded(engine)
    by_grade: dict[str, list[float]] = {"identical": [], "own": [], "paraphrase": []}
    by_grade |= {"topical": [], "unrelated": []}
    for memory in MEMORIES:
        by_grade["identical"].append(score_of(engine, memory, memory))
    for grade, index, query in CASES:
        by_grade[grade].append(score_of(engine, query, None if index is None else MEMORIES[index]))
    return by_grade


_GRADED: dict[str, dict[str, list[float]]] = {}  # per store backend: the set is measured once


@pytest.fixture
def graded(engine) -> dict[str, list[float]]:
    backend = type(engine.store).__name__
    if backend in _GRADED:
        return _GRADED[backend]
    scores = _GRADED[backend] = graded_scores(engine)
    for grade, values in scores.items():  # the figures, shown with -s
        print(
            f"{grade:<11} n={len(values):<3} min {min(values):.3f} "
            f"median {statistics.median(values):.3f} max {max(values):.3f}"
        )
    return scores


def test_identical_text_scores_at_least_095(graded):
    assert min(graded["identical"]) >= 0.95


def test_a_query_of_the_memorys_own_words_scores_at_least_085(graded):
    assert min(graded["own"]) >= 0.85


def test_a_paraphrase_sits_between_unrelated_and_own_words(graded):
    paraphrase = graded["paraphrase"]
    assert 0.4 <= statistics.median(paraphrase) <= 0.8
    assert max(paraphrase) < 0.85
    assert sum(s > max(graded["unrelated"]) for s in paraphrase) >= 0.75 * len(paraphrase)


def test_topical_queries_score_below_own_words(graded):
    assert max(graded["topical"]) < min(graded["own"])


def test_an_unrelated_querys_best_hit_scores_at_most_025(graded):
    assert max(graded["unrelated"]) <= 0.25


def test_an_unrelated_query_scores_low_in_a_store_of_one_memory(engine):
    """Each memory alone in its session: no rank or neighbour can lift an unrelated hit."""
    engine.remember_many(
        "acct_a", [{"content": m, "session": f"alone-{i}"} for i, m in enumerate(MEMORIES)]
    )
    unrelated = [query for grade, _, query in CASES if grade == "unrelated"]
    worst = max(
        (score_of(engine, query, None, session=f"alone-{i}"), query, memory)
        for i, memory in enumerate(MEMORIES)
        for query in unrelated
    )
    assert worst[0] <= 0.25, worst


def test_the_seed_example_scores_high_in_any_store(engine):
    seed = "Competitor analysis complete: Acme Corp lacks API docs"
    engine.remember("acct_a", seed, "alone")
    alone = score_of(engine, "competitor analysis", seed, session="alone")
    remember_graded(engine)
    among_others = score_of(engine, "competitor analysis", seed)
    assert alone == among_others >= 0.85
    hits = engine.recall("acct_a", "competitor analysis", session="graded", min_score=0.8)
    assert [h.content for h in hits] == [seed]
