"""Store-level behaviour every backend must share (the engine suite covers the rest)."""

from __future__ import annotations

import numpy as np
import pytest

from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow

A = "acct_a"
DIM = 8
NOW = 1_700_000_000.0


def make_row(content: str, session: str = "", metadata: dict | None = None, **kw) -> MemoryRow:
    return MemoryRow(
        id=new_memory_id(),
        account_id=A,
        session=session,
        content=content,
        content_hash=content_hash(content),
        metadata=metadata or {},
        created_at=NOW,
        updated_at=NOW,
        **kw,
    )


@pytest.fixture
def filled(store):
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "unlimited", NOW)
    values = {"int": 1, "float": 1.0, "true": True, "str": "1", "null": None, "big": 2}
    rows = [make_row(f"value kind {name}", metadata={"v": v}) for name, v in values.items()]
    rows.append(make_row("no value at all"))
    vectors = np.eye(len(rows), DIM, dtype=np.float32)
    store.insert(rows, vectors)
    return store


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, {"value kind int"}),
        (1.0, {"value kind float"}),
        (True, {"value kind true"}),
        ("1", {"value kind str"}),
        (None, {"value kind null"}),
        (2, {"value kind big"}),
        (3, set()),
    ],
)
def test_metadata_filters_match_only_the_same_json_type(filled, value, expected):
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    found = filled.dense_search(A, None, query, 20, NOW, {"v": value})
    rows = filled.get_many(A, [mid for mid, _ in found], NOW)
    assert {r.content for r in rows.values()} == expected


@pytest.mark.parametrize(
    "term", ["'", "a'b", "&", "|", "!", "(", "foo:*", "<->", "\\", "kind:A", '"', "--"]
)
def test_keyword_search_treats_terms_as_words_not_query_syntax(filled, term):
    found = filled.keyword_search(A, None, [term, "kind"], 10, NOW, None)
    assert len(found) == 6 and all(score > 0 for _, score in found)


def test_keyword_search_ors_the_terms(filled):
    found = filled.keyword_search(A, None, ["float", "null"], 10, NOW, None)
    rows = filled.get_many(A, [mid for mid, _ in found], NOW)
    assert {r.content for r in rows.values()} == {"value kind float", "value kind null"}


def test_dense_search_scores_are_cosine_similarities_best_first(filled):
    query = np.zeros(DIM, dtype=np.float32)
    query[2] = 1.0
    found = filled.dense_search(A, None, query, 3, NOW, None)
    assert found[0][1] == pytest.approx(1.0, abs=1e-6)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


@pytest.fixture
def conversation(store):
    """Turns t0..t5 of session "chat" (t5 an hour and more later), interleaved with other
    sessions' and another account's rows, which must never count as neighbours."""
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "unlimited", NOW)
    store.create_account("acct_b", "acct_b", "unlimited", NOW)
    ids = {}
    for i in range(6):
        when = NOW + (7200 if i == 5 else i)
        turn = make_row(f"turn {i}", "chat", {"even": i % 2 == 0}, expires_at=None)
        turn = MemoryRow(**{**turn.__dict__, "created_at": when})
        other = make_row(f"aside {i}", "other")
        foreign = MemoryRow(**{**make_row(f"foreign {i}", "chat").__dict__, "account_id": "acct_b"})
        for row in (turn, other, foreign):
            store.insert([row], np.eye(1, DIM, dtype=np.float32))
        ids[f"t{i}"] = turn.id
    return store, ids


def test_neighbors_are_the_nearest_turns_of_the_same_session(conversation):
    store, t = conversation
    found = store.neighbors(A, [t["t2"], t["t0"]], 2, 3600.0, NOW, None)
    assert found[t["t2"]] == {-2: t["t0"], -1: t["t1"], 1: t["t3"], 2: t["t4"]}
    assert found[t["t0"]] == {1: t["t1"], 2: t["t2"]}


