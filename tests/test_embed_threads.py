"""A text embedded alone runs on several OpenMP threads; concurrent ones run on one each.

``E5Embedder.threads_used`` counts embedding calls by the threads they ran with, so who got
how many is observable without timing anything. The process-wide cases (the settings knob,
the OpenMP worker threads really started, no thread spinning once idle) each run in a
fresh interpreter over a real SQLite store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from memstore import Memstore
from memstore.embedding import OPERATIONS, E5Embedder

LONG = "The crew compared three vendors and kept the cheapest one that had an API. " * 60
TEXTS = ["competitor analysis", "Wo ist der Bahnhof? Где вокзал?", LONG, "a"]


@pytest.fixture(scope="module")
def wide() -> E5Embedder:
    """Two handles; a lone text gets two threads (even on a one-core host)."""
    return E5Embedder(handles=2, threads=2)


@pytest.fixture(autouse=True)
def fresh_count(wide: E5Embedder) -> None:
    wide.threads_used.clear()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in 30 s"
        time.sleep(0.005)


def test_a_lone_query_runs_on_the_lone_threads(wide: E5Embedder) -> None:
    wide.embed_query("what did the crew decide")
    assert wide.threads_used == {2: 1}


def test_a_lone_remembered_text_runs_on_the_lone_threads(wide: E5Embedder) -> None:
    wide.embed_documents(["the crew decided to ship"])
    assert wide.threads_used == {2: 1}


def test_a_batch_is_split_across_handles_one_thread_each(wide: E5Embedder) -> None:
    wide.embed_documents(["one", "two", "three"])
    assert wide.threads_used == {1: 2}


def test_a_query_beside_a_busy_handle_runs_on_one_thread(wide: E5Embedder) -> None:
    with wide._model():  # another call holds one handle
        wide.embed_query("what did the crew decide")
    assert wide.threads_used == {1: 2}


def test_a_text_while_another_operation_runs_keeps_one_thread(wide: E5Embedder) -> None:
    with OPERATIONS.running():  # this recall
        wide.embed_query("what did the crew decide")
        with OPERATIONS.running():  # another client's, not embedding at this moment
            wide.embed_query("what did the crew decide")
            wide.embed_documents(["the crew decided to ship"])
    assert wide.threads_used == {2: 1, 1: 2}


class Watching:
    """The embedder protocol over ``wide``, noting how many operations ran at each call."""

    def __init__(self, inner: E5Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seen: list[int] = []

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.seen.append(OPERATIONS.count)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        self.seen.append(OPERATIONS.count)
        return self.inner.embed_query(text)


def test_the_engine_counts_its_recalls_and_remembers(wide: E5Embedder, tmp_path: Path) -> None:
    watching = Watching(wide)
    ms = Memstore.local(tmp_path, embedder=watching)
    try:
        ms.remember("the crew decided to ship", session="s")
        ms.remember_many([{"content": "one", "session": "s"}, {"content": "two", "session": "s"}])
        ms.recall("what did the crew decide", session="s")
    finally:
        ms.close()
    assert watching.seen == [1, 1, 1] and OPERATIONS.count == 0


@pytest.mark.parametrize(("waiters", "expected"), [(1, {2: 2}), (2, {2: 1, 1: 2})])
def test_calls_arriving_during_a_wide_one_wait_for_it(
    wide: E5Embedder, waiters: int, expected: dict[int, int]
) -> None:
    """The wide call runs alone: one waiter then runs wide itself, two share the handles."""
    release, taken = threading.Event(), threading.Event()

    def hold() -> None:
        with wide._model(lone=True):
            taken.set()
            release.wait()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait()
    queries = [
        threading.Thread(target=wide.embed_query, args=(f"query {i}",), daemon=True)
        for i in range(waiters)
    ]
    try:
        for q in queries:
            q.start()
        wait_until(lambda: wide._waiting == waiters)
        assert all(q.is_alive() for q in queries)
    finally:
        release.set()
    holder.join()
    for q in queries:
        q.join()
    assert wide.threads_used == expected


def test_vectors_are_the_same_on_one_thread_and_on_several(wide: E5Embedder) -> None:
    narrow = E5Embedder(handles=1, threads=1)
    for text in TEXTS:
        assert np.abs(wide.embed_query(text) - narrow.embed_query(text)).max() <= 1e-6
        one, several = narrow.embed_documents([text]), wide.embed_documents([text])
        assert np.abs(one - several).max() <= 1e-6
    assert wide.threads_used == {2: 2 * len(TEXTS)}
    assert narrow.threads_used == {1: 2 * len(TEXTS)}


SCRIPT = """
import json, os, sys, time
from memstore import Memstore
from memstore.embedding import load_embedder

def os_threads():
    return len(os.listdir("/proc/self/task"))

ms = Memstore.local(sys.argv[1])  # its embedder as the settings say
embedder = load_embedder()  # the same shared one
before = os_threads()
embedder.embed_query("when did the crew ship")
after = os_threads()
time.sleep(0.2)
cpu = time.process_time()
time.sleep(1.0)
idle_cpu = time.process_time() - cpu
print(json.dumps({"lone_threads": embedder.lone_threads, "used": embedder.threads_used,
                  "new_os_threads": after - before, "idle_cpu": idle_cpu}))
ms.close()
"""


def run_local(tmp_path: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MEMSTORE_"))}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "memstore")],
        env=environ | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: a lone query gets one thread")
def test_a_lone_query_starts_an_openmp_worker_that_sleeps_when_idle(tmp_path: Path) -> None:
    got = run_local(tmp_path)  # the default, 0: as many as handles
    assert got["lone_threads"] == 2 and got["used"] == {"2": 1}
    assert got["new_os_threads"] >= 1  # the engine's libgomp really ran a second thread
    assert got["idle_cpu"] < 0.25  # OMP_WAIT_POLICY=PASSIVE: no thread spins once idle


def test_one_thread_always_when_the_setting_says_1(tmp_path: Path) -> None:
    got = run_local(tmp_path, MEMSTORE_EMBED_THREADS="1")
    assert got["lone_threads"] == 1 and got["used"] == {"1": 1}
    assert got["new_os_threads"] == 0
