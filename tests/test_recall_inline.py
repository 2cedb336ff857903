"""In a small scope recall searches the local list on its own thread (a hand-off to a thread
beside costs more there than the search), past ``INLINE_MAX_ROWS`` memories beside the
context stage; the answer is the same either way."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memstore import recall as recall_module
from memstore.models import content_hash, new_memory_id
from memstore.recall import RecallQuery, local_search
from memstore.stores.base import MemoryRow

A = "acct_a"
DIM = 8
NOW = 1_700_000_000.0
SIZE = 12


@pytest.fixture
def chat(store):
    """SIZE memories of one session, a minute apart, with random unit vectors."""
    store.set_embedder_info("test-embedder", DIM)
    store.create_account(A, A, "unlimited", NOW)
    vectors = np.random.default_rng(7).normal(size=(SIZE, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        MemoryRow(
            id=new_memory_id(),
            account_id=A,
            session="chat",
            content=f"turn {i} about the garden",
            content_hash=content_hash(f"turn {i} about the garden"),
            created_at=NOW + 60 * i,
            updated_at=NOW + 60 * i,
        )
        for i in range(SIZE)
    ]
    store.insert(rows, vectors)
    return store, vectors


def test_the_local_list_runs_inline_in_a_small_scope_and_beside_past_it(chat, monkeypatch):
    store, vectors = chat
    threads: list[threading.Thread] = []

    def spy(*args):  # where the local list is searched
        threads.append(threading.current_thread())
        return local_search(*args)

    monkeypatch.setattr(recall_module, "local_search", spy)
    q = RecallQuery(A, "garden", ["chat"], 5, None, None, NOW + 3600, explain=True)
    vector = vectors[3] + 0.5 * vectors[8]
    vector /= np.linalg.norm(vector)
    inline = recall_module.recall(store, vector, q)
    assert threads == [threading.current_thread()]
    monkeypatch.setattr(recall_module, "INLINE_MAX_ROWS", SIZE - 1)
    beside = recall_module.recall(store, vector, q)
    assert len(threads) == 2 and threads[1] is not threading.current_thread()
    assert inline == beside and len(inline) == 5
