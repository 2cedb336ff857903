"""Store.session_mean: the running per-session vector sums recall centres its query with
agree with a direct computation over the stored rows, on both backends, after every kind
of write (also from another process) and after reopening the store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow
from memstore.stores.sqlite import SQLiteStore

A, B = "acct_a", "acct_b"
DIM = 8
NOW = 1_700_000_000.0
SCOPES = [["s1"], ["s2"], ["s1", "s2"], ["s1", "nothing"], None]


def row(content: str, session: str, account: str = A, **kw) -> MemoryRow:
    return MemoryRow(
        id=new_memory_id(),
        account_id=account,
        session=session,
        content=content,
        content_hash=content_hash(content),
        created_at=NOW,
        updated_at=NOW,
        **kw,
    )


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def stored_rows(store, account: str) -> list[tuple[str, np.ndarray]]:
    """(session, vector) of every row the table holds for ``account``, read directly."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            rows = conn.execute(
                "SELECT session, embedding FROM memories WHERE account_id = ?", (account,)
            ).fetchall()
        return [(s, np.frombuffer(b, np.float32)) for s, b in rows]
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(store.database_url) as conn:
        register_vector(conn)
        rows = conn.execute(
            "SELECT session, embedding FROM memories WHERE account_id = %s", (account,)
        ).fetchall()
    return [(s, np.asarray(v.to_numpy(), np.float32)) for s, v in rows]


def assert_means_match(store, account: str = A) -> None:
    rows = stored_rows(store, account)
    for sessions in SCOPES:
        wanted = [v for s, v in rows if sessions is None or s in sessions]
        mean = store.session_mean(account, sessions, NOW)
        if not wanted:
            assert mean is None, sessions
        else:
            assert mean is not None, sessions
            np.testing.assert_allclose(mean, np.mean(wanted, axis=0), atol=1e-5)


@pytest.fixture
def filled(store):
    store.set_embedder_info("test-embedder", DIM)
    for account in (A, B):
        store.create_account(account, account, "unlimited", NOW)
    rows = [row(f"memory {i}", "s1" if i % 3 else "s2") for i in range(9)]
    rows.append(row("another account's memory", "s1", account=B))
    store.insert(rows, np.array([unit(i) for i in range(len(rows))]))
    return store, rows


def test_the_mean_follows_inserts_updates_and_deletes(filled):
    store, rows = filled
    assert_means_match(store)
    assert_means_match(store, B)
    assert store.session_mean(A, ["nothing"], NOW) is None
    assert store.session_mean("acct_without_memories", None, NOW) is None
    # a duplicate changes nothing
    store.insert([row("memory 1", "s1")], np.array([unit(99)]))
    assert_means_match(store)
    changed = replace(rows[1], content="memory one, rewritten", content_hash=content_hash("x"))
    assert store.update(changed, unit(50))
    assert_means_match(store)
    assert store.update(replace(rows[2], metadata={"k": "v"}), None)  # vector kept
    assert_means_match(store)
    assert store.delete(A, rows[0].id)
    assert not store.delete(A, rows[0].id)
    assert_means_match(store)
    assert_means_match(store, B)


def test_the_mean_after_forget_session_and_expiry(filled):
    store, _ = filled
    store.insert([row("short-lived", "s1", expires_at=NOW + 10)], np.array([unit(70)]))
    # Expired but not purged yet: still counted (documented approximation), as in the table.
    assert_means_match(store)
    assert store.purge_expired(A, NOW + 20) == 1
    assert_means_match(store)
    # an expired twin makes way for a new memory with the same content
    store.insert([row("twin", "s2", expires_at=NOW + 5)], np.array([unit(71)]))
    later = replace(row("twin", "s2"), created_at=NOW + 6, updated_at=NOW + 6)
    assert not store.insert([later], np.array([unit(72)]))[0][1]
    assert_means_match(store)
    assert store.delete_session(A, "s2") == 4
    assert store.session_mean(A, ["s2"], NOW) is None
    assert_means_match(store)
    assert store.delete_session(A, "s1") == 6
    assert store.session_mean(A, None, NOW) is None
    assert_means_match(store, B)


