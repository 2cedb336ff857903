"""One account everywhere: the server's first key, the CLI and Memstore.local share
'default'; --account picks another; export/import --all is a whole-store backup; stores
made before accounts were unified keep their data."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest

from memstore import Memstore
from memstore.accounts import PLANS, Accounts
from memstore.errors import AuthenticationError, ValidationError
from memstore.stores.sqlite import SQLiteStore
from tests.servers import ServerProcess
from tests.test_local_sdk import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def counts(sessions: list[dict]) -> list[dict]:
    """Sessions without their last_write time."""
    return [{"session": s["session"], "count": s["count"]} for s in sessions]


def test_server_cli_and_local_sdk_see_the_same_memories(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        key = re.search(r"am_live_[A-Za-z0-9]{32,}", server.log()).group(0)
        r = httpx.post(
            server.url + "/v1/memory/remember",
            json={"content": "stored over HTTP", "session": "project_alpha"},
            headers=auth(key),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        cli = run_cli("remember", "stored by the CLI", "--session", "project_alpha",
                      "--data-dir", str(data))  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        with Memstore.local(data) as ms:
            ms.remember("stored in-process", session="project_alpha")
        sessions = httpx.get(server.url + "/v1/sessions", headers=auth(key), timeout=60).json()
        assert counts(sessions["sessions"]) == [{"session": "project_alpha", "count": 3}]
    finally:
        server.stop()
    listed = run_cli("sessions", "--data-dir", str(data), "--json")
    assert counts(json.loads(listed.stdout)) == [{"session": "project_alpha", "count": 3}]


def test_account_option_and_argument_keep_accounts_apart(tmp_path):
    with Memstore.local(tmp_path, account="team-b") as b:
        b.remember("only team B knows this")
    with Memstore.local(tmp_path) as default:
        assert default.list(session="*").memories == []
    out = run_cli("list", "--account", "team-b", "--data-dir", str(tmp_path), "--json")
    assert [m["content"] for m in json.loads(out.stdout)["memories"]] == ["only team B knows this"]


def test_a_key_for_an_account_named_local_does_not_break_local_commands(tmp_path):
    d = str(tmp_path)
    made = run_cli("keys", "create", "--account", "local", "--data-dir", d, "--json")
    assert made.returncode == 0, made.stderr
    for args in (["remember", "x"], ["sessions"], ["remember", "y", "--account", "local"]):
        out = run_cli(*args, "--data-dir", d)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr


def test_keys_are_verified_by_hash_and_revocable(tmp_path):
    store = SQLiteStore.open_dir(tmp_path)
    try:
        accounts = Accounts(store)
        issued = accounts.create_key("team", "free")
        assert accounts.verify(f"Bearer {issued.key}") == issued.account_id
        assert issued.key not in (tmp_path / "memstore.db").read_bytes().decode("latin-1")
        assert [k.account for k in accounts.list_keys()] == ["team"]
        assert accounts.usage(issued.account_id).ops_limit == PLANS["free"]
        assert accounts.revoke_key(issued.key_id)
        with pytest.raises(AuthenticationError, match="revoked"):
            accounts.verify(f"Bearer {issued.key}")
        with pytest.raises(ValidationError):
            accounts.create_key("other", "platinum")
    finally:
        store.close()


def test_export_all_restores_every_account_and_key(tmp_path):
    src, dst, file = tmp_path / "src", tmp_path / "dst", tmp_path / "all.jsonl"
    with Memstore.local(src) as ms:
        ms.remember("default's fact", session="s")
    made = run_cli("keys", "create", "--account", "team-b", "--plan", "pro",
                   "--data-dir", str(src), "--json")  # fmt: skip
    key = json.loads(made.stdout)["key"]
    with Memstore.local(src, account="team-b") as ms:
        ms.remember("team B's fact")
    assert run_cli("export", str(file), "--all", "--data-dir", str(src)).returncode == 0
    single = run_cli("import", str(file), "--data-dir", str(dst))
    assert single.returncode == 2 and "--all" in single.stderr
    out = run_cli("import", str(file), "--all", "--data-dir", str(dst))
    assert out.returncode == 0 and "imported 2" in out.stderr, out.stderr
    store = SQLiteStore.open_dir(dst)
    try:
        accounts = Accounts(store)
        team_b = accounts.verify(f"Bearer {key}")  # the same key works after the restore
        assert accounts.usage(team_b).plan == "pro"
    finally:
        store.close()
    with Memstore.local(dst, account="team-b") as ms:
        assert [m.content for m in ms.list(session="*").memories] == ["team B's fact"]
    with Memstore.local(dst) as ms:
        assert [m.content for m in ms.list(session="*").memories] == ["default's fact"]


def _copy_fixture(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    return data


def test_a_store_made_before_accounts_were_unified_merges_local_into_default(tmp_path):
    """The fixture was made by memstore 95051cb: the CLI wrote 3 memories to the hidden
    'local' account, the server's 'default' key 2 (one of them the same as the CLI's)."""
    data = _copy_fixture(tmp_path)
    keys = dict(line.split() for line in (data / "KEYS.txt").read_text().splitlines())
    with Memstore.local(data) as ms:
        contents = sorted(m.content for m in ms.list(session="*").memories)
        assert contents == [
            "A shared note from the CLI",
            "Acme Corp lacks API docs",
            "Both faces know this",
            "Written over HTTP",
        ]
        assert ms.recall("Acme API docs", session="project_alpha")[0].content == (
            "Acme Corp lacks API docs"
        )
        assert ms.usage().ops_used == 4 + 2 + 1  # local's 4 ops + default's 2 + this recall
    store = SQLiteStore.open_dir(data)
    try:
        accounts = Accounts(store)
        assert sorted(a.name for a in accounts.list_accounts()) == ["default", "team-b"]
        default = accounts.verify(f"Bearer {keys['default']}")
        assert accounts.ensure("default").id == default
        team_b = accounts.verify(f"Bearer {keys['team-b']}")
        assert [r.content for r in store.list_memories(team_b, None, 10, None, 0.0)] == [
            "Team B's own memory"
        ]
    finally:
        store.close()


def test_a_cli_only_store_gets_a_default_account_with_its_memories(tmp_path):
    data = _copy_fixture(tmp_path)
    db = sqlite3.connect(data / "memstore.db")
    with db:
        db.execute("DELETE FROM api_keys")
        db.execute("DELETE FROM usage WHERE account_id != 'local'")
        db.execute("DELETE FROM memories WHERE account_id != 'local'")
        db.execute("DELETE FROM accounts WHERE id != 'local'")
    db.close()
    out = run_cli("list", "--data-dir", str(data), "--json")
    assert len(json.loads(out.stdout)["memories"]) == 3
    store = SQLiteStore.open_dir(data)
    try:
        assert [a.name for a in store.list_accounts()] == ["default"]
        assert store.list_accounts()[0].id.startswith("acc_")
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_migration_merges_local_into_default(empty_pg_url):
    """A database at schema 1 (as 95051cb left it) with a 'local' and a 'default' account."""
    import psycopg

    from memstore.stores.postgres import MIGRATIONS, PostgresStore

    old = empty_pg_url
    with psycopg.connect(old) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
        conn.execute(MIGRATIONS[0])  # type: ignore[arg-type]
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
        conn.execute("ALTER TABLE memories ALTER COLUMN embedding TYPE vector(2)")
        conn.execute(
            "INSERT INTO accounts VALUES ('local', 'local', 'unlimited', 1),"
            " ('acc_1', 'default', 'unlimited', 2), ('acc_2', 'team-b', 'free', 3)"
        )
        rows = [
            ("m1", "local", "p", "cli only", "h1"),
            ("m2", "local", "p", "both", "h2"),
            ("m3", "acc_1", "p", "both", "h2"),
            ("m4", "acc_1", "", "http only", "h3"),
            ("m5", "acc_2", "", "team b", "h4"),
        ]
        for row in rows:
            conn.execute(
                "INSERT INTO memories (id, account_id, session, content, content_hash,"
                " embedding, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, '[1,0]', 1, 1)",
                row,
            )
        conn.execute(
            "INSERT INTO usage VALUES ('local', '2026-11', 4), ('acc_1', '2026-11', 2),"
            " ('local', '2026-10', 1)"
        )
    store = PostgresStore(old, pool_size=2)
    try:
        assert sorted((a.id, a.name) for a in store.list_accounts()) == [
            ("acc_1", "default"),
            ("acc_2", "team-b"),
        ]
        mine = store.list_memories("acc_1", None, 10, None, 0.0)
        assert sorted(m.id for m in mine) == ["m1", "m3", "m4"]
        assert (store.get_usage("acc_1", "2026-11"), store.get_usage("acc_1", "2026-10")) == (6, 1)
        assert [m.id for m in store.list_memories("acc_2", None, 10, None, 0.0)] == ["m5"]
    finally:
        store.close()


def test_memstore_account_picks_the_local_account(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSTORE_ACCOUNT", "team-c")
    with Memstore.local(tmp_path) as ms:
        ms.remember("written as team C")
    monkeypatch.delenv("MEMSTORE_ACCOUNT")
    with Memstore.local(tmp_path, account="team-c") as ms:
        assert [m.content for m in ms.list(session="*").memories] == ["written as team C"]
    with Memstore.local(tmp_path) as ms:
        assert ms.list(session="*").memories == []
