"""The HTTP API through a real `memstore serve` process on a loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from memstore import (
    AsyncMemstore,
    AuthenticationError,
    Memstore,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key(server):
    return server.key(f"acct-{uuid.uuid4().hex[:8]}").key


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_seed_curl_commands_work_verbatim(server, key):
    env = {**os.environ, "BASE": server.url, "KEY": key}
    script = """
curl -sS -X POST $BASE/v1/memory/remember -H "Authorization: Bearer $KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"content": "Competitor analysis complete: Acme Corp lacks API docs", "session": "project_alpha"}'
echo
curl -sS "$BASE/v1/memory/recall?q=competitor+analysis&session=project_alpha" -H "Authorization: Bearer $KEY"
"""
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    stored, recalled = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert stored["content"] == "Competitor analysis complete: Acme Corp lacks API docs"
    first = recalled["memories"][0]
    assert first["content"] == "Competitor analysis complete: Acme Corp lacks API docs"
    assert 0 <= first["score"] <= 1


def test_the_seed_python_snippet_runs_unchanged(server, key):
    snippet = """
from memstore import Memstore
goal, project_id = "competitor research on Acme", "project_alpha"
ms = Memstore(api_key=API_KEY)
ms.remember("Research completed for Acme: no public API docs", session=project_id)
past_work = ms.recall(goal, session=project_id)
print("\\n".join(f"- {m['content']}" for m in past_work))
"""
    env = {**os.environ, "MEMSTORE_BASE_URL": server.url}
    out = subprocess.run(
        [sys.executable, "-c", f"API_KEY = {key!r}\n" + snippet],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "- Research completed for Acme: no public API docs"


def test_remember_returns_201_then_200_when_deduplicated(http, key):
    body = {"content": "dedup me", "session": "s", "metadata": {"n": 1}, "ttl": 3600}
    first = http.post("/v1/memory/remember", json=body, headers=auth(key))
    assert first.status_code == 201 and first.json()["deduplicated"] is False
    assert set(first.json()) >= {"id", "content", "session", "metadata", "created_at", "expires_at"}
    second = http.post("/v1/memory/remember", json=body, headers=auth(key))
    assert second.status_code == 200 and second.json()["deduplicated"] is True
    assert second.json()["id"] == first.json()["id"]


def test_every_operation_through_the_sdk(server, key):
    ms = Memstore(api_key=key, base_url=server.url)
    m = ms.remember("The staging database is on port 5433", session="ops", metadata={"k": "v"})
    results = ms.remember_many(["one", {"content": "two", "session": "ops"}])
    assert [r.deduplicated for r in results] == [False, False]
    assert ms.get(m.id) == m
    assert ms.recall("staging database port", session="ops")[0].id == m.id
    assert ms.recall("staging database port", session="ops", filters={"k": "v"})[0].id == m.id
    assert ms.recall("database", session=["ops", None], limit=10)
    assert ms.update(m.id, content="The staging database is on port 5434").content.endswith("5434")
    assert {s.session: s.count for s in ms.sessions()} == {None: 1, "ops": 2}
    page = ms.list(session="ops", limit=1)
    assert len(page.memories) == 1 and page.next_cursor
    assert (
        ms.list(session="ops", limit=1, cursor=page.next_cursor).memories[0].id
        != page.memories[0].id
    )
    ms.forget(m.id)
    with pytest.raises(NotFoundError):
        ms.get(m.id)
    assert ms.forget_session("ops") == 1
    assert ms.usage().ops_used > 0
    with pytest.raises(ValidationError):
        ms.recall("x", limit=0)


def test_the_shared_session_is_forgotten_with_shared_true(server, http, key):
    ms = Memstore(api_key=key, base_url=server.url)
    ms.remember("shared note one")
    ms.remember("shared note two")
    ms.remember("kept in its session", session="kept")
    done = http.delete("/v1/memory", params={"shared": "true"}, headers=auth(key))
    assert done.status_code == 200 and done.json() == {"deleted": 2}
    assert ms.remember("shared note three") and ms.forget_session(None) == 1
    assert {s.session: s.count for s in ms.sessions()} == {"kept": 1}


def test_async_sdk(server, key):
    async def run():
        async with AsyncMemstore(api_key=key, base_url=server.url) as ms:
            await ms.remember("async memory about llamas", session="zoo")
            found = await ms.recall("llamas", session="zoo")
            return found[0].content

    assert asyncio.run(run()) == "async memory about llamas"


def test_sdk_without_a_key_explains_what_to_do(monkeypatch):
    monkeypatch.delenv("MEMSTORE_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="MEMSTORE_API_KEY"):
        Memstore()


def _seed_account(http, key) -> dict[str, str]:
    made = http.post(
        "/v1/memory/remember",
        json={"content": "A's secret plan", "session": "a-private"},
        headers=auth(key),
    ).json()
    return {"id": made["id"], "session": "a-private"}


def test_one_account_cannot_touch_anothers_memories(server, http):
    key_a = server.key("matrix-a").key
    key_b = server.key("matrix-b").key
    a = _seed_account(http, key_a)
    b = auth(key_b)
    mid = a["id"]
    assert http.get(f"/v1/memory/{mid}", headers=b).status_code == 404
    assert http.patch(f"/v1/memory/{mid}", json={"content": "x"}, headers=b).status_code == 404
    assert http.delete(f"/v1/memory/{mid}", headers=b).status_code == 404
    assert http.get("/v1/memory", params={"session": "*"}, headers=b).json()["memories"] == []
    assert http.get("/v1/memory", params={"session": "a-private"}, headers=b).json() == {
        "memories": [],
        "next_cursor": None,
    }
    recall = http.get(
        "/v1/memory/recall", params={"q": "secret plan", "session": "*"}, headers=b
    ).json()
    assert recall == {"memories": []}
    posted = http.post(
        "/v1/memory/recall", json={"query": "secret plan", "session": "a-private"}, headers=b
    ).json()
    assert posted == {"memories": []}
    assert http.get("/v1/sessions", headers=b).json() == {"sessions": []}
    assert http.delete("/v1/memory", params={"session": "a-private"}, headers=b).json() == {
        "deleted": 0
    }
    # B remembering the same content in the same session name makes B's own copy.
    copy = http.post(
        "/v1/memory/remember",
        json={"content": "A's secret plan", "session": "a-private"},
        headers=b,
    ).json()
    assert copy["id"] != mid and copy["deduplicated"] is False
    # A still has everything.
    got = http.get(f"/v1/memory/{mid}", headers=auth(key_a))
    assert got.status_code == 200 and got.json()["content"] == "A's secret plan"


def test_a_missing_id_and_a_foreign_id_look_the_same(server, http):
    key_a, key_b = server.key("same-a").key, server.key("same-b").key
    foreign = _seed_account(http, key_a)["id"]
    missing = http.get("/v1/memory/mem_doesnotexist", headers=auth(key_b))
    other = http.get(f"/v1/memory/{foreign}", headers=auth(key_b))
    assert missing.status_code == other.status_code == 404
    assert missing.json()["error"]["code"] == other.json()["error"]["code"] == "not_found"


def test_free_plan_allows_1000_ops_then_429(server, http):
    key = server.key("free-" + uuid.uuid4().hex[:6], plan="free").key
    for i in range(10):
        # Duplicates count as operations too; they just skip the embedding work.
        batch = [{"content": f"fact {j}" if i == 0 else "fact 0"} for j in range(100)]
        r = http.post("/v1/memory/remember/batch", json={"memories": batch}, headers=auth(key))
        assert r.status_code == 201, r.text
    assert r.headers["X-Quota-Limit"] == "1000" and r.headers["X-Quota-Remaining"] == "0"
    assert "X-Quota-Reset" in r.headers
    over = http.get("/v1/memory/recall", params={"q": "fact"}, headers=auth(key))
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "quota_exceeded"
    assert int(over.headers["Retry-After"]) > 0
    # Reads that are not operations still work, and usage is exact.
    assert http.get("/v1/usage", headers=auth(key)).json()["ops_used"] == 1000
    with pytest.raises(QuotaExceededError):
        Memstore(api_key=key, base_url=server.url).remember("one more")


def test_quota_is_exact_under_50_concurrent_clients(server):
    key = server.key("race-" + uuid.uuid4().hex[:6], plan="free").key
    with httpx.Client(base_url=server.url, timeout=60) as warm:
        warm.post(
            "/v1/memory/remember/batch",
            json={"memories": [{"content": f"pre {i}"} for i in range(100)]},
            headers=auth(key),
        )
        for _ in range(8):
            warm.post(
                "/v1/memory/remember/batch",
                json={"memories": [{"content": "same"}] * 100},
                headers=auth(key),
            )
    # 900 used; 50 clients x 4 recalls = 200 attempts for the last 100 ops.

    def client(_):
        codes = []
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for _ in range(4):
                codes.append(
                    c.get("/v1/memory/recall", params={"q": "pre"}, headers=auth(key)).status_code
                )
        return codes

    with ThreadPoolExecutor(50) as pool:
        codes = [c for batch in pool.map(client, range(50)) for c in batch]
    assert codes.count(200) == 100 and codes.count(429) == 100
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/v1/usage", headers=auth(key)).json()["ops_used"] == 1000


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer am_live_not_a_real_key_at_all_000000000"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_requests_without_a_valid_key_get_401(http, headers):
    r = http.get("/v1/memory/recall", params={"q": "x"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized" and r.json()["error"]["request_id"]


def test_a_revoked_key_fails_at_once(server, http):
    issued = server.key("revoke-me")
    assert http.get("/v1/sessions", headers=auth(issued.key)).status_code == 200
    out = subprocess.run(
        [
            str(sys.executable.rsplit("/", 1)[0] + "/memstore"),
            "keys",
            "revoke",
            issued.key_id,
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    r = http.get("/v1/sessions", headers=auth(issued.key))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        (
            "POST",
            "/v1/memory/remember",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "POST",
            "/v1/memory/remember",
            {"content": b"\xff\xfe\x00binary", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("POST", "/v1/memory/remember", {"json": {"content": 42}}, 422),
        ("POST", "/v1/memory/remember", {"json": {"content": "x", "ttl": "soon"}}, 422),
        (
            "POST",
            "/v1/memory/remember",
            {"json": {"content": "x", "metadata": {"a": {"b": 1}}}},
            422,
        ),
        ("POST", "/v1/memory/remember", {"json": {"content": ""}}, 422),
        ("POST", "/v1/memory/remember", {"json": {"content": "x" * (32 * 1024 + 1)}}, 422),
        ("POST", "/v1/memory/remember", {"json": {"contents": "typo"}}, 422),
        (
            "POST",
            "/v1/memory/remember",
            {
                "content": b'{"content": "x", "ttl": NaN}',
                "headers": {"Content-Type": "application/json"},
            },
            422,
        ),
        (
            "POST",
            "/v1/memory/remember",
            {
                "content": b'{"content": "' + b"x" * (1024 * 1024 + 10) + b'"}',
                "headers": {"Content-Type": "application/json"},
            },
            413,
        ),
        ("POST", "/v1/memory/remember/batch", {"json": {"memories": []}}, 422),
        (
            "POST",
            "/v1/memory/remember/batch",
            {"json": {"memories": [{"content": "x"}] * 101}},
            422,
        ),
        ("GET", "/v1/memory/recall", {"params": {"q": "x", "limit": 0}}, 422),
        ("GET", "/v1/memory/recall", {"params": {"q": "x", "limit": 10**6}}, 422),
        ("GET", "/v1/memory/recall", {"params": {"q": "x", "limit": "many"}}, 422),
        ("GET", "/v1/memory/recall", {"params": {"q": ""}}, 422),
        ("GET", "/v1/memory/recall", {}, 422),
        ("GET", "/v1/memory/recall", {"params": {"q": "x", "min_score": 2}}, 422),
        ("POST", "/v1/memory/recall", {"json": {"query": "x", "filters": {"a": [1]}}}, 422),
        ("GET", "/v1/memory", {"params": {"limit": 0}}, 422),
        ("GET", "/v1/memory", {"params": {"cursor": "garbage!"}}, 422),
        ("DELETE", "/v1/memory", {}, 422),
        ("DELETE", "/v1/memory", {"params": {"session": "x", "shared": "true"}}, 422),
        ("DELETE", "/v1/memory", {"params": {"shared": "maybe"}}, 422),
        ("GET", "/v1/memory/mem_unknown", {}, 404),
        ("PATCH", "/v1/memory/mem_unknown", {"json": {"content": "x"}}, 404),
        ("DELETE", "/v1/memory/mem_unknown", {}, 404),
        ("PATCH", "/v1/memory/mem_unknown", {"json": {}}, 422),
        ("GET", "/v1/nothing-here", {}, 404),
        ("PUT", "/v1/memory/remember", {"json": {}}, 405),
    ],
)
def test_bad_input_gets_a_documented_4xx_with_a_json_error(http, key, method, path, kwargs, status):
    headers = {**auth(key), **kwargs.pop("headers", {})}
    r = http.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] and err["message"] and err["request_id"].startswith("req_")


@pytest.mark.parametrize("query", ['"', "*", "NEAR(", "--", "'", "a' OR 1=1 --", "🙂", "مرحبا"])
def test_query_syntax_in_queries_is_just_text(http, key, query):
    session = "syntax-" + uuid.uuid4().hex[:8]  # the note is the only memory in scope
    note = {"content": f"note with {query}", "session": session}
    assert http.post("/v1/memory/remember", json=note, headers=auth(key)).status_code == 201
    r = http.get("/v1/memory/recall", params={"q": query, "session": session}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert [m["content"] for m in r.json()["memories"]] == [f"note with {query}"]


def test_health_readiness_and_openapi(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    spec = http.get("/openapi.json").json()
    assert "/v1/memory/remember" in spec["paths"] and "/v1/memory/recall" in spec["paths"]
    assert http.get("/docs").status_code == 200


def test_quota_headers_come_from_the_requests_own_count(server, http):
    key = server.key("meter-" + uuid.uuid4().hex[:6], plan="free").key
    r = http.post("/v1/memory/remember", json={"content": "counted"}, headers=auth(key))
    assert (r.headers["X-Quota-Limit"], r.headers["X-Quota-Remaining"]) == ("1000", "999")
    # A free read charges nothing, so the server has no count to report (and reads none).
    assert "X-Quota-Remaining" not in http.get("/v1/sessions", headers=auth(key)).headers
