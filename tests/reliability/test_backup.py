"""`memstore backup` copies a store while a server writes to it, and the copy serves
(issue 14, item 12)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import auth, integrity_check
from tests.servers import ServerProcess

pytestmark = pytest.mark.reliability

BIN = Path(sys.executable).parent


def test_a_backup_taken_during_writes_is_sound_and_serves(tmp_path):
    server = ServerProcess(tmp_path / "live").start()
    key = server.key(f"backup-{uuid.uuid4().hex[:6]}").key
    acknowledged: list[str] = []
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=server.url, headers=auth(key), timeout=60) as http:
            i = 0
            while not stop.is_set():
                batch = [{"content": f"memory {i}-{j}", "session": "b"} for j in range(20)]
                r = http.post("/v1/memory/remember/batch", json={"memories": batch})
                assert r.status_code == 201, r.text
                acknowledged.extend(m["content"] for m in r.json()["memories"])
                i += 1

    writer = threading.Thread(target=write)
    try:
        writer.start()
        while len(acknowledged) < 200:
            stop.wait(0.05)
        before = len(acknowledged)
        out = subprocess.run(
            [
                str(BIN / "memstore"),
                "backup",
                str(tmp_path / "copy"),
                "--data-dir",
                str(server.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        stop.wait(0.5)  # writes go on after the copy
    finally:
        stop.set()
        writer.join()
        server.stop()
    assert len(acknowledged) > before
    assert integrity_check(tmp_path / "copy") == "ok"
    restored = ServerProcess(tmp_path / "copy").start()
    try:
        with httpx.Client(base_url=restored.url, headers=auth(key), timeout=60) as http:
            page = http.get("/v1/memory", params={"session": "b", "limit": 1000}).json()
            contents = {m["content"] for m in page["memories"]}
            assert set(acknowledged[:before]) <= contents  # all written before the backup
            assert contents <= set(acknowledged)
            assert (
                http.post(
                    "/v1/memory/recall", json={"query": "memory 1-1", "session": "b"}
                ).status_code
                == 200
            )
    finally:
        restored.stop()


def test_backup_refuses_to_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "memstore.db").write_bytes(b"")
    subprocess.run(
        [str(BIN / "memstore"), "remember", "a store to copy", "--data-dir", str(tmp_path / "d")],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            str(BIN / "memstore"),
            "backup",
            str(tmp_path / "copy"),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "already exists" in out.stderr
