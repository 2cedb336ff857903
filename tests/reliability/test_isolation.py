"""Tenant isolation and key handling.

Every /v1 operation in the server's own OpenAPI document (so a new route is covered the day
it is added) is called with account B's key against account A's ids, sessions, cursors and
metadata filters: B must never see, change or delete anything of A's, and a foreign id must
look exactly like a missing one (404, never 403). Keys must never reach the log, must be
looked up by hash and compared in constant time, and a revoked key must fail at once.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from memstore import accounts as accounts_module
from memstore.errors import AuthenticationError
from memstore.server import auth as auth_module
from memstore.stores.sqlite import DB_FILENAME, SQLiteStore
from tests.reliability.conftest import auth
from tests.servers import ServerProcess

pytestmark = pytest.mark.reliability


class Victim:
    """Account A: memories in the shared session and a private one, with secret content."""

    def __init__(self, client: httpx.Client, key: str, key_id: str = "") -> None:
        self.key = key
        self.key_id = key_id
        self.secret = "zq" + uuid.uuid4().hex  # a word only A's memories contain
        self.session = "a-private-" + uuid.uuid4().hex[:6]
        self.metadata = {"owner": "alice", "tier": 3}
        self.ids: dict[str, str] = {}
        for session in (None, self.session):
            for n in range(3):
                content = f"A's secret plan number {n} {self.secret}"
                r = client.post(
                    "/v1/memory/remember",
                    json={"content": content, "session": session, "metadata": self.metadata},
                    headers=auth(key),
                )
                assert r.status_code == 201, r.text
                self.ids[r.json()["id"]] = content
        page = client.get(
            "/v1/memory", params={"session": "*", "limit": 1}, headers=auth(key)
        ).json()
        self.cursor = page["next_cursor"]

    def leaked_in(self, text: str, sent: str) -> list[str]:
        """A's markers in ``text`` that the request itself did not carry."""
        return [m for m in [self.secret, *self.ids] if m in text and m not in sent]


