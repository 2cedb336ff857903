"""What the console needs from the server, over HTTP to a real `memstore serve`: its page and
assets with a strict Content-Security-Policy, and the /v1 routes it reads (me, usage per
day, export, sessions with their last write)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from importlib import resources

import httpx
import pytest

from memstore import Memstore


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_the_root_redirects_to_the_console(http):
    r = http.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/console"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/console", "text/html"),
        ("/console/static/console.js", "text/javascript"),
        ("/console/static/console.css", "text/css"),
    ],
)
def test_console_files_are_served_with_a_strict_content_security_policy(http, path, kind):
    r = http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no third party
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_unknown_console_files_are_404_json(http):
    r = http.get("/console/static/..%2Fapp.py")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_console_page_has_no_inline_script_and_never_parses_data_as_html():
    static = resources.files("memstore.server.console").joinpath("static")
    page = static.joinpath("index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/console/static/' in attrs and not body for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    code = static.joinpath("console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, f"console.js uses {sink}"
    assert "http://" not in code.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in code + page  # nothing is loaded from elsewhere


def test_me_names_the_keys_account_plan_and_role(server, http):
    plain = server.key(f"me-{uuid.uuid4().hex[:6]}", "free")
    admin = server.key(f"me-admin-{uuid.uuid4().hex[:6]}", admin=True)
    got = http.get("/v1/me", headers=auth(plain.key)).json()
    assert got == {
        "account_id": plain.account_id,
        "account": plain.account_name,
        "plan": "free",
        "key_id": plain.key_id,
        "key_prefix": plain.key[:14],
        "admin": False,
    }
    assert http.get("/v1/me", headers=auth(admin.key)).json()["admin"] is True
    assert http.get("/v1/me").status_code == 401


def test_usage_per_day_counts_this_accounts_operations_today(server, http):
    key = server.key(f"daily-{uuid.uuid4().hex[:6]}").key
    other = server.key(f"daily-{uuid.uuid4().hex[:6]}").key
    ms = Memstore(api_key=key, base_url=server.url)
    ms.remember("one")
    ms.remember_many(["two", "three"])
    ms.recall("one")
    Memstore(api_key=other, base_url=server.url).remember("someone else's")
    got = http.get("/v1/usage/daily", headers=auth(key)).json()
    today = datetime.now(UTC)
    assert got["period"] == f"{today:%Y-%m}"
    assert got["days"] == [{"day": f"{today:%Y-%m-%d}", "ops": 4}]
    assert http.get("/v1/usage", headers=auth(key)).json()["ops_used"] == 4


def test_export_is_the_memstore_export_format_of_this_account_only(server, http):
    key = server.key(f"export-{uuid.uuid4().hex[:6]}").key
    other = server.key(f"export-{uuid.uuid4().hex[:6]}").key
    Memstore(api_key=other, base_url=server.url).remember("not mine")
    ms = Memstore(api_key=key, base_url=server.url)
    ms.remember("old", session="a", metadata={"k": 1})
    ms.remember("new")
    r = http.get("/v1/export", headers=auth(key))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in r.headers["content-disposition"]
    header, *records = (json.loads(line) for line in r.text.splitlines())
    assert header["format"] == "memstore-export/1" and header["dim"] > 0
    assert [(m["content"], m["session"], m["metadata"]) for m in records] == [
        ("old", "a", {"k": 1}),
        ("new", None, {}),
    ]
    assert all(m["embedding"] for m in records)


def test_sessions_carry_their_last_write(server, http):
    key = server.key(f"last-{uuid.uuid4().hex[:6]}").key
    ms = Memstore(api_key=key, base_url=server.url)
    first = ms.remember("a", session="s")
    ms.remember("b")
    updated = ms.update(first.id, content="a, edited")
    sessions = {
        s["session"]: s for s in http.get("/v1/sessions", headers=auth(key)).json()["sessions"]
    }
    assert sessions["s"]["last_write"] == updated.updated_at.isoformat().replace("+00:00", "Z")
    assert sessions[None]["count"] == 1 and sessions[None]["last_write"]


def test_usage_per_day_is_counted_with_the_monthly_total_on_every_backend(store):
    store.create_account("acct_a", "a", "free", 0.0)
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    period = today[:7]
    assert store.add_usage("acct_a", period, 2, 3) == 2
    assert store.add_usage("acct_a", period, 2, 3) is None  # over the cap: counts nothing
    assert store.add_usage("acct_a", period, 1, 3) == 3
    assert store.usage_days("acct_a", period) == [(today, 3)]
    assert store.usage_days("acct_b", period) == []
    assert store.usage_days("acct_a", "1999-01") == []


def test_sessions_report_their_last_write_on_every_backend(store):
    import numpy as np

    from memstore.engine import content_hash, new_memory_id
    from memstore.stores.base import MemoryRow

    store.set_embedder_info("test-embedder", 4)
    rows = [
        MemoryRow(new_memory_id(), "acct_a", session, text, content_hash(text), {}, at, at)
        for session, text, at in [("s", "one", 10.0), ("s", "two", 30.0), ("", "three", 20.0)]
    ]
    store.insert(rows, np.eye(3, 4, dtype=np.float32))
    assert store.sessions("acct_a", 40.0) == [("", 1, 20.0), ("s", 2, 30.0)]
