"""Nothing the caller asked for is silently dropped, and only what succeeded is charged
(issue 14, items 7, 9 and 10), on both stores."""

from __future__ import annotations

import numpy as np
import pytest

from memstore.embedding import QueryCache, load_embedder
from memstore.engine import MemoryEngine
from memstore.errors import ConflictError, NotFoundError, ValidationError

pytestmark = pytest.mark.reliability

A, B = "acct_a", "acct_b"


def used(engine: MemoryEngine, account: str = A) -> int:
    return engine.usage(account).ops_used


# -- item 9: a duplicate remember takes the newer request's ttl and metadata
def test_a_duplicate_without_ttl_makes_the_memory_permanent(engine, clock):
    first = engine.remember(A, "X", ttl=2)
    again = engine.remember(A, "X")
    assert again.deduplicated and again.memory.id == first.memory.id
    assert again.memory.expires_at is None
    clock.advance(3)
    assert engine.get(A, first.memory.id).content == "X"


def test_a_duplicate_with_ttl_sets_the_expiry(engine, clock):
    first = engine.remember(A, "Y")
    again = engine.remember(A, "Y", ttl=1)
    assert again.deduplicated and again.memory.expires_at is not None
    clock.advance(2)
    with pytest.raises(NotFoundError):
        engine.get(A, first.memory.id)


def test_a_duplicate_with_metadata_replaces_it_and_one_without_keeps_it(engine):
    engine.remember(A, "Z", metadata={"a": 1})
    assert engine.remember(A, "Z", metadata={"b": 2}).memory.metadata == {"b": 2}
    kept = engine.remember(A, "Z")
    assert kept.deduplicated and kept.memory.metadata == {"b": 2}
    assert engine.list(A).memories[0].metadata == {"b": 2}


def test_the_last_copy_in_a_batch_wins(engine, clock):
    results = engine.remember_many(
        A, [{"content": "W", "ttl": 1}, {"content": "W", "metadata": {"k": "last"}}]
    )
    assert [r.deduplicated for r in results] == [False, True]
    clock.advance(2)
    (memory,) = engine.list(A).memories
    assert memory.expires_at is None and memory.metadata == {"k": "last"}


def test_a_batch_copy_without_metadata_keeps_an_earlier_copys_metadata(engine):
    # as if the copies came one after the other: the last metadata given wins
    batch = [{"content": "V"}, {"content": "V", "metadata": {"k": "mid"}}, {"content": "V"}]
    results = engine.remember_many(A, batch)
    assert [r.memory.metadata for r in results] == [{"k": "mid"}] * 3
    assert engine.list(A).memories[0].metadata == {"k": "mid"}
    again = engine.remember_many(A, [{"content": "V", "metadata": {"k": "new"}}, {"content": "V"}])
    assert [r.memory.metadata for r in again] == [{"k": "new"}] * 2
    assert engine.list(A).memories[0].metadata == {"k": "new"}


# -- item 10: only successful operations are charged
def test_an_update_conflict_is_not_charged(engine):
    engine.remember(A, "taken")
    other = engine.remember(A, "other").memory
    before = used(engine)
    with pytest.raises(ConflictError):
        engine.update(A, other.id, content="taken")
    assert used(engine) == before


def test_forgetting_an_empty_session_is_not_charged(engine):
    before = used(engine)
    assert engine.forget_session(A, "nothing-here") == 0
    assert used(engine) == before
    engine.remember(A, "something", "here")
    assert engine.forget_session(A, "here") == 1
    assert used(engine) == before + 2  # the remember and the forget


def test_invalid_requests_are_not_charged(engine):
    before = used(engine)
    for call in (
        lambda: engine.recall(A, "q", filters={"n": 2**64}),
        lambda: engine.remember(A, "x", metadata={"k": "\ud800"}),
        lambda: engine.update(A, "mem_missing", content="x"),
    ):
        with pytest.raises((ValidationError, NotFoundError)):
            call()
    assert used(engine) == before


class FailingEmbedder:
    """The real embedder, except that every call fails after the operation was charged
    (standing in for any failure inside an operation)."""

    def __init__(self) -> None:
        inner = load_embedder()
        self.name, self.dim = inner.name, inner.dim

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("embedding failed")

    def embed_query(self, text: str) -> np.ndarray:
        raise RuntimeError("embedding failed")


def test_operations_that_fail_inside_are_not_charged(store, clock):
    engine = MemoryEngine(store, FailingEmbedder(), clock=clock)
    engine.ensure_account(A, "free")
    for call in (
        lambda: engine.remember(A, "x"),
        lambda: engine.remember_many(A, [{"content": "a"}, {"content": "b"}]),
        lambda: engine.recall(A, "x"),
    ):
        with pytest.raises(RuntimeError):
            call()
    assert used(engine) == 0


# -- item 7: query vectors are cached per account
def test_one_accounts_recall_does_not_warm_the_cache_for_another(engine):
    engine.recall(A, "what did A search for")
    assert (A, "what did A search for") in set(engine._queries.keys())
    assert (B, "what did A search for") not in set(engine._queries.keys())
    engine.recall(B, "what did A search for")
    assert (B, "what did A search for") in set(engine._queries.keys())


def test_the_shared_embedder_keeps_no_query_cache():
    """Every engine of a process shares one embedder: a cache there would be cross-tenant."""
    embedder = load_embedder()
    assert not any(isinstance(v, QueryCache) for v in vars(embedder).values())


# -- item 2: embedding cost is capped at what the model reads
def test_a_32_kib_query_is_embedded_from_what_the_model_reads():
    """The model reads 512 tokens; the rest of a long query is cut before embedding, so a
    32 KiB query costs what its first few KiB cost, and yields the same vector."""
    import time

    embedder = load_embedder()
    long = " ".join(f"word{i}" for i in range(6000))[: 32 * 1024]
    prefix = long[:4096]

    def cost(text: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            embedder.embed_query(text)
            best = min(best, time.perf_counter() - start)
        return best

    assert np.allclose(embedder.embed_query(long), embedder.embed_query(prefix), atol=1e-5)
    assert cost(long) < 3 * cost(prefix) + 0.05