def _resolve(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return spec["components"]["schemas"][name]
    return schema


def _value(name: str, a: Victim, session: str | None) -> Any:
    """What B sends for a parameter or body field of this name, aimed at A's data."""
    return {
        "memory_id": next(iter(a.ids)),
        "q": "secret plan",
        "query": "secret plan",
        "session": session,
        "shared": "true" if session is None else None,  # DELETE /v1/memory: B's shared one
        "cursor": a.cursor,
        "filters": a.metadata,
        "limit": 100,
        "min_score": 0,
        "content": "probe from B",
        "metadata": {"probe": "b"},
        "memories": [{"content": "probe from B", "session": session}],
        "key_id": a.key_id,  # /v1/admin: B's key is not an admin key, so always 403
        "account": "probe-from-b",
        "plan": "unlimited",
        "admin": True,
        "include_superseded": True,  # issue 16: B sees no more of A with every version
        "as_of": None,
        "supersedes": [next(iter(a.ids))],  # B cannot supersede A's memory: 404
        "on_similar": "supersede",
        "collapse": True,  # issue 16: collapsed ids (similar_ids) are A's only if B saw A's
        "explain": True,  # why.neighbor_of names a memory id: never one of A's
    }.get(name, ...)


def _requests(spec: dict, a: Victim) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per operation and session variant, every input filled from A's data."""
    out = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in operations.items():
            for session in (a.session, "*", None):
                url, params, body = path, {}, None
                for p in op.get("parameters", []):
                    if p["in"] == "header":
                        continue
                    value = _value(p["name"], a, session)
                    assert value is not ..., f"teach this test to fill {p['name']!r} ({path})"
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", value)
                    elif value is not None:
                        params[p["name"]] = value
                if "requestBody" in op:
                    schema = _resolve(
                        spec, op["requestBody"]["content"]["application/json"]["schema"]
                    )
                    body = {}
                    for field in schema["properties"]:
                        value = _value(field, a, session)
                        if value is ... or (field == "session" and value is None):
                            assert field not in schema.get("required", []), (
                                f"teach this test to fill {field!r} ({path})"
                            )
                            continue
                        body[field] = value
                out.append((method.upper(), url, {"params": params, "json": body}))
    return out


def test_account_b_cannot_reach_account_as_data_through_any_route(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        issued_a = server.key("iso-a-" + uuid.uuid4().hex[:6])
        a = Victim(client, issued_a.key, issued_a.key_id)
        key_b = server.key("iso-b-" + uuid.uuid4().hex[:6]).key
        spec = client.get("/openapi.json").json()
        calls = _requests(spec, a)
        # Reads and writes first, deletes last, so the deletes also meet B's own probes.
        calls.sort(key=lambda c: c[0] == "DELETE")
        operations = [(m, p) for p, ops in spec["paths"].items() if p[:3] == "/v1" for m in ops]
        assert len(operations) >= 11 and len(calls) == 3 * len(operations)
        for method, url, kwargs in calls:
            kwargs = {k: v for k, v in kwargs.items() if v or k == "params"}
            if method in ("GET", "DELETE"):
                kwargs.pop("json", None)
            r = client.request(method, url, headers=auth(key_b), **kwargs)
            where = f"{method} {url} {kwargs}"
            if url.startswith("/v1/admin/"):  # key management: admin keys only
                assert r.status_code == 403, f"{where}: {r.status_code}"
                assert r.json()["error"]["code"] == "forbidden"
                continue
            assert r.status_code < 500 and r.status_code != 403, f"{where}: {r.status_code}"
            assert not a.leaked_in(r.text, where), f"{where} leaked A's data: {r.text[:300]}"
            if "{memory_id}" in next(p for p in spec["paths"] if _matches(p, url)):
                assert r.status_code == 404, f"{where}: {r.status_code}"
        # A still has every memory, unchanged.
        for mid, content in a.ids.items():
            got = client.get(f"/v1/memory/{mid}", headers=auth(a.key))
            assert got.status_code == 200 and got.json()["content"] == content
            assert got.json()["metadata"] == a.metadata
        sessions = client.get("/v1/sessions", headers=auth(a.key)).json()["sessions"]
        assert {s["session"]: s["count"] for s in sessions} == {None: 3, a.session: 3}
        # A's key is still active, and B created no key.
        assert client.get("/v1/usage", headers=auth(a.key)).status_code == 200
        admin = server.key("iso-admin-" + uuid.uuid4().hex[:6], admin=True)
        keys = client.get("/v1/admin/keys", headers=auth(admin.key)).json()["keys"]
        assert not [k for k in keys if k["account"] == "probe-from-b"]


def test_every_route_refuses_no_key_and_a_revoked_key(server):
    """No key, or a revoked one (even a revoked admin key): 401 on every /v1 route."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        issued_a = server.key("iso-r-" + uuid.uuid4().hex[:6])
        a = Victim(client, issued_a.key, issued_a.key_id)
        revoked = server.key("iso-r-admin-" + uuid.uuid4().hex[:6], admin=True)
        store = SQLiteStore.open_dir(server.data_dir)
        try:
            assert store.revoke_key(revoked.key_id, 0)
        finally:
            store.close()
        spec = client.get("/openapi.json").json()
        for method, url, kwargs in _requests(spec, a):
            kwargs = {k: v for k, v in kwargs.items() if v or k == "params"}
            if method in ("GET", "DELETE"):
                kwargs.pop("json", None)
            for headers in ({}, auth(revoked.key)):
                r = client.request(method, url, headers=headers, **kwargs)
                assert r.status_code == 401, f"{method} {url} {headers}: {r.status_code}"
                assert r.json()["error"]["code"] == "unauthorized"
                assert not a.leaked_in(r.text, url)


def _matches(template: str, url: str) -> bool:
    parts, actual = template.split("/"), url.split("/")
    return len(parts) == len(actual) and all(
        p == q or p.startswith("{") for p, q in zip(parts, actual, strict=True)
    )


def test_keys_never_reach_the_server_log(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        good = server.key("log-" + uuid.uuid4().hex[:6])
        revoked = server.key("log-" + uuid.uuid4().hex[:6])
        store = SQLiteStore.open_dir(server.data_dir)
        try:
            assert store.revoke_key(revoked.key_id, 0)
        finally:
            store.close()
        forged = good.key[:-4] + "AAAA"
        attempts = [
            ("GET", "/v1/usage", {"Authorization": f"Bearer {good.key}"}),
            ("GET", "/v1/memory/mem_nope", {"Authorization": f"Bearer {good.key}"}),
            ("GET", "/v1/memory/recall", {"Authorization": f"Bearer {good.key}"}),
            ("GET", "/v1/usage", {"Authorization": f"Bearer {revoked.key}"}),
            ("GET", "/v1/usage", {"Authorization": f"Bearer {forged}"}),
            ("GET", "/v1/usage", {"Authorization": f"Token {good.key}"}),
            ("GET", "/v1/usage", {"Authorization": f"Bearer {good.key} trailing"}),
            ("GET", "/v1/usage", {"Authorization": f"{good.key}"}),
            ("POST", "/v1/memory/remember", {"Authorization": f"Bearer {good.key}"}),
        ]
        for method, path, headers in attempts:
            r = client.request(method, path, headers=headers, content=b"{bad")
            assert r.status_code < 500
            assert good.key not in r.text and revoked.key not in r.text
        big = client.post(
            "/v1/memory/remember",
            content=b"x" * (2 * 1024 * 1024),
            headers={**auth(good.key), "Content-Type": "application/json"},
        )
        assert big.status_code == 413
    log = server.log()
    assert "GET /v1/usage" in log  # the access log is on, so the check means something
    for secret in (good.key, revoked.key, forged):
        assert secret not in log and secret[len("am_live_") + 6 :] not in log


def test_keys_are_stored_only_as_hashes(server):
    issued = server.key("hash-" + uuid.uuid4().hex[:6])
    raw = (server.data_dir / DB_FILENAME).read_bytes()
    for path in server.data_dir.glob(DB_FILENAME + "*"):
        raw += path.read_bytes()
    assert issued.key.encode() not in raw
    assert hashlib.sha256(issued.key.encode()).hexdigest().encode() in raw


def test_keys_are_looked_up_by_hash_and_compared_in_constant_time(tmp_path, monkeypatch):
    store = SQLiteStore.open_dir(tmp_path)
    try:
        issued = auth_module.issue_key(store, "ct")
        looked_up, compared = [], []
        real_find, real_compare = store.find_key, hmac.compare_digest
        monkeypatch.setattr(store, "find_key", lambda h: looked_up.append(h) or real_find(h))
        # Only accounts.py's own hmac: other code (cursor signatures, a server thread of an
        # earlier test) may compare digests at the same time.
        monkeypatch.setattr(
            accounts_module,
            "hmac",
            SimpleNamespace(
                compare_digest=lambda x, y: compared.append((x, y)) or real_compare(x, y)
            ),
        )
        assert auth_module.authenticate(store, f"Bearer {issued.key}") == issued.account_id
        digest = hashlib.sha256(issued.key.encode()).hexdigest()
        assert looked_up == [digest]  # the plaintext key never reaches the database
        assert compared == [(digest, digest)]
        with pytest.raises(AuthenticationError):
            wrong = issued.key[:-1] + ("y" if issued.key.endswith("x") else "x")  # one char off
            auth_module.authenticate(store, f"Bearer {wrong}")
    finally:
        store.close()


def test_a_revoked_key_fails_at_once_on_every_worker(tmp_path):
    server = ServerProcess(tmp_path / "data", workers=2).start()
    try:
        issued = server.key("revoke-" + uuid.uuid4().hex[:6])
        for _ in range(8):  # fresh connections, so both workers serve the key first
            with httpx.Client(base_url=server.url, headers=auth(issued.key)) as c:
                assert c.get("/v1/usage").status_code == 200
        store = SQLiteStore.open_dir(server.data_dir)
        try:
            assert store.revoke_key(issued.key_id, 0)
        finally:
            store.close()
        for _ in range(8):
            with httpx.Client(base_url=server.url, headers=auth(issued.key)) as c:
                r = c.get("/v1/usage")
                assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
