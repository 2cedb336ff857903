"""Dense search's int8 first pass (vector_codes.py) answers exactly what the float32 scan does.

Each store test opens two stores on one real SQLite file: ``exact`` scans every row in float32
(codes turned off) and ``coded`` shortlists with int8 codes first; writes come from a third
store in another process, as from another ``memstore serve`` worker. Answers must be equal:
the same ids, in the same order, with the same scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from memstore.models import content_hash
from memstore.stores import vector_codes
from memstore.stores.base import MemoryRow
from memstore.stores.sqlite import SQLiteStore
from memstore.stores.vector_index import VectorIndex
from tests.crossproc import write_elsewhere

pytestmark = pytest.mark.skipif(not vector_codes.available(), reason="simsimd not installed")

DIM = 64
A, B = "acct_a", "acct_b"
NOW = 1_700_000_000.0


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors in tight clusters around a shared direction (as e5's are), with exact
    duplicates among them, so that near-ties and ties are common."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), DIM)).astype(np.float32) + 3.0
    vectors = centres[rng.integers(0, len(centres), n)]
    vectors = vectors + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    vectors[n // 2 : n // 2 + n // 10] = vectors[: n // 10]  # exact duplicates
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def queries(seed: int, count: int = 25) -> list[np.ndarray]:
    return list(clustered(count, seed))


@pytest.mark.parametrize("length", [1.0, 7.0])  # unit vectors (every embedder's), and not
def test_index_codes_agree_with_the_float32_scan_through_upserts_and_removes(length: float) -> None:
    exact, coded = VectorIndex(DIM, codes_min_rows=0), VectorIndex(DIM, codes_min_rows=1)
    vectors = clustered(3000, seed=1) * np.float32(length)
    sessions = ["s1", "s2", "s3"]
    for index in (exact, coded):
        for seq, vector in enumerate(vectors, start=1):
            expires = NOW + (seq % 7 - 3) if seq % 5 == 0 else None  # some already expired
            index.upsert(seq, f"m{seq}", sessions[seq % 3], vector, expires)
    rng = np.random.default_rng(2)
    for step in range(4):
        for q in np.array(queries(seed=10 + step)) * np.float32(length):
            for scope in (None, ["s1"], ["s2", "s3"]):
                for k in (1, 10, 100):
                    assert coded.search(q, k, NOW, scope) == exact.search(q, k, NOW, scope)
            allowed = rng.choice(np.arange(1, 3001), size=700, replace=False)
            assert coded.search(q, 50, NOW, None, allowed) == exact.search(
                q, 50, NOW, None, allowed
            )
        assert coded._codes is not None  # the coded path really ran
        # writes between rounds: removes (the last row moves into the hole), rewrites, new rows
        for seq in rng.choice(np.arange(1, 3001), size=200, replace=False).tolist():
            exact.remove(seq)
            coded.remove(seq)
        for seq in rng.choice(np.arange(1, 3001), size=100, replace=False).tolist():
            v = clustered(1, seed=seq)[0] * np.float32(length)
            exact.upsert(seq, f"m{seq}", "s1", v, None)
            coded.upsert(seq, f"m{seq}", "s1", v, None)


def test_exact_ties_go_to_the_older_row_on_both_paths() -> None:
    vectors = clustered(500, seed=3)
    twin = vectors[7]
    for min_rows in (0, 1):
        index = VectorIndex(DIM, codes_min_rows=min_rows)
        for seq, vector in enumerate(vectors, start=1):
            index.upsert(seq, f"m{seq}", "s", vector, None)
        for seq in (900, 600, 700):  # three more copies of row 8, inserted out of seq order
            index.upsert(seq, f"m{seq}", "s", twin, None)
        hits = index.search(twin, 5, NOW)
        # row 8's copies: row 258 (clustered's duplicates) and the three added above
        assert [mid for mid, _ in hits] == ["m8", "m258", "m600", "m700", "m900"]
        assert len({score for _, score in hits}) == 1


def test_no_rows_and_a_zero_query() -> None:
    index = VectorIndex(DIM, codes_min_rows=1)
    assert index.search(np.ones(DIM, np.float32), 5, NOW) == []
    index.upsert(1, "m1", "s", clustered(1, seed=4)[0], None)
    assert [m for m, _ in index.search(np.zeros(DIM, np.float32), 5, NOW)] == ["m1"]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore, str]]:
    path = str(tmp_path / "memstore.db")
    exact, coded = SQLiteStore(path), SQLiteStore(path)
    exact.set_embedder_info("test-vectors", DIM)
    exact.vector_codes_min_rows, coded.vector_codes_min_rows = 0, 1
    yield exact, coded, path
    exact.close()
    coded.close()


def fill(store: SQLiteStore, account: str, vectors: np.ndarray) -> list[MemoryRow]:
    rows = [
        MemoryRow(
            id=f"mem_{account}_{i}",
            account_id=account,
            session=f"s{i % 4}",
            content=f"memory {i} of {account}",
            content_hash=content_hash(f"memory {i} of {account}"),
            metadata={"n": i % 3},
            created_at=NOW,
            updated_at=NOW,
            expires_at=NOW + 50 if i % 9 == 0 else None,
        )
        for i in range(len(vectors))
    ]
    return [r for r, _ in store.insert(rows, vectors)]


def meta(content: str) -> dict[str, int]:
    """The metadata a filter test can select on, as another process writes it."""
    return {"n": len(content) % 3}


def assert_same(exact: SQLiteStore, coded: SQLiteStore, seed: int, now: float = NOW) -> None:
    for q in queries(seed):
        for sessions in (None, ["s1"], ["s0", "s2"], ["nobody"]):
            for filters in (None, {"n": 1}):
                for account in (A, B):
                    args = (account, sessions, q, 100, now, filters)
                    assert coded.dense_search(*args) == exact.dense_search(*args)
    assert coded._indexes[A][0]._codes is not None  # the coded path really ran


def test_store_codes_agree_with_the_scan_through_writes_from_another_process(
    stores: tuple[SQLiteStore, SQLiteStore, str],
) -> None:
    exact, coded, path = stores
    fill(exact, A, clustered(2500, seed=5))
    fill(exact, B, clustered(300, seed=6))
    assert_same(exact, coded, seed=20)
    assert_same(exact, coded, seed=21, now=NOW + 100)  # the expiring ninth have expired
    new = clustered(40, seed=7)
    ops: list[list[object]] = [
        ["remember", A, "s1", f"new {i}", None, new[i].tolist(), meta(f"new {i}")]
        for i in range(30)
    ]
    ops += [
        [
            "remember",
            A,
            "s2",
            f"short-lived {i}",
            NOW + 10,
            new[30 + i].tolist(),
            meta(f"short-lived {i}"),
        ]
        for i in range(10)
    ]
    ops += [
        ["update", A, f"mem_{A}_{i}", {"vector": new[i % 40].tolist()}] for i in range(0, 200, 7)
    ]
    ops += [["forget", A, f"mem_{A}_{i}"] for i in range(1, 400, 3)]
    ops += [["forget_session", A, "s3"], ["forget", B, f"mem_{B}_5"]]
    write_elsewhere(path, ops)
    assert_same(exact, coded, seed=22)
    assert_same(exact, coded, seed=23, now=NOW + 20)


def conversation(store: SQLiteStore, account: str, n: int, seed: int) -> list[str]:
    """``n`` turns over 3 sessions, created seconds to hours apart, some expiring."""
    rng = np.random.default_rng(seed)
    when = NOW + np.cumsum(rng.choice([1.0, 30.0, 3599.0, 3601.0, 9000.0], size=n))
    rows = [
        MemoryRow(
            id=f"turn_{account}_{i}",
            account_id=account,
            session=f"s{rng.integers(0, 3)}",
            content=f"turn {i} of {account}",
            content_hash=content_hash(f"turn {i} of {account}"),
            created_at=float(when[i]),
            updated_at=float(when[i]),
            expires_at=NOW + 30 if i % 11 == 0 else None,
        )
        for i in range(n)
    ]
    store.insert(rows, clustered(n, seed))
    return [r.id for r in rows]


def assert_same_neighbours(store: SQLiteStore, ids: list[str], now: float) -> None:
    asked = [*ids, "turn_missing", f"turn_{B}_3"]  # unknown and other-account ids find nothing
    for radius in (1, 2, 3):
        for window in (0.5, 3600.0, 1e9):
            found = store.neighbors(A, asked, radius, window, now, None)
            assert found == store._neighbors_sql(A, asked, radius, window, now, None)
    assert store.neighbors(A, ids, 2, 3600.0, now, None)  # not vacuous


def test_in_memory_neighbours_equal_the_sql_query_through_writes_from_another_process(
    stores: tuple[SQLiteStore, SQLiteStore, str],
) -> None:
    store, _, path = stores
    ids = conversation(store, A, 400, seed=8)
    conversation(store, B, 50, seed=9)
    assert_same_neighbours(store, ids, NOW)
    assert_same_neighbours(store, ids, NOW + 60)  # the expiring eleventh are gone
    new = clustered(10, seed=10)
    ops: list[list[object]] = [
        ["remember", A, f"s{i % 3}", f"late {i}", None, new[i].tolist(), meta(f"late {i}")]
        for i in range(10)
    ]
    ops += [["forget", A, ids[i]] for i in range(0, 400, 5)]
    ops += [["forget_session", A, "s2"]]
    write_elsewhere(path, ops)
    late = [r.id for r in store.list_memories(A, None, 20, None, NOW + 60)]
    assert_same_neighbours(store, ids + late, NOW + 60)


@pytest.mark.parametrize("scope", ["all", "most", "few"])  # scored whole, picked; gathered
def test_the_first_pass_split_over_two_threads_gives_the_same_bits(scope, monkeypatch) -> None:
    vectors = clustered(3_000, seed=11)
    codes = vector_codes.Int8Codes(vectors, len(vectors))
    rows = {
        "all": None,
        "most": np.arange(0, 3_000, 2)[:1_400],
        "few": np.arange(5, 3_000, 7)[:300],
    }[scope]
    alone = [codes.bounds(q, len(vectors), rows) for q in queries(12)]
    parts: list[int] = []
    shared = vector_codes.shared
    monkeypatch.setattr(
        vector_codes, "shared", lambda runs: parts.append(len(runs)) or shared(runs)
    )
    monkeypatch.setattr(vector_codes, "SPLIT_MIN_ROWS", 100)
    monkeypatch.setattr(vector_codes, "_PART", 128)
    monkeypatch.setattr(vector_codes.embedding, "cores", lambda: 2)
    split = [codes.bounds(q, len(vectors), rows) for q in queries(12)]
    assert parts and all(p > 2 for p in parts)
    for (a, b), (c, d) in zip(alone, split, strict=True):
        assert a.tobytes() == c.tobytes() and b.tobytes() == d.tobytes()


def test_the_first_pass_keeps_one_thread_while_another_operation_runs(monkeypatch) -> None:
    from memstore.embedding import OPERATIONS

    vectors = clustered(500, seed=13)
    codes = vector_codes.Int8Codes(vectors, len(vectors))
    parts: list[int] = []
    monkeypatch.setattr(vector_codes, "shared", lambda runs: parts.append(len(runs)))
    monkeypatch.setattr(vector_codes, "SPLIT_MIN_ROWS", 100)
    monkeypatch.setattr(vector_codes.embedding, "cores", lambda: 2)
    with OPERATIONS.running(), OPERATIONS.running():  # this recall and another client's
        codes.bounds(queries(14)[0], len(vectors), None)
    assert parts == []
    with OPERATIONS.running():
        codes.bounds(queries(14)[0], len(vectors), None)
    assert parts == [1]


def test_shared_runs_each_part_once_when_the_second_thread_is_late() -> None:
    import threading
    import time

    done: list[int] = []
    lock = threading.Lock()

    def part(i: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.01)  # a thread that gets no core for a while
        with lock:
            done.append(i)

    vector_codes.shared([lambda i=i: part(i) for i in range(50)])
    assert sorted(done) == list(range(50))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 1_500),
    part=st.integers(1, 700),
    keep=st.one_of(st.none(), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**16),
)
def test_any_split_of_any_scope_gives_the_unsplit_bits(n, part, keep, seed, monkeypatch) -> None:
    # every size, part length and scope (whole, picked, gathered): the same bits
    vectors = clustered(n, seed)
    codes = vector_codes.Int8Codes(vectors, n)
    rng = np.random.default_rng(seed)
    rows = None if keep is None else np.flatnonzero(rng.random(n) < keep)
    assume(rows is None or rows.size)  # the index never asks for an empty scope (_scope)
    query = queries(seed + 1, 1)[0]
    alone = codes.bounds(query, n, rows)
    with monkeypatch.context() as m:
        m.setattr(vector_codes, "SPLIT_MIN_ROWS", 1)
        m.setattr(vector_codes, "_PART", part)
        m.setattr(vector_codes.embedding, "cores", lambda: 2)
        split = codes.bounds(query, n, rows)
    assert alone is not None and split is not None
    assert alone[0].tobytes() == split[0].tobytes() and alone[1].tobytes() == split[1].tobytes()