WRITER = """
import json, sys
import numpy as np
from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow

kind, where, delete_id = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "sqlite":
    from memstore.stores.sqlite import SQLiteStore
    store = SQLiteStore(where)
else:
    from memstore.stores.postgres import PostgresStore
    store = PostgresStore(where, pool_size=1)
rows = [
    MemoryRow(id=new_memory_id(), account_id="acct_a", session=s, content=c,
              content_hash=content_hash(c), created_at=1.7e9, updated_at=1.7e9)
    for s, c in (("s1", "from another process"), ("s3", "a new session"))
]
vectors = np.random.default_rng(5).normal(size=(2, 8)).astype(np.float32)
store.insert(rows, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
assert store.delete("acct_a", delete_id)
store.close()
"""


def test_the_mean_sees_writes_from_another_process_and_survives_a_reopen(filled):
    store, rows = filled
    assert_means_match(store)  # loads SQLite's index before the other process writes
    sqlite = isinstance(store, SQLiteStore)
    where = store.path if sqlite else store.database_url
    kind = "sqlite" if sqlite else "postgres"
    subprocess.run([sys.executable, "-c", WRITER, kind, where, rows[4].id], check=True)
    assert_means_match(store)
    assert store.session_mean(A, ["s3"], NOW) is not None
    if sqlite:
        reopened = SQLiteStore(store.path)
    else:
        from memstore.stores.postgres import PostgresStore

        reopened = PostgresStore(store.database_url, pool_size=1)
    try:
        assert_means_match(reopened)
        np.testing.assert_allclose(
            reopened.session_mean(A, ["s1", "s3"], NOW),
            store.session_mean(A, ["s1", "s3"], NOW),
            atol=1e-5,
        )
    finally:
        reopened.close()


@pytest.mark.postgres
def test_the_postgres_migration_sums_the_memories_already_stored(empty_pg_url, monkeypatch):
    from memstore.stores import postgres

    full = postgres.MIGRATIONS
    monkeypatch.setattr(postgres, "MIGRATIONS", full[:6])  # the schema before the sums
    store = postgres.PostgresStore(empty_pg_url, pool_size=1)
    store.set_embedder_info("test-embedder", DIM)
    store.close()
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(empty_pg_url) as conn:  # as the previous version wrote them
        register_vector(conn)
        for i in range(6):
            conn.execute(
                "INSERT INTO memories (id, account_id, session, content, content_hash,"
                " embedding, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (f"mem_{i}", A, f"s{1 + i % 2}", f"old {i}", f"h{i}", unit(i), NOW, NOW),
            )
    monkeypatch.setattr(postgres, "MIGRATIONS", full)
    store = postgres.PostgresStore(empty_pg_url, pool_size=1)
    try:
        assert_means_match(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_writers_to_the_same_sessions_in_opposite_orders_never_deadlock(pg_url):
    """Two batches over sessions s1 and s2, written in opposite orders by two threads at
    once: the sums move in sorted order at the end of each transaction, so no deadlock."""
    from concurrent.futures import ThreadPoolExecutor

    from memstore.stores.postgres import PostgresStore

    store = PostgresStore(pg_url, pool_size=4)
    try:
        store.set_embedder_info("test-embedder", DIM)
        store.create_account(A, A, "unlimited", NOW)

        def write(order: tuple[str, ...], seed: int) -> None:
            for i in range(40):
                rows = [row(f"{seed} {i} {s} {n}", s) for n in range(3) for s in order]
                store.insert(rows, np.array([unit(seed + i + j) for j in range(len(rows))]))

        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(write, ("s1", "s2"), 1000), pool.submit(write, ("s2", "s1"), 2000)]
            for future in done:
                future.result()
        assert_means_match(store)
    finally:
        store.close()
