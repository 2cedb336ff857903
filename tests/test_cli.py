"""The `memstore` command as a newcomer meets it: one-line errors, help, tables, a server."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

from memstore import Memstore
from tests.servers import ServerProcess

BIN = Path(sys.executable).parent
COMMANDS = [
    "remember", "recall", "list", "get", "update", "forget", "forget-session", "sessions",
    "usage", "export", "import", "serve", "keys", "keys create", "keys list", "keys revoke",
]  # fmt: skip


def run_cli(*args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MEMSTORE_")}
    return subprocess.run(
        [str(BIN / "memstore"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=input,
        env={**environ, "COLUMNS": "80", **env},
    )


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The error line, after checking it is the only line and there is no traceback."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    """A store with one memory, and an export of it, shared by the read-only tests."""
    d = tmp_path_factory.mktemp("cli") / "data"
    with Memstore.local(d) as ms:
        ms.remember("The client prefers weekly reports", session="alpha")
    assert run_cli("export", str(d.parent / "dump.jsonl"), "--data-dir", str(d)).returncode == 0
    return d


def _broken_exports(dump: Path) -> dict[str, Path]:
    header, record = dump.read_text().splitlines()[:2]
    cases = {
        "bad timestamp": {"created_at": "yesterday-ish"},
        "bad vector": {"embedding": base64.b64encode(b"\x01\x02\x03").decode()},
    }
    files = {}
    for name, change in cases.items():
        path = dump.with_name(name.replace(" ", "_") + ".jsonl")
        path.write_text(header + "\n" + json.dumps({**json.loads(record), **change}) + "\n")
        files[name] = path
    return files


@pytest.mark.parametrize("case", ["missing file", "bad timestamp", "bad vector"])
def test_import_problems_are_one_line_errors(store_dir, tmp_path, case):
    files = {"missing file": Path("/nonexistent.jsonl")}
    files.update(_broken_exports(store_dir.parent / "dump.jsonl"))
    one_line_error(run_cli("import", str(files[case]), "--data-dir", str(tmp_path / "new")))


@pytest.mark.parametrize("command", [["list"], ["serve", "--port", "1"], ["keys", "list"]])
def test_a_data_dir_that_is_a_file_is_one_line_error(tmp_path, command):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    line = one_line_error(run_cli(*command, "--data-dir", str(afile)))
    assert "is a file, not a directory" in line


@pytest.mark.parametrize("command", [["list"], ["remember", "x"], ["serve", "--port", "1"]])
def test_a_store_that_is_not_a_database_is_one_line_error(tmp_path, command):
    (tmp_path / "memstore.db").write_bytes(b"this is no SQLite file " * 100)
    line = one_line_error(run_cli(*command, "--data-dir", str(tmp_path)))
    assert "memstore.db is not a memstore database" in line


@pytest.mark.parametrize(
    "command",
    [["list"], ["recall", "x"], ["sessions"], ["get", "mem_x"], ["export", "out.jsonl"], ["usage"]],
)
def test_read_only_commands_do_not_create_a_store(tmp_path, command):
    missing = tmp_path / "typo"
    line = one_line_error(run_cli(*command, "--data-dir", str(missing)))
    assert f"no memstore store in {missing}" in line
    assert not missing.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_as_flags(command):
    out = run_cli(*command.split(), "--help")
    assert out.returncode == 0, out.stderr
    for bad in (r"<bool>", r"<list", r"<str>", r"\{[a-z_]+\}"):  # typer 0.26+: `{content}`
        assert not re.search(bad, out.stdout), (bad, out.stdout)


def test_nested_metadata_is_the_same_one_line_error_as_over_http(tmp_path):
    out = run_cli("remember", "x", "--metadata", '{"a": {"b": 1}}', "--data-dir", str(tmp_path))
    line = one_line_error(out)
    assert line.endswith(
        "metadata['a'] must be a string, number, boolean or null (metadata is flat)"
    )


def test_version_names_the_installed_distribution():
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"memstore {version('memstore-ai')}"


def test_list_in_80_columns_keeps_whole_ids(store_dir):
    out = run_cli("list", "--data-dir", str(store_dir))
    assert out.returncode == 0, out.stderr
    with Memstore.local(store_dir) as ms:
        ids = [m.id for m in ms.list(session="*").memories]
    assert ids and all(i in out.stdout for i in ids), out.stdout


def test_forget_session_asks_first_and_counts_in_the_singular(tmp_path):
    d = str(tmp_path / "d")
    with Memstore.local(d) as ms:
        ms.remember("chat note", session="chat")
    no = run_cli("forget-session", "chat", "--data-dir", d, input="n\n")
    assert no.returncode != 0 and "Forget every memory of session 'chat'?" in no.stdout
    with Memstore.local(d) as ms:
        assert ms.sessions()[0].count == 1
    yes = run_cli("forget-session", "chat", "--data-dir", d, input="y\n")
    assert yes.returncode == 0 and "forgot 1 memory of session 'chat'" in yes.stdout
    out = run_cli("forget-session", "chat", "--yes", "--data-dir", d)
    assert out.returncode == 0 and "forgot 0 memories of session 'chat'" in out.stdout


def test_update_and_usage_on_the_local_store(tmp_path):
    d = str(tmp_path / "d")
    made = json.loads(run_cli("remember", "draft", "--data-dir", d, "--json").stdout)
    memory_id = made["memory"]["id"]
    out = run_cli("update", memory_id, "--content", "final", "--data-dir", d, "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["content"] == "final"
    used = json.loads(run_cli("usage", "--data-dir", d, "--json").stdout)
    assert used["ops_used"] >= 2


def test_cli_talks_to_a_server_by_flags_or_environment(server, tmp_path):
    key = server.key(f"cli-{uuid.uuid4().hex[:8]}").key
    flags = ["--base-url", server.url, "--api-key", key]
    out = run_cli("remember", "Remote CLI note on Acme", "--session", "r", *flags)
    assert out.returncode == 0, out.stderr
    env = {"MEMSTORE_BASE_URL": server.url + "/v1", "MEMSTORE_API_KEY": key}
    found = run_cli("recall", "Acme", "--session", "r", "--json", **env)
    assert json.loads(found.stdout)["memories"][0]["content"] == "Remote CLI note on Acme"
    assert "r" in run_cli("sessions", "--json", **env).stdout
    assert not (tmp_path / "memstore-data").exists()
    bad = run_cli("list", "--base-url", server.url, "--api-key", "am_live_wrong")
    assert "invalid API key" in one_line_error(bad)


def test_serve_on_a_store_with_keys_says_how_to_get_another(tmp_path):
    data = tmp_path / "data"
    assert run_cli("keys", "create", "--data-dir", str(data)).returncode == 0
    server = ServerProcess(data).start()
    try:
        assert f"memstore keys create --data-dir {data}" in server.log()
    finally:
        server.stop()
