"""Closing a SQLite store while other threads are reading must not crash the process: each
thread's read connection is held for its query, and close() waits for it."""

from __future__ import annotations

import subprocess
import sys

RACE = """
import sqlite3, sys, threading, time
from pathlib import Path
from memstore.stores.sqlite import SQLiteStore

COUNT = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)"

def once(path):
    store = SQLiteStore(path)
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                store._read("SELECT count(*) FROM memories")
                store._read(COUNT + " SELECT sum(x) FROM c")
            except (sqlite3.ProgrammingError, sqlite3.OperationalError):
                return  # the store was closed: a clean error, not a crash

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.02)
    store.close()
    stop.set()
    for t in threads:
        t.join()

for i in range(int(sys.argv[2])):
    once(str(Path(sys.argv[1]) / f"store{i}.db"))
print("closed cleanly")
"""


def test_closing_a_store_while_threads_read_does_not_crash(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", RACE, str(tmp_path), "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "closed cleanly" in result.stdout
