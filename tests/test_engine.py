"""Behaviour of MemoryEngine over every store backend."""

from __future__ import annotations

import pytest

from memstore.engine import MemoryEngine
from memstore.errors import (
    ConflictError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
)
from memstore.models import MAX_CONTENT_BYTES

A = "acct_a"
B = "acct_b"


def test_recall_returns_the_remembered_memory_first_with_a_score(engine: MemoryEngine):
    engine.remember(A, "Competitor analysis complete: Acme Corp lacks API docs", "alpha")
    engine.remember(A, "The user prefers answers in French", "alpha")
    engine.remember(A, "Banana bread needs very ripe bananas", "alpha")
    found = engine.recall(A, "competitor analysis", "alpha")
    assert found[0]["content"] == "Competitor analysis complete: Acme Corp lacks API docs"
    assert all(0.0 <= m.score <= 1.0 for m in found)
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_near_identical_text_scores_high_and_unrelated_low(engine: MemoryEngine):
    engine.remember(A, "The deployment uses PostgreSQL 16 on three replicas")
    engine.remember(A, "Banana bread needs very ripe bananas")
    found = {
        m.content: m.score
        for m in engine.recall(A, "The deployment uses PostgreSQL 16 on three replicas")
    }
    assert found["The deployment uses PostgreSQL 16 on three replicas"] >= 0.9
    assert found.get("Banana bread needs very ripe bananas", 0.0) < 0.3


def test_min_score_drops_weak_matches(engine: MemoryEngine):
    engine.remember(A, "The deployment uses PostgreSQL 16 on three replicas")
    engine.remember(A, "Banana bread needs very ripe bananas")
    found = engine.recall(A, "PostgreSQL replicas deployment", min_score=0.5)
    assert [m.content for m in found] == ["The deployment uses PostgreSQL 16 on three replicas"]


def test_remembering_identical_content_in_a_session_returns_the_existing_memory(engine):
    first = engine.remember(A, "Acme Corp lacks API docs", "alpha")
    second = engine.remember(A, "Acme Corp lacks API docs", "alpha")
    assert not first.deduplicated and second.deduplicated
    assert second.memory.id == first.memory.id
    assert engine.sessions(A)[0].count == 1


def test_same_content_in_another_session_is_a_separate_memory(engine):
    first = engine.remember(A, "Acme Corp lacks API docs", "alpha")
    other = engine.remember(A, "Acme Corp lacks API docs", "beta")
    assert not other.deduplicated and other.memory.id != first.memory.id


def test_batch_dedups_within_itself(engine):
    results = engine.remember_many(
        A, [{"content": "same"}, {"content": "same"}, {"content": "other"}]
    )
    assert [r.deduplicated for r in results] == [False, True, False]
    assert results[0].memory.id == results[1].memory.id


def test_recall_is_scoped_to_the_given_sessions(engine):
    engine.remember(A, "alpha secret: the launch is on Tuesday", "alpha")
    engine.remember(A, "beta secret: the launch is on Friday", "beta")
    engine.remember(A, "shared note: launches happen weekly")
    assert {m.session for m in engine.recall(A, "launch", "alpha")} == {"alpha"}
    assert {m.session for m in engine.recall(A, "launch")} == {None}
    assert {m.session for m in engine.recall(A, "launch", ["alpha", "beta"])} == {"alpha", "beta"}
    assert {m.session for m in engine.recall(A, "launch", "*")} == {"alpha", "beta", None}
    assert engine.recall(A, "launch", "nobody") == []


def test_accounts_never_see_each_other(engine):
    mine = engine.remember(A, "account A private plan", "s").memory
    assert engine.recall(B, "account A private plan", "*") == []
    assert engine.list(B, "*").memories == []
    assert engine.sessions(B) == []
    with pytest.raises(NotFoundError):
        engine.get(B, mine.id)
    with pytest.raises(NotFoundError):
        engine.update(B, mine.id, content="stolen")
    with pytest.raises(NotFoundError):
        engine.forget(B, mine.id)
    assert engine.forget_session(B, "s") == 0
    assert engine.get(A, mine.id).content == "account A private plan"


