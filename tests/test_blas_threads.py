"""Recall runs numpy's BLAS on one thread (memstore/blas.py), unless the user chose a number.

Process-wide state, so each case runs in a fresh interpreter: a real SQLite store, one
memory, one recall with a given query vector (no embedder needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="BLAS has one thread anyway")

SCRIPT = """
import sys, time
import numpy as np
from threadpoolctl import threadpool_info
from memstore.models import content_hash
from memstore.recall import RecallQuery, recall
from memstore.stores.base import MemoryRow
from memstore.stores.sqlite import SQLiteStore

def blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

store = SQLiteStore(sys.argv[1])
store.set_embedder_info("test", 8)
vector = np.eye(1, 8, dtype=np.float32)
store.insert([MemoryRow("mem_1", "a", "s", "hello", content_hash("hello"), {}, 1.0, 1.0)], vector)
before = blas_threads()
found = recall(store, vector[0], RecallQuery("a", "hello", None, 5, None, None, time.time()))
print(before, blas_threads(), len(found))
store.close()
"""


def run(tmp_path: Path, **env: str) -> list[int]:
    # the variables OpenBLAS reads at load (the embedder sets OMP_NUM_THREADS in-process)
    chosen = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    environ = {k: v for k, v in os.environ.items() if k not in chosen} | env
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "memstore.db")],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(x) for x in out.stdout.split()]


def test_recall_limits_blas_to_one_thread(tmp_path: Path) -> None:
    before, after, found = run(tmp_path)
    assert (after, found) == (1, 1)
    assert before > 1  # numpy's default: a thread per core


def test_a_thread_count_the_user_set_is_left_alone(tmp_path: Path) -> None:
    assert run(tmp_path, OPENBLAS_NUM_THREADS="2")[:2] == [2, 2]
