"""Both HTTP protocol classes (httptools, and h11 where httptools is missing) keep the same
promises on a real uvicorn: a header timeout, a 16 KiB head limit with a JSON 400, and
keep-alive and pipelined requests that still work (server/protocol.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from memstore.server import protocol
from memstore.server.protocol import MemstoreH11Protocol, server_protocol
from memstore.server.protocol_httptools import MemstoreHttpToolsProtocol

PROTOCOLS = [MemstoreHttpToolsProtocol, MemstoreH11Protocol]


async def hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A minimal ASGI app: 200 and the path, after reading the whole body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow-answer":
        await asyncio.sleep(1.5)  # longer than the header timeout
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=PROTOCOLS, ids=lambda p: p.__name__)
def port(request, monkeypatch) -> Iterator[int]:
    monkeypatch.setenv("MEMSTORE_HEADER_TIMEOUT_SECONDS", "1")
    protocol.header_timeout.cache_clear()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    config = uvicorn.Config(
        hello,
        host="127.0.0.1",
        port=free,
        http=request.param,
        log_level="warning",
        h11_max_incomplete_event_size=protocol.MAX_HEAD_BYTES,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)
    protocol.header_timeout.cache_clear()


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[float, bytes]:
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return time.monotonic() - start, data


def test_serve_runs_httptools_when_it_is_installed():
    assert server_protocol() is MemstoreHttpToolsProtocol


def test_a_head_over_16_kib_gets_a_json_400_and_a_close(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /x?q=" + b"a" * 65536)
        _, data = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"400", data[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_a_head_just_under_the_limit_is_served(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        path = b"/" + b"a" * 12_000
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _, data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    assert data.endswith(path)


@pytest.mark.parametrize(
    "sent", [b"", b"GET /slow HT", b"GET /slow HTTP/1.1\r\nHost: x\r\nX-A"], ids=repr
)
def test_a_head_not_sent_in_time_is_dropped(port, sent):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        waited, data = read_until_closed(sock)
    assert waited < 5, f"still open after {waited:.1f} s"
    assert data == b""


def test_an_idle_keep_alive_connection_is_dropped_after_its_answer(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        waited, data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"/one")
    assert waited < 5


def test_pipelined_requests_are_all_answered_and_not_cut_by_the_timer(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        _, data = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200") == 3, data
    assert data.endswith(b"/c")


def test_a_pipelined_request_slower_than_the_header_timeout_is_answered(port):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /slow-answer HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        sock.settimeout(5)
        data = b""
        while not data.endswith(b"/slow-answer") and (chunk := sock.recv(65536)):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 2, data
    assert data.endswith(b"/slow-answer")


def test_a_slow_but_complete_conversation_keeps_its_connection(port):
    """Requests on one connection, each head sent in time, all answered."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        for i in range(3):
            sock.sendall(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(f"/{i}".encode())
            time.sleep(0.5)