def test_ttl_expires_memories(engine, clock):
    short = engine.remember(A, "temporary: the door code is 4711", ttl=60).memory
    assert short.expires_at is not None
    assert engine.recall(A, "door code")[0].id == short.id
    clock.advance(61)
    assert engine.recall(A, "door code") == []
    with pytest.raises(NotFoundError):
        engine.get(A, short.id)
    assert engine.list(A).memories == []
    # An expired twin does not block remembering the same content again.
    again = engine.remember(A, "temporary: the door code is 4711")
    assert not again.deduplicated and again.memory.id != short.id


def test_expired_memories_are_purged_from_disk(engine, clock):
    engine.remember(A, "expiring fact", ttl=1)
    clock.advance(120)
    assert engine.store.purge_expired(A, clock()) == 1


def test_purging_one_account_leaves_the_others_expired_rows_alone(engine, clock):
    engine.remember(A, "expiring fact of A", ttl=1)
    engine.remember(B, "expiring fact of B", ttl=1, session="s")
    clock.advance(120)
    assert engine.store.purge_expired(A, clock()) == 1
    assert engine.store.purge_expired(B, clock(), "other session") == 0
    assert engine.store.purge_expired(B, clock(), "s") == 1


def test_get_update_forget(engine):
    m = engine.remember(A, "The API rate limit is 100 rps", "ops", {"source": "docs"}).memory
    assert engine.get(A, m.id) == m
    updated = engine.update(A, m.id, content="The API rate limit is 200 rps")
    assert updated.content == "The API rate limit is 200 rps"
    assert updated.metadata == {"source": "docs"}
    assert engine.recall(A, "rate limit 200", "ops")[0].content == updated.content
    engine.update(A, m.id, metadata={"source": "slack"})
    assert engine.get(A, m.id).metadata == {"source": "slack"}
    engine.forget(A, m.id)
    with pytest.raises(NotFoundError):
        engine.get(A, m.id)
    assert engine.recall(A, "rate limit", "ops") == []


def test_update_to_content_another_memory_has_is_a_conflict(engine):
    engine.remember(A, "first", "s")
    second = engine.remember(A, "second", "s").memory
    with pytest.raises(ConflictError):
        engine.update(A, second.id, content="first")


def test_update_to_the_content_of_an_expired_memory_succeeds(engine, clock):
    engine.remember(A, "the door code is 4711", session="s", ttl=5)
    other = engine.remember(A, "the door code is 1234", session="s").memory
    clock.advance(10)
    updated = engine.update(A, other.id, content="the door code is 4711")
    assert updated.content == "the door code is 4711"


def test_forget_session_counts_only_live_memories(engine, clock):
    engine.remember(A, "expiring", session="s", ttl=5)
    engine.remember(A, "lasting", session="s")
    clock.advance(10)
    assert engine.forget_session(A, "s") == 1
    assert engine.sessions(A) == []


def test_forget_session_removes_only_that_session(engine):
    engine.remember_many(A, [{"content": f"a{i}", "session": "a"} for i in range(3)])
    engine.remember(A, "b0", "b")
    assert engine.forget_session(A, "a") == 3
    assert [(s.session, s.count) for s in engine.sessions(A)] == [("b", 1)]
    assert engine.recall(A, "a0", "a") == []


def test_list_pages_newest_first_with_a_cursor(engine):
    for i in range(7):
        engine.remember(A, f"note number {i}", "p")
    seen, cursor = [], None
    while True:
        page = engine.list(A, "p", limit=3, cursor=cursor)
        seen += [m.content for m in page.memories]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"note number {i}" for i in reversed(range(7))]


