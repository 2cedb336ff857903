"""Crash durability: every acknowledged remember survives a SIGKILL of whoever wrote it.

A writer sends remembers as fast as it can; the server (or an SDK local-mode process) is
killed with SIGKILL at a random moment while writes are in flight, then restarted on the
same data directory. Afterwards every write that was acknowledged (a 2xx, or a returned
Memory) must be readable by id and by listing, and SQLite's integrity check must pass.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from memstore import Memstore
from tests.reliability.conftest import auth, integrity_check
from tests.servers import ServerProcess

pytestmark = pytest.mark.reliability


@dataclass
class Acked:
    """Writes the writer saw acknowledged: memory id -> content."""

    memories: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # non-2xx answers: there must be none
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, memory_id: str, content: str) -> None:
        with self.lock:
            self.memories[memory_id] = content

    def __len__(self) -> int:
        return len(self.memories)


def _write_until(url: str, key: str, stop: threading.Event, acked: Acked, name: str) -> None:
    """Send remembers (single and batches of short texts) until ``stop`` or the server dies."""
    n = 0
    with httpx.Client(base_url=url, headers=auth(key), timeout=30) as client:
        while not stop.is_set():
            n += 1
            texts = [f"{name} {n} {i} {uuid.uuid4().hex[:6]}" for i in range(1 if n % 3 else 5)]
            try:
                if len(texts) == 1:
                    r = client.post("/v1/memory/remember", json={"content": texts[0]})
                    made = [r.json()] if r.is_success else []
                else:
                    r = client.post(
                        "/v1/memory/remember/batch",
                        json={"memories": [{"content": t, "session": name} for t in texts]},
                    )
                    made = r.json()["memories"] if r.is_success else []
            except (httpx.TransportError, ValueError):
                return  # the server is gone; no acknowledgement for this request
            if not r.is_success:
                acked.refused.append(f"{r.status_code} {r.text[:200]}")
            for m in made:
                acked.add(m["id"], m["content"])


def _all_ids(client: httpx.Client) -> set[str]:
    ids, cursor = set(), None
    while True:
        params = {"session": "*", "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/memory", params=params).json()
        ids |= {m["id"] for m in page["memories"]}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def run_server_crash_cycles(tmp_path: Path, cycles: int, window: float, writers: int) -> Acked:
    """Kill a writing server ``cycles`` times; return what had been acknowledged."""
    rng = random.Random()
    server = ServerProcess(tmp_path / "data")
    server.start()
    key = server.key("crash").key
    acked = Acked()
    for cycle in range(cycles):
        if cycle:
            server.start()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_write_until, args=(server.url, key, stop, acked, f"c{cycle}w{w}")
            )
            for w in range(writers)
        ]
        before = len(acked)
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) == before and time.monotonic() < deadline:
            time.sleep(0.01)  # kill only once writes are flowing
        time.sleep(rng.uniform(0, window))
        server.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert server.proc.returncode == -signal.SIGKILL
        assert not acked.refused, acked.refused[:3]
        assert integrity_check(server.data_dir) == "ok", f"cycle {cycle}"
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=auth(key), timeout=30) as client:
            missing = [
                mid
                for mid, content in acked.memories.items()
                if (r := client.get(f"/v1/memory/{mid}")).status_code != 200
                or r.json()["content"] != content
            ]
            assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
            assert set(acked.memories) <= _all_ids(client)
    finally:
        server.stop()
    assert integrity_check(server.data_dir) == "ok"
    print(f"server crash: {cycles} SIGKILLs survived, {len(acked)} acknowledged writes verified")
    return acked


def test_acknowledged_remembers_survive_20_server_kills(tmp_path):
    acked = run_server_crash_cycles(tmp_path, cycles=20, window=0.5, writers=3)
    assert len(acked) >= 20


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_acknowledged_remembers_survive_50_longer_server_kills(tmp_path):
    acked = run_server_crash_cycles(tmp_path, cycles=50, window=3.0, writers=6)
    assert len(acked) >= 50


LOCAL_WRITER = """
import sys, uuid
from memstore import Memstore
ms = Memstore.local(sys.argv[1])
n = 0
while True:
    n += 1
    if n % 4:
        made = [ms.remember(f"local {n} {uuid.uuid4().hex[:6]}", session="local")]
    else:
        made = [r.memory for r in ms.remember_many([f"batch {n} {i}" for i in range(5)])]
    for m in made:
        print(m.id, m.content, sep="\\t", flush=True)
"""


def run_local_crash_cycles(data_dir: Path, cycles: int, window: float) -> dict[str, str]:
    """SIGKILL an SDK local-mode writer process mid-write ``cycles`` times."""
    rng = random.Random()
    acked: dict[str, str] = {}
    for _ in range(cycles):
        proc = subprocess.Popen(
            [sys.executable, "-c", LOCAL_WRITER, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(proc.stdout,))
        reader.start()
        deadline = time.monotonic() + 60
        while not lines and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lines, proc.stderr.read()
        time.sleep(rng.uniform(0, window))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join()
        for line in lines:
            if line.endswith("\n"):  # a line cut by the kill was never acknowledged
                mid, content = line.rstrip("\n").split("\t", 1)
                acked[mid] = content
        assert integrity_check(data_dir) == "ok"
    with Memstore.local(data_dir) as ms:
        for mid, content in acked.items():
            assert ms.get(mid).content == content
        listed, cursor = set(), None
        while True:
            page = ms.list(session="*", limit=1000, cursor=cursor)
            listed |= {m.id for m in page.memories}
            if not (cursor := page.next_cursor):
                break
        assert set(acked) <= listed
    assert integrity_check(data_dir) == "ok"
    print(f"local crash: {cycles} SIGKILLs survived, {len(acked)} acknowledged writes verified")
    return acked


def test_acknowledged_local_writes_survive_kill_9_of_the_writer(tmp_path):
    acked = run_local_crash_cycles(tmp_path / "data", cycles=8, window=0.5)
    assert len(acked) >= 8


@pytest.mark.slow
def test_acknowledged_local_writes_survive_20_longer_kills(tmp_path):
    acked = run_local_crash_cycles(tmp_path / "data", cycles=20, window=3.0)
    assert len(acked) >= 20
