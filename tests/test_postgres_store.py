"""PostgreSQL-specific guarantees: migrations, many processes, exact scoped search."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest

from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow

pytestmark = pytest.mark.postgres

A = "acct_a"
NOW = 1_700_000_000.0
DIM = 32


@pytest.fixture
def pg_store(pg_url):
    from memstore.stores.postgres import PostgresStore

    s = PostgresStore(pg_url, pool_size=4)
    s.set_embedder_info("test-embedder", DIM)
    s.create_account(A, A, "free", NOW)
    yield s
    s.close()


def rows_for(session: str, n: int, start: int = 0) -> list[MemoryRow]:
    return [
        MemoryRow(
            id=new_memory_id(),
            account_id=A,
            session=session,
            content=f"{session} memory {i}",
            content_hash=content_hash(f"{session} memory {i}"),
            metadata={"parity": i % 2},
            created_at=NOW,
            updated_at=NOW,
        )
        for i in range(start, start + n)
    ]


def on_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_migrations_are_idempotent(pg_url):
    from memstore.stores.postgres import MIGRATIONS, migrate

    assert migrate(pg_url) == len(MIGRATIONS)
    assert migrate(pg_url) == len(MIGRATIONS)
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_servers_starting_at_once_migrate_a_fresh_database_once(empty_pg_url):
    from memstore.stores.postgres import MIGRATIONS, migrate

    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(lambda _: migrate(empty_pg_url), range(6)))
    assert versions == [len(MIGRATIONS)] * 6


def test_concurrent_usage_from_two_stores_never_exceeds_the_cap(pg_store, pg_url):
    from memstore.stores.postgres import PostgresStore

    other = PostgresStore(pg_url, pool_size=4)
    limit, granted, lock = 150, [], threading.Lock()

    def hammer(store):
        for _ in range(25):
            total = store.add_usage(A, "2026-11", 1, limit)
            if total is not None:
                with lock:
                    granted.append(total)

    try:
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(hammer, [pg_store, other] * 6))
    finally:
        other.close()
    assert len(granted) == limit
    assert sorted(granted) == list(range(1, limit + 1))
    assert pg_store.get_usage(A, "2026-11") == limit
    assert pg_store.add_usage(A, "2026-11", 1, limit) is None


def test_a_batch_larger_than_the_cap_adds_nothing(pg_store):
    assert pg_store.add_usage(A, "2026-11", 5, 3) is None
    assert pg_store.get_usage(A, "2026-11") == 0


def test_two_stores_see_each_others_writes(pg_store, pg_url):
    from memstore.stores.postgres import PostgresStore

    other = PostgresStore(pg_url, pool_size=2)
    try:
        rng = np.random.default_rng(7)
        rows = rows_for("shared", 3)
        vectors = unit_vectors(rng, 3)
        pg_store.insert(rows, vectors)
        assert other.get(A, rows[0].id, NOW).content == rows[0].content
        assert other.dense_search(A, ["shared"], vectors[1], 1, NOW, None)[0][0] == rows[1].id
        assert other.keyword_search(A, None, ["memory"], 10, NOW, None)
        assert other.insert(rows[:1], vectors[:1])[0][1] is True  # deduplicated
        assert other.delete(A, rows[2].id)
        assert pg_store.get(A, rows[2].id, NOW) is None
        assert other.embedder_info() == ("test-embedder", DIM)
    finally:
        other.close()


def test_concurrent_identical_inserts_store_one_row(pg_store, pg_url):
    from memstore.stores.postgres import PostgresStore

    other = PostgresStore(pg_url, pool_size=2)
    vector = unit_vectors(np.random.default_rng(1), 1)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda s: s.insert(rows_for("race", 1), vector)[0],
                    [pg_store, other] * 4,
                )
            )
    finally:
        other.close()
    assert sum(1 for _, dedup in results if not dedup) == 1
    assert len({row.id for row, _ in results}) == 1
    assert [s[:2] for s in pg_store.sessions(A, NOW)] == [("race", 1)]


@pytest.fixture(scope="module")
def spread(pg_template):
    """2,000 memories: 1% in 'tiny', 10% in 'tenth', the rest in 'bulk' (built once)."""
    from memstore.stores.postgres import PostgresStore

    url, template = pg_template
    name = "memstore_spread"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    db_url = on_database(url, name)
    store = PostgresStore(db_url, pool_size=2)
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "free", NOW)
    rng = np.random.default_rng(42)
    sizes = {"tiny": 20, "tenth": 200, "bulk": 1780}
    vectors, sessions = {}, {}
    for session, n in sizes.items():
        rows = rows_for(session, n)
        vecs = unit_vectors(rng, n)
        store.insert(rows, vecs)
        vectors.update(zip((r.id for r in rows), vecs, strict=True))
        sessions[session] = [r.id for r in rows]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE memories")
    yield store, vectors, sessions, rng
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def exact_top(vectors: dict, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    scores = np.stack([vectors[i] for i in ids]) @ query
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


@pytest.mark.parametrize(
    "scope", [["tiny"], ["tenth"], None, ["tiny", "tenth"]], ids=["1%", "10%", "100%", "11%"]
)
@pytest.mark.parametrize("k", [1, 10, 50])
def test_dense_search_returns_the_exact_top_k_at_every_selectivity(spread, scope, k):
    store, vectors, sessions, rng = spread
    ids = [i for s in (scope or sessions) for i in sessions[s]]
    for query in unit_vectors(rng, 5):
        found = store.dense_search(A, scope, query, k, NOW, None)
        assert [mid for mid, _ in found] == exact_top(vectors, ids, query, k)
        for mid, score in found:
            assert score == pytest.approx(float(vectors[mid] @ query), abs=1e-5)


def test_dense_search_with_a_metadata_filter_is_exact(spread):
    store, vectors, sessions, rng = spread
    ids = sessions["tenth"][1::2]  # rows_for gives odd i parity 1
    query = unit_vectors(rng, 1)[0]
    found = store.dense_search(A, ["tenth"], query, 10, NOW, {"parity": 1})
    assert [mid for mid, _ in found] == exact_top(vectors, ids, query, 10)


def test_hnsw_path_falls_back_to_exact_when_the_filter_starves_it(spread):
    from memstore.stores.postgres import PostgresStore

    base, vectors, sessions, rng = spread
    # Force the index path even for the 1% session: HNSW post-filters its 40 candidates
    # down to almost nothing, and the store must notice and answer exactly instead.
    store = PostgresStore(base.database_url, exact_limit=0, ef_search=40, pool_size=1)
    try:
        for query in unit_vectors(rng, 5):
            found = store.dense_search(A, ["tiny"], query, 10, NOW, None)
            assert [m for m, _ in found] == exact_top(vectors, sessions["tiny"], query, 10)
    finally:
        store.close()


def test_expired_rows_never_come_back_from_search(pg_store):
    rows = rows_for("ttl", 2)
    rows[0] = MemoryRow(**{**rows[0].__dict__, "expires_at": NOW + 10})
    vectors = unit_vectors(np.random.default_rng(3), 2)
    pg_store.insert(rows, vectors)
    later = NOW + 11
    assert [m for m, _ in pg_store.dense_search(A, None, vectors[0], 5, later, None)] == [
        rows[1].id
    ]
    assert [m for m, _ in pg_store.keyword_search(A, None, ["memory"], 5, later, None)] == [
        rows[1].id
    ]
    assert pg_store.purge_expired(A, later) == 1


def test_the_pool_size_comes_from_the_server_settings(pg_url, monkeypatch):
    from memstore.server.app import create_app
    from memstore.stores import open_store

    monkeypatch.setenv("MEMSTORE_DATABASE_URL", pg_url)
    monkeypatch.setenv("MEMSTORE_DATABASE_POOL_SIZE", "3")
    app = create_app()
    try:
        assert app.state.engine.store._pool.max_size == 3
    finally:
        app.state.engine.store.close()
    with pytest.raises(ValueError, match="pool_size"):
        open_store(database_url=pg_url, pool_size=0)


def _plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _plan_nodes(child))]


def test_keyword_query_is_built_once_per_search(pg_store):
    """The OR of the terms' tsqueries is built once, not again for every row the planner
    tests (as it did, inlined, before the table was analysed: 4 ms per 1,000 rows)."""
    from memstore.stores.postgres import _scope, keyword_sql

    vectors = unit_vectors(np.random.default_rng(3), 300)
    pg_store.insert(rows_for("s", 300), vectors)
    scope, args = _scope(A, ["s"], NOW, None)
    ((plan,),) = pg_store._read(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + keyword_sql(scope), (["memory", "s"], *args, 100)
    )
    aggregates = [n for n in _plan_nodes(plan[0]["Plan"]) if n["Node Type"] == "Aggregate"]
    assert aggregates and all(n["Actual Loops"] == 1 for n in aggregates)
    found = pg_store.keyword_search(A, ["s"], ["memory", "s"], 100, NOW, None)
    assert len(found) == 100


def test_vectors_come_back_as_stored(pg_store):
    vectors = unit_vectors(np.random.default_rng(4), 5)
    stored = [row for row, _ in pg_store.insert(rows_for("v", 5), vectors)]
    found = pg_store.vectors(A, [r.id for r in stored])
    for row, vector in zip(stored, vectors, strict=True):
        assert found[row.id].dtype == np.float32
        np.testing.assert_array_equal(found[row.id], vector)


def test_a_small_sessions_size_is_estimated_from_joint_statistics(pg_store):
    """Account and session are planned jointly (CREATE STATISTICS): a session holding 1% of
    an account is estimated as such (taken for independent, they were estimated at half the
    account, and a bigger table was then scanned whole: bench/latency.py --postgres)."""
    from memstore.stores.postgres import _scope

    vectors = unit_vectors(np.random.default_rng(5), 3000)
    pg_store.insert(rows_for("big", 2970), vectors[:2970])
    pg_store.insert(rows_for("small", 30), vectors[2970:])
    other = "acct_b"
    pg_store.create_account(other, other, "free", NOW)
    pg_store.insert(
        [dataclasses.replace(r, account_id=other) for r in rows_for("small", 3000, 100)],
        unit_vectors(np.random.default_rng(6), 3000),
    )
    with pg_store._tx() as conn:
        conn.execute("ANALYZE memories")
    scope, args = _scope(A, ["small"], NOW, None)
    ((plan,),) = pg_store._read(
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT m.id, 1 - cosine_distance(m.embedding, %s)"
        f" AS score FROM memories m WHERE {scope} ORDER BY score DESC, m.seq LIMIT 10",
        (vectors[0], *args),
    )
    scan = next(n for n in _plan_nodes(plan[0]["Plan"]) if "Scan" in n["Node Type"])
    assert scan["Actual Rows"] == 30
    assert scan["Plan Rows"] <= 90, "estimated as if account and session were unrelated"
    found = pg_store.dense_search(A, ["small"], vectors[2970], 10, NOW, None)
    assert len(found) == 10 and found[0][1] == pytest.approx(1.0)


def test_vectors_are_stored_in_the_row(pg_store):
    """A vector stays in its row (storage MAIN), not out of line in TOAST (one lookup per
    row scanned), in rows past the 2 KB threshold and after the column's type change."""
    dim = 384
    pg_store.set_embedder_info("test-embedder-384", dim)
    ((storage,),) = pg_store._read(
        "SELECT attstorage FROM pg_attribute"
        " WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
    )
    assert storage == "m"
    toast_bytes = (
        "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'memories'::regclass"
    )
    ((before,),) = pg_store._read(toast_bytes)
    rows = [
        dataclasses.replace(r, content=r.content + " the same words again" * 40)
        for r in rows_for("wide", 20)
    ]
    v = np.random.default_rng(7).standard_normal((20, dim)).astype(np.float32)
    pg_store.insert(rows, v / np.linalg.norm(v, axis=1, keepdims=True))
    ((after,),) = pg_store._read(toast_bytes)
    assert after == before


def test_context_neighbors_are_read_from_their_session_only(pg_store):
    """Each candidate's neighbours come from memories_by_session next to it: no row of
    another session or account is read and dropped (the seq walk read ~700 per candidate)."""
    from memstore.stores.postgres import neighbors_sql

    vectors = unit_vectors(np.random.default_rng(8), 2000)
    rows = [
        dataclasses.replace(r, session="small" if i % 100 == 0 else "big")
        for i, r in enumerate(rows_for("x", 2000))
    ]
    stored = [row for row, _ in pg_store.insert(rows, vectors)]
    with pg_store._tx() as conn:
        conn.execute("ANALYZE memories")
    small = [r for r in stored if r.session == "small"]
    sql, args = neighbors_sql(A, [r.id for r in small[5:15]], 2, NOW, None)
    ((plan,),) = pg_store._read("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args)
    removed = sum(n.get("Rows Removed by Filter", 0) for n in _plan_nodes(plan[0]["Plan"]))
    assert removed == 0, plan
    found = pg_store.neighbors(A, [small[10].id], 2, 1e9, NOW, None)
    assert found[small[10].id] == {
        -2: small[8].id,
        -1: small[9].id,
        1: small[11].id,
        2: small[12].id,
    }
