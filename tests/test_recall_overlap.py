"""A cold recall searches keywords beside the query's embedding, and returns what a cached
one returns (issue 15)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from memstore.embedding import Embedder
from memstore.engine import MemoryEngine

A = "acct_a"
NOTES = [
    "The deploy to staging failed because the database migration timed out",
    "Acme Corp lacks API docs; their sales team promised them by March",
    "We switched the billing service from cron jobs to a queue consumer",
    "Caroline adopted a dog from the shelter last weekend",
    "The staging database needs a bigger disk before the next migration",
    "Our API docs are generated from the OpenAPI document on each release",
]
QUERIES = ["why did the staging deploy fail", "API docs", "what pet did Caroline get", "billing"]


class WatchedEmbedder:
    """The real embedder; records which threads were alive while each query was embedded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.alive: list[set[str]] = []

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        self.alive.append(
            {t.name for t in threading.enumerate()} - {threading.current_thread().name}
        )
        return self.inner.embed_query(text)


def test_a_cold_recall_runs_its_keyword_search_on_another_thread_while_it_embeds(
    store, embedder, clock
):
    watched = WatchedEmbedder(embedder)
    engine = MemoryEngine(store, watched, clock=clock)
    engine.ensure_account(A)
    engine.remember_many(A, [{"content": n} for n in NOTES])
    engine.recall(A, "why did the staging deploy fail")
    assert any(name.startswith("memstore-keywords") for name in watched.alive[-1])


def test_cold_and_cached_recalls_return_the_same_memories_in_the_same_order(
    engine: MemoryEngine,
):
    engine.remember_many(A, [{"content": n, "session": "s"} for n in NOTES])
    for query in QUERIES:
        engine._queries.clear()
        cold = engine.recall(A, query, session="s", limit=6)
        cached = engine.recall(A, query, session="s", limit=6)
        assert [m.id for m in cold] == [m.id for m in cached]
        assert [m.score for m in cold] == [m.score for m in cached]


class FailingEmbedder(WatchedEmbedder):
    """Stores memories with the real model; every query's embedding fails."""

    def embed_query(self, text: str) -> np.ndarray:
        raise RuntimeError("the model failed")


class SlowKeywords:
    """The real store, with a keyword search that takes a while and says when it ended."""

    def __init__(self, store: object) -> None:
        self.store, self.finished = store, threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def keyword_search(self, *args: object) -> object:
        time.sleep(0.3)
        try:
            return self.store.keyword_search(*args)
        finally:
            self.finished.set()


def test_a_failed_recall_waits_for_its_keyword_search_before_raising(store, embedder, clock):
    """Its caller may close the store next: the search beside it has ended by then."""
    engine = MemoryEngine(store, FailingEmbedder(embedder), clock=clock)
    engine.ensure_account(A)
    engine.remember_many(A, [{"content": n} for n in NOTES])
    slow = SlowKeywords(store)
    engine.store = slow
    with pytest.raises(RuntimeError, match="the model failed"):
        engine.recall(A, "why did the staging deploy fail")
    assert slow.finished.is_set()