def test_neighbors_stop_at_the_time_window(conversation):
    store, t = conversation
    assert store.neighbors(A, [t["t4"]], 2, 3600.0, NOW, None)[t["t4"]] == {
        -1: t["t3"],
        -2: t["t2"],
    }
    assert t["t5"] not in store.neighbors(A, [t["t5"]], 2, 3600.0, NOW, None)


def test_neighbors_skip_rows_outside_the_filters_and_other_accounts(conversation):
    store, t = conversation
    found = store.neighbors(A, [t["t2"]], 1, 3600.0, NOW, {"even": True})
    assert found[t["t2"]] == {-1: t["t0"], 1: t["t4"]}
    assert store.neighbors("acct_b", [t["t2"]], 2, 3600.0, NOW, None) == {}


def test_sqlite_reads_run_while_a_write_transaction_is_open(tmp_path):
    """Reads use per-thread connections (WAL): a long write never blocks them."""
    import threading

    from memstore.stores.sqlite import SQLiteStore

    store = SQLiteStore.open_dir(tmp_path)
    try:
        [(row, _)] = store.insert([make_row("readable")], np.ones((1, 4), np.float32))
        results: list[object] = []
        with store._write():  # the single writer is busy (and holds its lock)
            reader = threading.Thread(
                target=lambda: results.append(store.get(row.account_id, row.id, 0.0))
            )
            reader.start()
            reader.join(timeout=5)
            assert not reader.is_alive(), "the read waited for the writer"
        assert results and results[0].content == "readable"
    finally:
        store.close()


def test_taken_unique_keys_raise_duplicate_error(filled):
    from dataclasses import replace

    from memstore.stores.base import DuplicateError

    with pytest.raises(DuplicateError):
        filled.create_account("acct_other", A, "free", NOW)  # the name is taken
    first, second = filled.list_memories(A, None, 2, None, NOW)
    twin = replace(second, content=first.content, content_hash=first.content_hash)
    with pytest.raises(DuplicateError):
        filled.update(twin, None)
    assert filled.get(A, second.id, NOW).content == second.content  # rolled back


def test_vectors_follow_updates_and_deletes_after_a_search(filled):
    """Recall reads candidate vectors after a dense search (on SQLite from the in-memory
    index); they are the stored ones, after an update or a delete too."""
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    ids = [mid for mid, _ in filled.dense_search(A, None, query, 20, NOW, None)]
    changed, deleted = filled.get(A, ids[0], NOW), ids[1]
    new_vector = np.full(DIM, 0.5, dtype=np.float32)
    filled.update(changed, new_vector)
    filled.delete(A, deleted)
    filled.dense_search(A, None, query, 20, NOW, None)
    got = filled.vectors(A, ids)
    assert deleted not in got and set(got) == set(ids) - {deleted}
    assert np.array_equal(got[changed.id], new_vector)
    rest = sorted(set(ids) - {changed.id, deleted})
    assert all(np.count_nonzero(got[mid]) == 1 for mid in rest)  # still rows of the eye


def test_sqlite_vectors_see_another_handles_writes(tmp_path):
    """A second process writing to the same file is seen by the first one's vectors."""
    from memstore.stores.sqlite import SQLiteStore

    first, second = SQLiteStore.open_dir(tmp_path), SQLiteStore.open_dir(tmp_path)
    try:
        first.set_embedder_info("test-embedder", DIM)
        [(row, _)] = first.insert([make_row("one")], np.eye(1, DIM, dtype=np.float32))
        query = np.eye(1, DIM, dtype=np.float32)[0]
        first.dense_search(A, None, query, 5, NOW, None)  # loads first's index
        second.update(row, np.full(DIM, 0.25, dtype=np.float32))
        [(other, _)] = second.insert([make_row("two")], np.eye(2, DIM, dtype=np.float32)[1:])
        got = first.vectors(A, [row.id, other.id])
        assert np.array_equal(got[row.id], np.full(DIM, 0.25, dtype=np.float32))
        assert np.array_equal(got[other.id], np.eye(2, DIM, dtype=np.float32)[1])
    finally:
        first.close()
        second.close()
