"""The centred dense list: searching with the query minus the searched sessions' mean finds
the memory that differs from the rest in the query's direction, which the plain cosine
ranks last when every memory shares one strong common direction (the same speakers, the
same framing)."""

from __future__ import annotations

import numpy as np
import pytest

from memstore import recall as recall_module
from memstore.current import CurrentView
from memstore.models import content_hash, new_memory_id
from memstore.ranking import centred_query
from memstore.recall import RecallQuery, dense_and_centred, local_search
from memstore.stores.base import MemoryRow

A = "acct_a"
DIM = 8
NOW = 1_700_000_000.0


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def axis(i: int, weight: float = 1.0) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = weight
    return v


@pytest.fixture
def shared_direction(store):
    """Seven memories close to e0 (each leaning to its own axis) and one, "distinct", that
    holds less of e0 and much of e1; another session holds memories along e1."""
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "unlimited", NOW)
    contents = [f"common {i}" for i in range(2, 8)] + ["distinct"]
    vectors = [unit(axis(0) + axis(i, 0.15)) for i in range(2, 8)]
    vectors.append(unit(axis(0, 0.6) + axis(1, 0.8)))
    other = [unit(axis(1) + axis(i, 0.1)) for i in range(2, 5)]
    rows = [
        MemoryRow(
            id=new_memory_id(),
            account_id=A,
            session=session,
            content=text,
            content_hash=content_hash(text),
            metadata={"kind": "x"} if text[-1] in "246" else {},
            created_at=NOW,
            updated_at=NOW,
        )
        for session, text in [("chat", c) for c in contents]
        + [("other", f"o{i}") for i in range(3)]
    ]
    store.insert(rows, np.array(vectors + other))
    return store, {r.content: r.id for r in rows}


def query(sessions: list[str] | None) -> RecallQuery:
    return RecallQuery(A, "q", sessions, 5, None, None, NOW)


def test_the_centred_list_puts_first_what_the_plain_cosine_puts_last(shared_direction):
    store, ids = shared_direction
    q = unit(axis(0) + axis(1, 0.3))
    plain, centred = dense_and_centred(store, query(["chat"]), q, 10)
    assert plain == store.dense_search(A, ["chat"], q, 10, NOW, None)
    assert plain[-1][0] == ids["distinct"]
    assert centred[0][0] == ids["distinct"]
    assert {mid for mid, _ in centred} == {mid for mid, _ in plain}  # same scope


def test_the_centring_mean_is_the_searched_sessions_own(shared_direction):
    store, _ = shared_direction
    chat = store.session_mean(A, ["chat"], NOW)
    both = store.session_mean(A, None, NOW)
    assert chat is not None and both is not None
    assert not np.allclose(chat, both)  # "other" pulls the account's mean towards e1
    q = unit(axis(0) + axis(1, 0.3))
    expected = centred_query(q, chat)
    assert expected is not None
    np.testing.assert_allclose(np.linalg.norm(expected), 1.0, rtol=1e-5)


def test_no_centred_list_without_memories_or_weight(shared_direction, monkeypatch):
    store, _ = shared_direction
    q = unit(axis(0))
    assert dense_and_centred(store, query(["empty"]), q, 10) == ([], [])
    assert centred_query(q, None) is None
    assert centred_query(q, q) is None  # nothing left of the query
    monkeypatch.setattr(recall_module, "CENTRED_WEIGHT", 0.0)
    plain, centred = dense_and_centred(store, query(["chat"]), q, 10)
    assert len(plain) == 7 and centred == []


@pytest.mark.parametrize("sessions", [["chat"], ["chat", "other"], None, ["empty"], []])
@pytest.mark.parametrize("k", [0, 3, 20])
@pytest.mark.parametrize("filters", [None, {"kind": "x"}])
def test_dense_search_many_answers_as_dense_search_does(shared_direction, sessions, k, filters):
    store, _ = shared_direction
    vectors = [unit(axis(0) + axis(1, 0.3)), unit(axis(3)), unit(axis(1) - axis(0, 0.5))]
    many = store.dense_search_many(A, sessions, vectors, k, NOW, filters)
    assert many == [store.dense_search(A, sessions, v, k, NOW, filters) for v in vectors]


