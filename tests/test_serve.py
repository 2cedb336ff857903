"""`memstore serve` as an operator runs it: first key, workers, graceful shutdown."""

from __future__ import annotations

import re
import signal

import httpx

from tests.servers import ServerProcess


def test_serve_on_an_empty_store_prints_a_first_key_that_works(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        key = re.search(r"am_live_[A-Za-z0-9]{32,}", server.log()).group(0)
        r = httpx.post(
            server.url + "/v1/memory/remember",
            json={"content": "first"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert r.status_code == 201
        keys = httpx.get(
            server.url + "/v1/admin/keys", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        assert keys.status_code == 200  # the first key is an admin key
    finally:
        # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells why.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Waiting for application shutdown" in server.log()
    assert "Finished server process" in server.log()
    # Restarting does not print a new key.
    again = ServerProcess(tmp_path / "data").start()
    try:
        assert not re.search(r"am_live_[A-Za-z0-9]{32,}", again.log())
    finally:
        again.stop()


def test_two_workers_share_one_store(tmp_path):
    server = ServerProcess(tmp_path / "data", workers=2).start()
    try:
        key = server.key("workers").key
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            for i in range(6):  # new connections land on either worker
                assert c.post("/v1/memory/remember", json={"content": f"w{i}"}).status_code == 201
        for _ in range(6):
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
                got = c.get("/v1/memory/recall", params={"q": "w5", "limit": 10}).json()
                assert len(got["memories"]) == 6
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
