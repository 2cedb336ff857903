"""A hostile client against a real `memstore serve` (issue 14, items 2, 3, 4, 5 and 11):
bad bytes get a JSON 4xx and change nothing; slow clients are dropped in bounded time; one
account's request rate is limited without touching another's."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import uuid

import anyio
import httpx
import pytest

from memstore import Memstore, RateLimitError
from memstore.server.app import create_app
from memstore.server.limits import AccountLimits
from memstore.server.settings import Settings
from tests.reliability.conftest import auth, integrity_check
from tests.servers import ServerProcess

pytestmark = pytest.mark.reliability

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def key(server) -> str:
    return server.key(f"hostile-{uuid.uuid4().hex[:8]}").key


@pytest.fixture(scope="module")
def http(server, key):
    with httpx.Client(base_url=server.url, headers=auth(key), timeout=60) as client:
        yield client


def used(http) -> int:
    return http.get("/v1/usage").json()["ops_used"]


# -- item 4: a string that is not valid Unicode, anywhere, is a 422 that changes nothing
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/v1/memory/remember",
            b'{"content":"x","session":"p","metadata":{"k":"\\ud800"}}',
        ),
        ("POST", "/v1/memory/remember", b'{"content":"x","metadata":{"\\udc00":"v"}}'),
        ("POST", "/v1/memory/remember", b'{"content":"x","session":"\\ud800"}'),
        (
            "POST",
            "/v1/memory/remember/batch",
            b'{"memories":[{"content":"ok"},{"content":"x","metadata":{"k":"\\udfff"}}]}',
        ),
        ("POST", "/v1/memory/recall", b'{"query":"x","session":"\\ud800"}'),
        ("POST", "/v1/memory/recall", b'{"query":"x","session":["a","\\ud800"]}'),
        ("POST", "/v1/memory/recall", b'{"query":"x","filters":{"k":"\\ud800"}}'),
        ("POST", "/v1/memory/recall", b'{"query":"\\ud800 x"}'),
        ("PATCH", "{id}", b'{"metadata":{"k":"\\ud800"}}'),
        ("PATCH", "{id}", b'{"content":"a\\udbffb"}'),
    ],
)
def test_lone_surrogates_anywhere_are_refused_and_change_nothing(http, method, path, body):
    good = http.post("/v1/memory/remember", json={"content": "good one", "session": "p"})
    path = path.replace("{id}", f"/v1/memory/{good.json()['id']}")
    before = used(http)
    r = http.request(method, path, content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert used(http) == before
    assert http.get("/v1/memory", params={"session": "*"}).status_code == 200
    assert http.post("/v1/memory/recall", json={"query": "good", "session": "*"}).status_code == 200
    assert http.get(f"/v1/memory/{good.json()['id']}").json()["metadata"] == {}


# -- item 5: integers past 64 bits anywhere are a 4xx, never a 500
@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/memory", {"params": {"cursor": base64.b64encode(b"s9223372036854775808")}}),
        ("GET", "/v1/memory", {"params": {"cursor": "czk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"}}),
        ("GET", "/v1/memory", {"params": {"limit": "18446744073709551616"}}),
        ("GET", "/v1/memory/recall", {"params": {"q": "x", "limit": "9" * 30}}),
        (
            "POST",
            "/v1/memory/recall",
            {"content": b'{"query":"x","filters":{"n":18446744073709551616}}'},
        ),
        ("POST", "/v1/memory/recall", {"content": b'{"query":"x","limit":18446744073709551616}'}),
        (
            "POST",
            "/v1/memory/remember",
            {"content": b'{"content":"x","metadata":{"n":' + b"9" * 400 + b"}}"},
        ),
        ("POST", "/v1/memory/remember", {"content": b'{"content":"x","ttl":' + b"9" * 400 + b"}"}),
    ],
)
def test_huge_integers_are_a_4xx_and_not_charged(http, method, path, kwargs):
    before = used(http)
    r = http.request(method, path, headers=JSON, **kwargs)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] in ("invalid_request", "bad_request")
    assert used(http) == before


# -- item 11: strict types, body limits, URL limits, Allow
@pytest.mark.parametrize(
    "body",
    [
        {"content": "x", "ttl": True},
        {"content": "x", "ttl": "10"},
        {"content": "x", "session": 5},
        {"content": 7},
    ],
)
def test_values_of_the_wrong_json_type_are_refused_not_coerced(http, body):
    r = http.post("/v1/memory/remember", json=body)
    assert r.status_code == 422, r.text


def test_a_recall_limit_given_as_a_string_is_refused(http):
    assert http.post("/v1/memory/recall", json={"query": "x", "limit": "5"}).status_code == 422


def test_a_chunked_body_over_one_mib_is_a_413(http):
    def chunks():
        for _ in range(20):
            yield b"x" * 65536

    r = http.post("/v1/memory/remember", content=chunks(), headers=JSON)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"


def test_an_overlong_url_gets_a_json_error(server):
    """Past 16 KiB of request line and headers the server answers and closes. (64 KiB here,
    sent at once, so that the server has read it all when it closes: unread bytes would
    make its kernel reset the connection and drop the answer before the client reads it.)"""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /v1/memory/recall?q=" + b"a" * 65536)
        _, data = closed_after(sock, 15)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] in (b"400", b"414"), data[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_options_lists_every_method_of_the_path(http):
    r = http.options("/v1/memory/recall")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}


def test_the_store_is_sound_after_the_hostile_requests(server, http):
    assert integrity_check(server.data_dir) == "ok"


# -- items 2 and 3: a server with short timeouts and a low rate limit
@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    env = {
        "MEMSTORE_HEADER_TIMEOUT_SECONDS": "1",
        "MEMSTORE_BODY_TIMEOUT_SECONDS": "1",
        "MEMSTORE_RATE_LIMIT_PER_MINUTE": "20",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("strict") / "data", env=env).start()
    yield proc
    proc.stop()


def closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (at most ``limit``), and what it sent."""
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return time.monotonic() - start, data


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"POST /v1/memory/remem", b""),  # half a request line
        (b"POST /v1/memory/remember HTTP/1.1\r\nHost: x\r\nAuthori", b""),  # half the headers
        (  # all the headers, half the body (no key needed to hold a connection)
            b"POST /v1/memory/remember HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 100\r\n\r\n{"content": "x',
            b"408",
        ),
        (b"", b""),  # connect and send nothing
    ],
)
def test_half_sent_requests_are_dropped_in_bounded_time(strict_server, sent, answer):
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", strict_server.port))
        s.sendall(sent)
        socks.append(s)
    try:
        waited, data = closed_after(socks[-1], 15)
        assert waited < 10, f"connection still open after {waited:.1f}s"
        assert answer in data
        if answer:
            assert b'"request_timeout"' in data
    finally:
        for s in socks:
            s.close()
    assert httpx.get(strict_server.url + "/healthz").status_code == 200


