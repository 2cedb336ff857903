"""Prometheus metrics for a running server, off unless it enables them (``--metrics``).

Every hook here is a cheap no-op until ``enable()`` is called, so the engine can call them
unconditionally (the SDK's local mode never enables them). Labels are only ever route
templates, methods, statuses, plans, operation and stage names: never an account, session,
key or any content (for cardinality and for privacy).

With several worker processes, ``memstore serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
directory of its own before the workers start; prometheus-client then keeps each worker's
values in files there, and a scrape of any worker reports the sum over all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Recall and request latencies: 1 ms to 30 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGES = ("embedding", "dense", "keyword", "context", "fusion")

_metrics: _Metrics | None = None


class _Metrics:
    """The metric objects, created once per process by ``enable()``."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        # The *_created series would double the output for little use.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client: no hints

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multi-process mode values live in files and a scrape builds its own registry.
        self.registry = None if self.multiprocess else CollectorRegistry()
        reg: Any = {"registry": self.registry}
        self.requests = Counter(
            "memstore_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            **reg,
        )
        self.request_seconds = Histogram(
            "memstore_http_request_duration_seconds",
            "Time from receiving a request to the end of its response.",
            ["route", "method", "status"],
            buckets=BUCKETS,
            **reg,
        )
        self.stage_seconds = Histogram(
            "memstore_recall_stage_duration_seconds",
            "Time spent in each stage of a recall: " + ", ".join(STAGES) + ".",
            ["stage"],
            buckets=BUCKETS,
            **reg,
        )
        self.embed_wait = Histogram(
            "memstore_embedding_wait_seconds",
            "Time a call waited for a free embedding model handle.",
            buckets=(0.0005,) + BUCKETS,
            **reg,
        )
        self.embed_waiting = Gauge(
            "memstore_embedding_waiting",
            "Calls waiting for a free embedding model handle now (the embedding queue).",
            multiprocess_mode="livesum",
            **reg,
        )
        self.operations = Counter(
            "memstore_operations",
            "Charged operations by kind (remember counts each memory; recall) and plan.",
            ["op", "plan"],
            **reg,
        )
        self.quota_refusals = Counter(
            "memstore_quota_refusals",
            "Requests refused because the account's monthly operations were used up, by plan.",
            ["plan"],
            **reg,
        )
        self.purge_runs = Counter(
            "memstore_purge_runs", "Runs of the periodic purge of expired memories.", **reg
        )
        self.purged = Counter(
            "memstore_purged_memories", "Expired memories deleted by the periodic purge.", **reg
        )


def enable() -> None:
    """Turn metrics on in this process (idempotent)."""
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()


def enabled() -> bool:
    return _metrics is not None


def _noop(stage: str) -> None:
    return None


def laps() -> Callable[[str], None]:
    """A lap timer: each call ``lap("stage")`` records the time since the previous call
    (or since ``laps()``) under that recall stage. A no-op when metrics are off."""
    m = _metrics
    if m is None:
        return _noop
    last = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal last
        now = time.perf_counter()
        m.stage_seconds.labels(stage).observe(now - last)
        last = now

    return lap


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a block as one recall stage (a no-op when metrics are off)."""
    m = _metrics
    if m is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        m.stage_seconds.labels(name).observe(time.perf_counter() - start)


@contextmanager
def embedding_wait() -> Iterator[None]:
    """Wrap the wait for a free model handle: counts waiters and times the wait."""
    m = _metrics
    if m is None:
        yield
        return
    m.embed_waiting.inc()
    start = time.perf_counter()
    try:
        yield
    finally:
        m.embed_wait.observe(time.perf_counter() - start)
        m.embed_waiting.dec()


def count_ops(op: str, plan: str, n: int = 1) -> None:
    if _metrics is not None:
        _metrics.operations.labels(op, plan).inc(n)


def quota_refused(plan: str) -> None:
    if _metrics is not None:
        _metrics.quota_refusals.labels(plan).inc()


def purge_ran(purged: int) -> None:
    if _metrics is not None:
        _metrics.purge_runs.inc()
        _metrics.purged.inc(purged)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    if _metrics is not None:
        labels = (route, method, str(status))
        _metrics.requests.labels(*labels).inc()
        _metrics.request_seconds.labels(*labels).observe(seconds)


def render(extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric (summed over workers) plus the
    collectors in ``extra`` (computed now); and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    enable()
    assert _metrics is not None
    registry = CollectorRegistry()
    if _metrics.multiprocess:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # no hints upstream
    else:
        registry.register(_Forward(_metrics.registry))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """Exposes another registry's metrics inside a per-scrape registry."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterable[Any]:
        metrics: Iterable[Any] = self.source.collect()
        return metrics