def test_a_batch_is_stored_in_its_own_order(engine):
    """A batch is a conversation or a run's notes: list (newest first) shows it reversed,
    and recall reads each memory after the one before it in the batch."""
    engine.remember(A, "before the batch", "p")
    engine.remember_many(A, [{"content": f"turn {i}", "session": "p"} for i in range(4)])
    engine.remember(A, "after the batch", "p")
    listed = [m.content for m in engine.list(A, "p").memories]
    assert listed == ["after the batch", "turn 3", "turn 2", "turn 1", "turn 0", "before the batch"]


def test_metadata_filters_narrow_recall(engine):
    engine.remember(A, "the meeting is at noon", metadata={"kind": "calendar", "priority": 1})
    engine.remember(A, "the meeting notes are in the wiki", metadata={"kind": "docs"})
    found = engine.recall(A, "meeting", filters={"kind": "docs"})
    assert [m.content for m in found] == ["the meeting notes are in the wiki"]
    assert [m.content for m in engine.recall(A, "meeting", filters={"priority": 1})] == [
        "the meeting is at noon"
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * (MAX_CONTENT_BYTES + 1)},
        {"content": "é" * (MAX_CONTENT_BYTES // 2 + 1)},
        {"content": 42},
        {"content": "ok", "ttl": 0},
        {"content": "ok", "ttl": -5},
        {"content": "ok", "ttl": "soon"},
        {"content": "ok", "session": ""},
        {"content": "ok", "session": "*"},
        {"content": "ok", "session": "x" * 257},
        {"content": "ok", "metadata": {"nested": {"a": 1}}},
        {"content": "ok", "metadata": ["not", "an", "object"]},
        {"content": "ok", "metadata": {"bad key!": 1}},
        {"content": "ok", "metadata": {"n": float("nan")}},
    ],
)
def test_bad_remember_input_raises_validation_error(engine, kwargs):
    with pytest.raises(ValidationError):
        engine.remember(A, **kwargs)
    assert engine.sessions(A) == []


def test_content_at_the_size_limit_is_accepted(engine):
    assert engine.remember(A, "x" * MAX_CONTENT_BYTES).memory.content


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query": ""},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": 10**6},
        {"query": "x", "limit": "5"},
        {"query": "x", "min_score": 1.5},
        {"query": "x", "session": []},
        {"query": "x", "filters": {"a": {"$gt": 1}}},
    ],
)
def test_bad_recall_input_raises_validation_error(engine, kwargs):
    with pytest.raises(ValidationError):
        engine.recall(A, **kwargs)


@pytest.mark.parametrize("query", ['"', "*", "NEAR(", "--", "'", "a OR b AND", "🙂", "مرحبا"])
def test_query_syntax_characters_are_plain_text(engine, query):
    engine.remember(A, "plain memory with 🙂 and مرحبا")
    engine.remember(B, "another account's memory with 🙂 and مرحبا")
    found = engine.recall(A, query)
    assert [m.content for m in found] == ["plain memory with 🙂 and مرحبا"]
    assert 0.0 <= found[0].score <= 1.0


def test_unknown_ids_raise_not_found(engine):
    for call in (
        lambda: engine.get(A, "mem_missing"),
        lambda: engine.update(A, "mem_missing", content="x"),
        lambda: engine.forget(A, "mem_missing"),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_bad_cursor_is_a_validation_error(engine):
    with pytest.raises(ValidationError):
        engine.list(A, cursor="not-a-cursor!")


def test_free_plan_stops_at_its_monthly_cap(engine):
    engine.ensure_account("free_acct", plan="free")
    engine.remember_many("free_acct", [{"content": f"n{i}"} for i in range(100)])
    for _ in range(9):
        engine.remember_many("free_acct", [{"content": "same"}] * 100)
    assert engine.usage("free_acct").ops_remaining == 0
    with pytest.raises(QuotaExceededError) as err:
        engine.recall("free_acct", "anything")
    assert err.value.retry_after and err.value.retry_after > 0
    assert engine.usage("free_acct").ops_used == 1000