def test_a_keys_request_rate_is_limited_with_retry_after(strict_server):
    key = strict_server.key(f"rate-{uuid.uuid4().hex[:6]}").key
    other = strict_server.key(f"rate-{uuid.uuid4().hex[:6]}").key
    with httpx.Client(base_url=strict_server.url, headers=auth(key)) as http:
        statuses = [http.get("/v1/sessions").status_code for _ in range(25)]
        assert statuses.count(200) >= 20 and statuses[-1] == 429
        r = http.get("/v1/sessions")
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
    assert httpx.get(strict_server.url + "/v1/sessions", headers=auth(other)).status_code == 200
    with Memstore(api_key=key, base_url=strict_server.url, max_retries=0) as ms:
        with pytest.raises(RateLimitError) as caught:
            ms.sessions()
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    with Memstore(api_key=key, base_url=strict_server.url, max_retries=3) as ms:
        start = time.monotonic()
        assert ms.sessions() == []  # waited for Retry-After, then got through
        assert time.monotonic() - start >= 1


def test_an_accounts_concurrent_requests_are_capped_and_others_are_not():
    async def scenario() -> None:
        limits = AccountLimits(per_minute=0, concurrent=2, wait_seconds=0.2)
        held = [await limits.acquire("a"), await limits.acquire("a")]
        with pytest.raises(RateLimitError) as caught:
            await limits.acquire("a")
        assert caught.value.retry_after == 1
        assert await limits.acquire("b") is not None
        held[0].release()
        assert await limits.acquire("a") is not None

    asyncio.run(scenario())


# -- item 2: health and readiness never wait for a worker thread
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_answers_while_every_worker_thread_is_busy(engine, path):
    app = create_app(Settings(), engine=engine)

    async def scenario() -> int:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        release = threading.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, release.wait)
            await anyio.sleep(0.1)  # the only worker thread is now taken
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    with anyio.fail_after(10):
                        return (await client.get(path)).status_code
            finally:
                release.set()

    assert anyio.run(scenario) == 200
