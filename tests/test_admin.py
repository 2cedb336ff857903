"""The operator's figures: per account and in total, on both stores, and from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import httpx
import pytest

from memstore.accounts import DEFAULT_ACCOUNT, month_bounds
from memstore.client import open_local_engine
from memstore.install_stats import install_stats
from memstore.server.auth import issue_key
from tests.servers import BIN


def test_install_stats_count_each_account_and_the_install(engine, clock):
    written = clock.now
    engine.remember("acct_a", "first fact", "s1")
    engine.remember("acct_a", "second fact", "s2")
    engine.remember("acct_a", "fleeting fact", "s2", ttl=10)
    engine.remember("acct_b", "b's own fact")
    engine.recall("acct_a", "fact", "*")
    clock.advance(1)
    engine.remember("acct_a", "first fact", "s1")  # a duplicate: charged, not a new write
    clock.advance(20)  # the fleeting fact has expired

    stats = install_stats(engine.store, clock.now)

    by_id = {a.id: a for a in stats.accounts}
    a, b = by_id["acct_a"], by_id["acct_b"]
    assert (a.memories, a.sessions, a.ops_used, a.plan, a.ops_limit) == (2, 2, 5, "unlimited", None)
    assert a.last_write_at.timestamp() == pytest.approx(written, abs=1e-3)  # of a live memory
    assert (b.memories, b.sessions, b.ops_used) == (1, 1, 1)
    t = stats.totals
    assert (t.accounts, t.memories, t.sessions, t.ops_used) == (2, 3, 3, 6)
    assert t.database_bytes > 0
    assert stats.period == month_bounds(clock.now)[0]


def test_store_size_counts_rows_until_they_are_purged(engine, clock):
    engine.remember("acct_a", "kept", "s1")
    engine.remember("acct_a", "fleeting", "s2", ttl=5)
    engine.remember("acct_b", "kept too")
    clock.advance(10)
    size = engine.store.size_stats()
    assert (size.memories, size.sessions) == (3, 3)
    assert size.accounts_by_plan == {"unlimited": 2}
    engine.store.purge_expired("acct_a", clock.now)
    assert (engine.store.size_stats().memories, engine.store.size_stats().sessions) == (2, 2)


def test_admin_stats_cli_prints_figures_never_content(tmp_path):
    data = tmp_path / "data"
    engine = open_local_engine(data)
    try:
        default = engine.accounts.ensure(DEFAULT_ACCOUNT)
        engine.remember(default.id, "Secret content Narwhal", "session Narwhal")
        issue_key(engine.store, "team-b", "free")
    finally:
        engine.store.close()
    out = subprocess.run(
        [str(BIN / "memstore"), "admin", "stats", "--json", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stats = json.loads(out)
    by_name = {a["name"]: a for a in stats["accounts"]}
    assert by_name[DEFAULT_ACCOUNT]["memories"] == 1 and by_name[DEFAULT_ACCOUNT]["ops_used"] == 1
    assert by_name["team-b"]["plan"] == "free" and by_name["team-b"]["ops_limit"] == 1000
    assert stats["totals"]["memories"] == 1 and stats["totals"]["accounts"] == 2
    table = subprocess.run(
        [str(BIN / "memstore"), "admin", "stats", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "team-b" in table and "2 accounts, 1 memories" in table
    assert "Narwhal" not in out + table


def test_admin_stats_over_http_need_an_admin_key(server):
    admin = server.key("ops-admin-" + uuid.uuid4().hex[:6], admin=True)
    user = server.key("ops-user-" + uuid.uuid4().hex[:6], plan="pro")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post(
            "/v1/memory/remember",
            json={"content": "Secret content Okapi", "session": "session Okapi"},
            headers={"Authorization": f"Bearer {user.key}"},
        )
        assert r.status_code == 201
        assert client.get("/v1/admin/stats").status_code == 401
        denied = client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {user.key}"})
        assert denied.status_code == 403 and denied.json()["error"]["code"]
        r = client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {admin.key}"})
    assert r.status_code == 200
    stats = r.json()
    mine = next(a for a in stats["accounts"] if a["id"] == user.account_id)
    assert (mine["plan"], mine["ops_used"], mine["ops_limit"]) == ("pro", 1, 100_000)
    assert (mine["memories"], mine["sessions"]) == (1, 1)
    assert mine["last_activity_at"] is not None
    assert stats["totals"]["accounts"] == len(stats["accounts"])
    assert stats["totals"]["database_bytes"] > 0
    assert "Okapi" not in r.text and user.key not in r.text
