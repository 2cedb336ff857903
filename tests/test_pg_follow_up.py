"""PostgreSQL: recall's local list scored in the plain query's pass (stores/pg_follow_up.py).

The HNSW index guesses the plain query's best hits; the one exact pass then scores the
local query made from them, and ``dense_search`` of that vector is answered from it with
no statement of its own. Whatever the guess, every answer is the exact scan's."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import psycopg
import pytest

from memstore.models import content_hash, new_memory_id
from memstore.recall import LOCAL_TOP, RecallQuery, local_query, recall
from memstore.stores import pg_follow_up
from memstore.stores.base import FollowUp, MemoryRow
from memstore.stores.pg_bounds import bounds_ef
from memstore.stores.pg_follow_up import guess_ef

pytestmark = pytest.mark.postgres

A, B = "acct_a", "acct_b"
DIM = 16
NOW = 1_700_000_000.0
K = 30
SESSIONS = ["a", "b", "c"]


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors around a few topics, all sharing one common direction."""
    topics = rng.standard_normal((4, DIM))
    v = 2.0 + topics[rng.integers(0, 4, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _rows(account: str, session: str, n: int, start: int, expires: float | None = None):
    return [
        MemoryRow(
            id=new_memory_id(),
            account_id=account,
            session=session,
            content=f"memory {start + i} of {session}",
            content_hash=content_hash(f"{account} {session} {start + i} {expires}"),
            metadata={"kind": "even" if i % 2 == 0 else "odd"},
            created_at=NOW - 1000 + start + i,
            updated_at=NOW - 1000 + start + i,
            expires_at=expires,
        )
        for i in range(n)
    ]


@pytest.fixture
def stores(pg_url) -> Iterator[tuple[Any, Any]]:
    """(a store that guesses at any size, one that never guesses) over one database: three
    sessions of account A, rows that expired before NOW right where the queries look,
    and account B holding the same vectors."""
    from memstore.stores.postgres import PostgresStore

    guessing = PostgresStore(pg_url, pool_size=4, guess_min_rows=0)
    exact = PostgresStore(pg_url, pool_size=2, guess_min_rows=10**9)
    guessing.set_embedder_info("test-embedder", DIM)
    rng = np.random.default_rng(15)
    vectors = _vectors(rng, 60)
    for account in (A, B):
        guessing.create_account(account, account, "unlimited", NOW)
        for n, session in enumerate(SESSIONS):
            guessing.insert(_rows(account, session, 60, 100 * n), vectors)
    expired = _rows(A, "a", 10, 900, expires=NOW - 1)
    guessing.insert(expired, _vectors(rng, 10) * 0 + _query())  # the query's own direction
    with guessing._tx() as conn:
        conn.execute("ANALYZE memories")  # as autovacuum would: the guess plans by its size
    yield guessing, exact
    guessing.close()
    exact.close()


def _query(i: int = 0) -> np.ndarray:
    rng = np.random.default_rng(100 + i)
    v = 2.0 + rng.standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _centred(q: np.ndarray) -> np.ndarray:
    v = q - np.full(DIM, 0.2, np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _local(store: Any, q: np.ndarray, plain: list[tuple[str, float]]) -> np.ndarray:
    """The local query recall makes from ``plain`` (recall.local_search)."""
    ids = [mid for mid, _ in plain[:LOCAL_TOP]]
    read = store.vectors(A, ids)
    shifted = local_query(q, {mid: read[mid] for mid in ids})
    assert shifted is not None
    return shifted


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every statement sent through psycopg from here on."""
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def counting(self, query, *args, **kwargs):
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    return sent


@pytest.mark.parametrize("sessions", [None, ["a"], ["a", "b"]])
@pytest.mark.parametrize("i", range(3))
def test_the_local_list_is_answered_from_the_plain_pass(stores, statements, sessions, i):
    guessing, exact = stores
    q = _query(i)
    follow = FollowUp(LOCAL_TOP, partial(local_query, q))
    many = guessing.dense_search_many(A, sessions, [q, _centred(q)], K, NOW, None, None, follow)
    assert many == [exact.dense_search(A, sessions, v, K, NOW, None) for v in (q, _centred(q))]
    shifted = _local(guessing, q, many[0])
    statements.clear()
    local = guessing.dense_search(A, sessions, shifted, K, NOW, None)
    assert statements == []  # no scan of its own
    assert local == exact.dense_search(A, sessions, shifted, K, NOW, None)
    assert not {mid for mid, _ in local} & {
        mid for mid, _ in exact.dense_search(B, None, q, K, NOW, None)
    }
    assert guessing.dense_search(A, sessions, shifted, K, NOW, None) == local  # taken once


def test_a_filtered_scope_is_not_guessed_and_stays_exact(stores, statements):
    guessing, exact = stores
    q = _query()
    where = {"kind": "even"}
    follow = FollowUp(LOCAL_TOP, partial(local_query, q))
    plain, centred = guessing.dense_search_many(
        A, ["a", "b"], [q, _centred(q)], K, NOW, where, None, follow
    )
    assert plain == exact.dense_search(A, ["a", "b"], q, K, NOW, where)
    shifted = _local(guessing, q, plain)
    statements.clear()
    local = guessing.dense_search(A, ["a", "b"], shifted, K, NOW, where)
    assert statements  # its own scan
    assert local == exact.dense_search(A, ["a", "b"], shifted, K, NOW, where)


def test_a_wrong_guess_leaves_the_local_list_to_its_own_exact_scan(stores, statements, monkeypatch):
    guessing, exact = stores
    q = _query()
    right = pg_follow_up.guess_top

    def swapped(*args: Any) -> dict[str, np.ndarray] | None:
        guessed = right(*args)
        assert guessed is not None
        order = list(guessed)
        order[0], order[1] = order[1], order[0]
        return {mid: guessed[mid] for mid in order}

    monkeypatch.setattr("memstore.stores.postgres.guess_top", swapped)
    follow = FollowUp(LOCAL_TOP, partial(local_query, q))
    plain, _ = guessing.dense_search_many(A, None, [q, _centred(q)], K, NOW, None, None, follow)
    shifted = _local(guessing, q, plain)
    statements.clear()
    local = guessing.dense_search(A, None, shifted, K, NOW, None)
    assert statements
    assert local == exact.dense_search(A, None, shifted, K, NOW, None)


@pytest.mark.parametrize(
    ("sessions", "filters"),
    [(None, None), (["a"], None), (["a", "c"], None), (["b"], {"kind": "odd"})],
)
def test_recall_ranks_as_without_the_guess(stores, sessions, filters):
    guessing, exact = stores
    for i in range(3):
        q = RecallQuery(A, "memory of a", sessions, 10, None, filters, NOW)
        mine = recall(guessing, _query(i), q)
        theirs = recall(exact, _query(i), q)
        assert [(m.id, m.score) for m in mine] == [(m.id, m.score) for m in theirs]
        assert mine and all(m.session in (sessions or SESSIONS) for m in mine)


@pytest.mark.parametrize(
    ("scope", "table", "ef"),
    [
        (10_000, 20_000, 100),  # half the table: twice the candidates
        (10_000, 10_000, 50),
        (10_000, -1, 50),  # never analysed: taken for the whole table
        (1_999, 2_000, None),  # under min_rows: a pass costs about as much
        (2_000, 100_000, None),  # 2%: past the most candidates asked for
    ],
)
def test_the_guess_asks_for_more_candidates_the_smaller_the_scopes_share(scope, table, ef):
    assert guess_ef(scope, table, 2_000, 50, 400) == ef


@pytest.mark.parametrize(
    ("sessions", "filters"),
    [
        (None, None),
        (["a"], None),
        (["a", "c"], None),
        (["b"], {"kind": "odd"}),
        (["a"], {"kind": "even"}),
    ],
)
@pytest.mark.parametrize("k", [1, 20, 61])
def test_score_floors_keep_every_querys_top_k(pg_url, stores, statements, sessions, filters, k):
    from memstore.stores.postgres import PostgresStore

    _, exact = stores
    floored = PostgresStore(pg_url, pool_size=2, guess_min_rows=10**9, floors_min_rows=0)
    try:
        vectors = [_query(), _centred(_query()), _query(1)]  # each memory three times in A
        statements.clear()
        many = floored.dense_search_many(A, sessions, vectors, k, NOW, filters)
        assert many == [exact.dense_search(A, sessions, v, k, NOW, filters) for v in vectors]
        if not filters and k <= 60 * len(sessions or SESSIONS):  # the index finds k rows
            assert any("OFFSET 0" in s for s in statements)  # so the floors were used
    finally:
        floored.close()


@pytest.mark.parametrize(
    ("scope", "table", "k", "ef"),
    [
        (100_000, 200_000, 100, 400),
        (100_000, 100_000, 100, 200),
        (29_999, 30_000, 100, None),  # under min_rows: keeping every row costs little
        (100_000, 1_000_000, 100, None),  # 10%: past the most candidates asked for
        (100_000, 100_000, 0, None),
    ],
)
def test_score_floors_ask_for_twice_k_over_the_scopes_share(scope, table, k, ef):
    assert bounds_ef(scope, table, k, 30_000, 400) == ef


def test_the_passs_settings_end_with_its_transaction(pg_url, stores):
    from memstore.stores.postgres import PostgresStore

    one = PostgresStore(pg_url, pool_size=1, guess_min_rows=0, floors_min_rows=0)
    settings = "SELECT current_setting('random_page_cost'), current_setting('hnsw.ef_search')"
    try:
        q = _query()
        follow = FollowUp(LOCAL_TOP, partial(local_query, q))
        one.dense_search_many(A, None, [q, _centred(q)], K, NOW, None, None, follow)
        assert one._read(settings) == [("4", "40")]  # the defaults, on the one connection
    finally:
        one.close()
