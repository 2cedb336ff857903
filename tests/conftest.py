"""Shared fixtures: real stores on disk, the real local embedder, a controllable clock."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.stores.sqlite import SQLiteStore
from tests.servers import ServerProcess

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")


class Clock:
    """A clock tests can move forward; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One real `memstore serve` process on a free loopback port, shared by a test run."""
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def embedder():
    return load_embedder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path) -> Iterator[object]:
    """Every store backend; each test using it runs once per backend."""
    if request.param == "sqlite":
        s = SQLiteStore.open_dir(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def engine(store, embedder, clock) -> MemoryEngine:
    eng = MemoryEngine(store, embedder, clock=clock)
    eng.ensure_account("acct_a")
    eng.ensure_account("acct_b")
    return eng
