"""Admin keys: the flag on both stores, the CLI that sets it, and the ``require_admin``
dependency that guards key management (403 with the JSON error body for other keys)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from memstore.cli import app as cli
from memstore.engine import MemoryEngine
from memstore.server.app import create_app
from memstore.server.auth import AdminKey, issue_key
from memstore.stores.sqlite import DB_FILENAME, SQLiteStore


def test_the_admin_flag_and_last_use_are_stored_on_every_backend(store):
    plain = issue_key(store, "acme", "free")
    admin = issue_key(store, "ops", admin=True)
    keys = {k.id: k for k in store.list_keys()}
    assert keys[admin.key_id].admin is True and keys[plain.key_id].admin is False
    assert keys[plain.key_id].last_used_at is None
    store.touch_key(plain.key_id, 1_700_000_000.0)
    found = next(k for k in store.list_keys() if k.id == plain.key_id)
    assert found.last_used_at == 1_700_000_000.0


def test_an_old_sqlite_file_is_migrated_and_its_keys_are_not_admin(tmp_path):
    from memstore.stores.sqlite import MIGRATIONS, _split_sql

    path = tmp_path / DB_FILENAME
    db = sqlite3.connect(path)
    for statement in _split_sql(MIGRATIONS[0]):
        db.execute(statement)
    db.execute("INSERT INTO accounts VALUES ('acc_1', 'old', 'free', 1.0)")
    db.execute("INSERT INTO api_keys VALUES ('key_1', 'acc_1', 'am_live_abc', 'h', 1.0, NULL)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    try:
        (key,) = store.list_keys()
        assert key.id == "key_1" and key.admin is False and key.last_used_at is None
    finally:
        store.close()


@pytest.fixture
def guarded(tmp_path, embedder):
    """The real app with one extra route behind ``require_admin``."""
    store = SQLiteStore.open_dir(tmp_path / "data")
    app = create_app(engine=MemoryEngine(store, embedder))

    @app.get("/probe")
    def probe(key: AdminKey) -> dict[str, str]:
        return {"key_id": key.id}

    with TestClient(app) as client:
        yield store, client
    store.close()


def test_require_admin_lets_admin_keys_through_and_refuses_others_with_403(guarded):
    store, client = guarded
    admin = issue_key(store, "ops", admin=True)
    plain = issue_key(store, "acme")
    ok = client.get("/probe", headers={"Authorization": f"Bearer {admin.key}"})
    assert ok.status_code == 200 and ok.json() == {"key_id": admin.key_id}
    refused = client.get("/probe", headers={"Authorization": f"Bearer {plain.key}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "admin" in refused.json()["error"]["message"]
    assert client.get("/probe").status_code == 401
    store.revoke_key(admin.key_id, 0)
    assert client.get("/probe", headers={"Authorization": f"Bearer {admin.key}"}).status_code == 401


def test_a_request_records_when_its_key_was_last_used(guarded):
    store, client = guarded
    plain = issue_key(store, "acme")
    client.get("/v1/usage", headers={"Authorization": f"Bearer {plain.key}"})
    (key,) = [k for k in store.list_keys() if k.id == plain.key_id]
    assert key.last_used_at is not None


def test_cli_creates_admin_keys_and_lists_the_flag(tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    made = runner.invoke(cli, ["keys", "create", "--account", "ops", "--admin", "--json", *data])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["admin"] is True
    plain = runner.invoke(cli, ["keys", "create", "--account", "acme", "--json", *data])
    assert json.loads(plain.output)["admin"] is False
    listed = json.loads(runner.invoke(cli, ["keys", "list", "--json", *data]).output)
    assert {k["account"]: k["admin"] for k in listed} == {"ops": True, "acme": False}
    table = runner.invoke(cli, ["keys", "list", *data], env={"COLUMNS": "200"}).output
    assert "admin" in table and "never" in table
