"""Superseding, invalidation, as_of, on_similar and hygiene figures, on every store backend
(docs/memory-over-time.md)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from memstore.engine import MemoryEngine
from memstore.errors import NotFoundError, ValidationError
from memstore.hygiene import HITS_FLUSH_SECONDS
from memstore.transfer import export_jsonl, import_jsonl

A = "acct_a"
B = "acct_b"
OLD = "Acme Corp lacks API docs"
NEW = "Acme Corp shipped API docs in March"
RUN = "Crew run (topic: {topic}): researched competitors; result: Acme leads on pricing, run {n}"


def contents(memories) -> list[str]:
    return [m.content for m in memories]


def test_a_superseded_memory_leaves_recall_but_stays_with_its_status(engine: MemoryEngine, clock):
    old = engine.remember(A, OLD, "alpha").memory
    clock.advance(10)
    new = engine.remember(A, NEW, "alpha", supersedes=[old.id]).memory
    assert contents(engine.recall(A, "Acme API docs", "alpha")) == [NEW]
    every = {m.id: m for m in engine.recall(A, "Acme API docs", "alpha", include_superseded=True)}
    assert every[old.id].superseded_by == new.id
    assert every[old.id].superseded_at is not None
    assert every[old.id].superseded_at.timestamp() == pytest.approx(clock.now)
    assert every[new.id].superseded_at is None and every[new.id].superseded_by is None
    assert engine.get(A, old.id).superseded_by == new.id


@pytest.mark.parametrize("whose", ["unknown", "other account"])
def test_superseding_an_id_not_in_the_account_is_not_found_and_stores_nothing(engine, whose):
    foreign = engine.remember(B, OLD, "alpha").memory.id
    target = "mem_000000000000000000000000" if whose == "unknown" else foreign
    with pytest.raises(NotFoundError):
        engine.remember(A, NEW, "alpha", supersedes=[target])
    assert engine.list(A, "*", include_superseded=True).memories == []
    assert engine.get(B, foreign).superseded_at is None


def test_superseding_across_sessions_of_one_account_is_allowed(engine):
    old = engine.remember(A, OLD, "alpha").memory
    engine.remember(A, NEW, "beta", supersedes=[old.id])
    assert contents(engine.recall(A, "Acme API docs", "*")) == [NEW]


def test_invalidate_is_idempotent_and_keeps_the_first_time(engine: MemoryEngine, clock):
    old = engine.remember(A, OLD, "alpha").memory
    first = engine.invalidate(A, old.id)
    clock.advance(60)
    again = engine.invalidate(A, old.id)
    assert first.superseded_at == again.superseded_at is not None
    assert again.superseded_by is None
    assert engine.recall(A, "Acme API docs", "alpha") == []
    with pytest.raises(NotFoundError):
        engine.invalidate(B, old.id)


def test_as_of_answers_what_was_current_then(engine: MemoryEngine, clock):
    start = clock.now
    old = engine.remember(A, OLD, "alpha").memory
    clock.advance(100)
    engine.remember(A, NEW, "alpha", supersedes=[old.id])
    clock.advance(100)
    assert contents(engine.recall(A, "Acme API docs", "alpha", as_of=start + 50)) == [OLD]
    assert contents(engine.recall(A, "Acme API docs", "alpha", as_of=start + 150)) == [NEW]
    assert engine.recall(A, "Acme API docs", "alpha", as_of=start - 1) == []
    iso = (engine.get(A, old.id).created_at + timedelta(seconds=1)).isoformat()
    assert contents(engine.list(A, "alpha", as_of=iso).memories) == [OLD]


@pytest.mark.parametrize(
    "bad", ["yesterday", "", "1e400", "-5", 10**30, float("nan"), True, "\ud800", [1], "x" * 100]
)
def test_a_bad_as_of_is_a_validation_error(engine, bad):
    with pytest.raises(ValidationError):
        engine.recall(A, "Acme", as_of=bad)


def test_include_superseded_and_as_of_together_are_refused(engine):
    with pytest.raises(ValidationError):
        engine.list(A, include_superseded=True, as_of=0)


def test_list_pages_current_memories_only_unless_asked(engine: MemoryEngine):
    ids = [engine.remember(A, f"fact number {i}", "alpha").memory.id for i in range(6)]
    for mid in ids[::2]:
        engine.invalidate(A, mid)
    first = engine.list(A, "alpha", limit=2)
    second = engine.list(A, "alpha", limit=2, cursor=first.next_cursor)
    assert [m.id for m in first.memories + second.memories] == [ids[5], ids[3], ids[1]]
    assert second.next_cursor is None
    assert len(engine.list(A, "alpha", include_superseded=True).memories) == 6


def test_remembering_a_superseded_memory_again_makes_it_current(engine):
    old = engine.remember(A, OLD, "alpha").memory
    engine.invalidate(A, old.id)
    again = engine.remember(A, OLD, "alpha")
    assert again.deduplicated and again.memory.id == old.id
    assert again.memory.superseded_at is None
    assert contents(engine.recall(A, "Acme API docs", "alpha")) == [OLD]


def test_on_similar_supersede_keeps_one_current_run_summary(engine: MemoryEngine, clock):
    fact = engine.remember(A, "The customer prefers weekly reports in French", "proj").memory
    other = engine.remember(A, RUN.format(topic="pricing", n=1), "other-proj").memory
    runs = []
    for n in range(1, 4):
        clock.advance(60)
        text = RUN.format(topic="pricing", n=n)
        runs.append(engine.remember(A, text, "proj", on_similar="supersede").memory)
    current = engine.list(A, "proj").memories
    assert {m.id for m in current} == {runs[-1].id, fact.id}
    assert engine.get(A, runs[0].id).superseded_by == runs[1].id
    assert engine.get(A, runs[1].id).superseded_by == runs[2].id
    assert engine.get(A, other.id).superseded_at is None  # another session is untouched


def test_on_similar_skip_returns_the_current_twin(engine):
    first = engine.remember(A, RUN.format(topic="pricing", n=1), "proj").memory
    skipped = engine.remember(A, RUN.format(topic="pricing", n=2), "proj", on_similar="skip")
    assert skipped.deduplicated and skipped.memory.id == first.id
    assert len(engine.list(A, "proj").memories) == 1


def test_on_similar_keep_is_the_default(engine):
    engine.remember(A, RUN.format(topic="pricing", n=1), "proj")
    engine.remember(A, RUN.format(topic="pricing", n=2), "proj")
    assert len(engine.list(A, "proj").memories) == 2


@pytest.mark.parametrize("bad", ["replace", 1, ["supersede"]])
def test_a_bad_on_similar_is_a_validation_error(engine, bad):
    with pytest.raises(ValidationError):
        engine.remember(A, OLD, on_similar=bad)


def test_stats_count_current_superseded_purged_near_duplicates_and_never_recalled(
    engine: MemoryEngine, clock
):
    old = engine.remember(A, OLD, "alpha").memory
    engine.remember(A, NEW, "alpha", supersedes=[old.id])
    engine.remember(A, RUN.format(topic="pricing", n=1), "runs")
    engine.remember(A, RUN.format(topic="pricing", n=2), "runs")
    engine.remember(A, "Bananas ripen faster in a paper bag", "runs", ttl=5)
    engine.remember(B, "B's secret plan", "alpha")
    engine.recall(A, "Acme API docs", "alpha")
    clock.advance(120)
    engine.remember(A, "trigger the purge", "other")  # purges the expired memory
    stats = engine.stats(A)
    by = {s.session: s for s in stats.sessions}
    assert (by["alpha"].memories, by["alpha"].current, by["alpha"].superseded) == (2, 1, 1)
    assert by["alpha"].never_recalled == 1  # NEW was returned; the superseded OLD was not
    assert by["runs"].expired_purged == 1 and by["runs"].memories == 2
    assert by["runs"].near_duplicate_groups == 1 and by["alpha"].near_duplicate_groups == 0
    assert (stats.memories, stats.current, stats.superseded) == (5, 4, 1)
    assert stats.expired_purged == 1 and stats.near_duplicates_complete
    b = engine.stats(B)
    assert (b.memories, b.superseded, b.expired_purged, b.never_recalled) == (1, 0, 0, 1)
    only = engine.stats(A, "runs")
    assert [s.session for s in only.sessions] == ["runs"] and only.memories == 2


def test_recall_hits_are_written_in_batches_not_per_recall(engine: MemoryEngine, clock):
    engine.remember(A, OLD, "alpha")
    engine.recall(A, "Acme API docs", "alpha")
    (counts,) = engine.store.session_counts(A, "alpha", clock.now)
    assert counts.never_recalled == 1  # counted in memory, not written yet
    clock.advance(HITS_FLUSH_SECONDS + 1)
    engine.recall(A, "Acme API docs", "alpha")
    (counts,) = engine.store.session_counts(A, "alpha", clock.now)
    assert counts.never_recalled == 0


def test_export_and_import_carry_supersession(engine: MemoryEngine, clock):
    old = engine.remember(A, OLD, "alpha").memory
    engine.remember(A, NEW, "alpha", supersedes=[old.id])
    gone = engine.remember(A, "An invalidated fact", "alpha").memory
    engine.invalidate(A, gone.id)
    out = io.StringIO()
    assert export_jsonl(engine, A, out) == 3
    imported, _, _ = import_jsonl(engine, B, io.StringIO(out.getvalue()))
    assert imported == 3
    every = {m.content: m for m in engine.list(B, "alpha", include_superseded=True).memories}
    assert every[OLD].superseded_by == every[NEW].id
    assert every[OLD].superseded_at == engine.get(A, old.id).superseded_at
    assert every["An invalidated fact"].superseded_at is not None
    assert every["An invalidated fact"].superseded_by is None
    assert contents(engine.list(B, "alpha").memories) == [NEW]


def test_an_old_export_without_the_fields_still_imports(engine):
    line = {"content": OLD, "session": "alpha", "created_at": "2026-01-01T00:00:00Z"}
    imported, _, _ = import_jsonl(engine, A, io.StringIO(json.dumps(line) + "\n"))
    assert imported == 1
    (m,) = engine.list(A, "alpha").memories
    assert m.superseded_at is None and m.superseded_by is None


def _old_row(store, account: str) -> None:
    """One memory written as the schema before supersession had it (no new columns)."""
    import numpy as np

    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1.0
    from memstore.stores.base import MemoryRow

    row = MemoryRow("mem_old", account, "alpha", OLD, "h1", {}, 1.0, 1.0)
    store.insert([row], vector[None, :])


def _check_upgraded(store) -> None:
    (row,) = store.get_many("acc_old", ["mem_old"], 2.0).values()
    assert row.superseded_at is None and row.superseded_by is None
    assert store.set_superseded("acc_old", ["mem_old"], 5.0, None) == ["mem_old"]
    assert store.not_current("acc_old", None, None) == {"mem_old"}
    store.add_recall_hits({("acc_old", "mem_old"): 2}, 6.0)
    (counts,) = store.session_counts("acc_old", None, 7.0)
    assert (counts.memories, counts.superseded, counts.never_recalled) == (1, 1, 0)


def test_a_sqlite_store_of_the_previous_schema_is_upgraded(tmp_path, monkeypatch):
    from memstore.stores import sqlite

    before = sqlite.MIGRATIONS.index("add_supersession_and_hygiene")
    with monkeypatch.context() as patch:
        patch.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:before])
        old = sqlite.SQLiteStore(tmp_path / "m.db")
        _old_row(old, "acc_old")
        old.close()
    store = sqlite.SQLiteStore(tmp_path / "m.db")
    try:
        _check_upgraded(store)
        assert store._read("PRAGMA user_version")[0][0] == len(sqlite.MIGRATIONS)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgres_database_of_the_previous_schema_is_upgraded(empty_pg_url, monkeypatch):
    from memstore.stores import postgres

    before = next(i for i, m in enumerate(postgres.MIGRATIONS) if "superseded_at" in m)
    with monkeypatch.context() as patch:
        patch.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:before])
        patch.setattr(postgres, "move_sums", lambda conn, changes: None)  # none kept then
        old = postgres.PostgresStore(empty_pg_url, pool_size=2)
        old.set_embedder_info("test", 384)
        _old_row(old, "acc_old")
        old.close()
    store = postgres.PostgresStore(empty_pg_url, pool_size=2)
    try:
        _check_upgraded(store)
    finally:
        store.close()


def test_a_retried_remember_applies_supersedes_to_the_stored_memory(engine):
    """As after a crash between storing the new memory and marking the old one."""
    old = engine.remember(A, OLD, "alpha").memory
    new = engine.remember(A, NEW, "alpha").memory
    again = engine.remember(A, NEW, "alpha", supersedes=[old.id])
    assert again.deduplicated and again.memory.id == new.id
    assert engine.get(A, old.id).superseded_by == new.id


def test_forgetting_or_purging_a_memory_drops_its_recall_count(engine: MemoryEngine, clock):
    """A forgotten memory leaves no trace: its id and hit count go with it, however it goes."""
    gone = engine.remember(A, OLD, "alpha").memory
    kept = engine.remember(A, NEW, "alpha").memory
    session = engine.remember(A, "Acme API docs are due in June", "beta").memory
    expiring = engine.remember(A, "Acme API docs draft link", "gamma", ttl=5).memory
    other = engine.remember(B, OLD, "alpha").memory
    for account, session_name in ((A, "alpha"), (A, "beta"), (A, "gamma"), (B, "alpha")):
        engine.recall(account, "Acme API docs", session_name)
    engine.hits.flush()

    def counted(account: str) -> set[str]:
        sql = engine.store._q("SELECT memory_id FROM recall_hits WHERE account_id = ?")
        return {row[0] for row in engine.store._read(sql, (account,))}

    assert counted(A) == {gone.id, kept.id, session.id, expiring.id}
    engine.forget(A, gone.id)
    engine.forget_session(A, "beta")
    clock.advance(60)
    engine.remember(A, "trigger the purge", "gamma")
    engine.store.purge_expired(A, clock.now)
    assert counted(A) == {kept.id}
    assert counted(B) == {other.id}  # another account's count of the same text stays
    # a count still pending when its memory went is not written after it
    engine.recall(A, "Acme API docs", "alpha")
    engine.forget(A, kept.id)
    engine.hits.flush()
    assert counted(A) == set()
    # nor one naming an id of another account
    engine.store.add_recall_hits({(A, other.id): 1}, clock.now)
    assert counted(A) == set() and counted(B) == {other.id}