def test_superseded_memories_stay_out_of_both_lists(shared_direction):
    store, ids = shared_direction
    hidden = {ids["distinct"], ids["common 2"]}
    view = CurrentView(store, hidden)
    vectors = [unit(axis(0) + axis(1, 0.3)), unit(axis(1))]
    many = view.dense_search_many(A, ["chat"], vectors, 5, NOW, None)
    assert many == [view.dense_search(A, ["chat"], v, 5, NOW, None) for v in vectors]
    assert all(len(found) == 5 and not hidden & {m for m, _ in found} for found in many)


@pytest.mark.parametrize("top", [2, 20])
def test_the_local_list_centres_the_query_on_its_own_best_hits(shared_direction, monkeypatch, top):
    store, ids = shared_direction
    monkeypatch.setattr(recall_module, "LOCAL_TOP", top)
    q = unit(axis(0) + axis(1, 0.3))
    dense = store.dense_search(A, None, q, 10, NOW, None)
    best = store.vectors(A, [mid for mid, _ in dense[:top]])
    mean = np.mean(list(best.values()), axis=0)
    expected = store.dense_search(A, None, unit(q - mean), 10, NOW, None)
    local = local_search(store, query(None), q, dense, 10)
    assert [mid for mid, _ in local] == [mid for mid, _ in expected]
    assert local[0][0] != dense[0][0]
    assert local_search(store, query(None), q, [], 10) == []
    monkeypatch.setattr(recall_module, "LOCAL_WEIGHT", 0.0)
    assert local_search(store, query(None), q, dense, 10) == []


@pytest.fixture
def local_asks(monkeypatch) -> list[int]:
    """The number of dense hits each local list search of recall is given, in order."""
    asked: list[int] = []

    def spy(store, q, vector, dense, k, *vectors):
        asked.append(len(dense))
        return local_search(store, q, vector, dense, k, *vectors)

    monkeypatch.setattr(recall_module, "local_search", spy)
    return asked


def test_no_centred_lists_past_the_size_cap(shared_direction, monkeypatch, local_asks):
    # each centred list is one more search of the whole scope: a big scope goes without both
    store, _ = shared_direction  # "chat" holds 7 memories, "other" 3
    assert store.session_mean(A, ["chat"], NOW, 7) is not None
    assert store.session_mean(A, ["chat"], NOW, 6) is None
    assert store.session_mean(A, None, NOW, 10) is not None
    assert store.session_mean(A, None, NOW, 9) is None
    monkeypatch.setattr(recall_module, "CENTRED_MAX_ROWS", 6)
    q = unit(axis(0) + axis(1, 0.3))
    plain, centred = dense_and_centred(store, query(["chat"]), q, 10)
    assert len(plain) == 7 and centred == []
    assert dense_and_centred(store, query(["other"]), q, 10)[1]
    asked = local_asks  # the local list is asked with no hits
    recall_module.recall(store, q, query(["chat"]))
    recall_module.recall(store, q, query(["other"]))
    assert asked == [0, 3]


def test_past_the_local_cap_the_centred_list_stays_and_the_local_list_goes(
    shared_direction, monkeypatch, local_asks
):
    # the centred list shares the plain query's pass (no cap by default); the local list is
    # one more search of the whole scope, left out past LOCAL_MAX_ROWS memories in scope
    store, _ = shared_direction  # "chat" holds 7 memories, "other" 3
    monkeypatch.setattr(recall_module, "LOCAL_MAX_ROWS", 6)
    q = unit(axis(0) + axis(1, 0.3))
    assert dense_and_centred(store, query(["chat"]), q, 10)[1]  # 7 > 6: still centred
    asked = local_asks
    recall_module.recall(store, q, query(["chat"]))
    recall_module.recall(store, q, query(["other"]))
    assert asked == [0, 3]
    monkeypatch.setattr(recall_module, "CENTRED_MAX_ROWS", 2)  # below both: neither list
    assert dense_and_centred(store, query(["other"]), q, 10)[1] == []
    recall_module.recall(store, q, query(["other"]))
    assert asked == [0, 3, 0]
