"""`memstore invalidate`, `memstore stats`, --supersedes, --on-similar, --include-superseded
and --as-of, on a local store and against a real server."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.test_cli import one_line_error, run_cli

OLD = "Acme Corp lacks API docs"
NEW = "Acme Corp shipped API docs"


def cli_json(*args: str) -> dict:
    out = run_cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(params=["local", "server"])
def where(request, tmp_path) -> list[str]:
    if request.param == "local":
        return ["--data-dir", str(tmp_path / "d")]
    server = request.getfixturevalue("server")
    key = server.key(f"cli-{uuid.uuid4().hex[:8]}").key
    return ["--base-url", server.url, "--api-key", key]


def test_supersede_invalidate_list_and_stats_from_the_shell(where):
    old = cli_json("remember", OLD, "--session", "f", *where)["memory"]["id"]
    new = cli_json("remember", NEW, "--session", "f", "--supersedes", old, *where)["memory"]
    found = cli_json("recall", "Acme docs", "--session", "f", *where)["memories"]
    assert [m["content"] for m in found] == [NEW]
    every = cli_json("recall", "Acme docs", "--session", "f", "--include-superseded", *where)
    assert {m["id"]: m["superseded_by"] for m in every["memories"]}[old] == new["id"]
    then = cli_json("list", "--session", "f", "--as-of", new["created_at"], *where)
    assert [m["content"] for m in then["memories"]] == [NEW]
    gone = cli_json("invalidate", new["id"], *where)
    assert gone["superseded_at"] is not None
    assert cli_json("list", "--session", "f", *where)["memories"] == []
    table = run_cli("list", "--session", "f", "--include-superseded", *where, COLUMNS="200")
    assert "superseded" in table.stdout
    figures = cli_json("stats", *where)
    assert (figures["memories"], figures["current"], figures["superseded"]) == (2, 0, 2)
    text = run_cli("stats", "--session", "f", *where, COLUMNS="200")
    assert text.returncode == 0 and "never recalled" in text.stdout


def test_on_similar_from_the_shell(where):
    run = "Crew run (topic: pricing): researched Acme; result: Acme leads on price, run {}"
    for n in (1, 2):
        cli_json("remember", run.format(n), "--session", "r", "--on-similar", "supersede", *where)
    listed = cli_json("list", "--session", "r", *where)["memories"]
    assert [m["content"] for m in listed] == [run.format(2)]


@pytest.mark.parametrize(
    "args",
    [
        ["recall", "x", "--as-of", "yesterday"],
        ["list", "--as-of", "1e400"],
        ["remember", "x", "--on-similar", "replace"],
        ["invalidate", "mem_missing"],
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, args):
    d = str(tmp_path / "d")
    assert run_cli("remember", "seed", "--data-dir", d).returncode == 0
    assert one_line_error(run_cli(*args, "--data-dir", d))


@pytest.mark.parametrize("command", ["invalidate", "stats", "remember", "recall", "list"])
def test_help_shows_the_new_flags_as_flags(command):
    out = run_cli(command, "--help", COLUMNS="200")
    assert out.returncode == 0, out.stderr
    assert "<bool>" not in out.stdout and "<list" not in out.stdout
    wanted = {
        "remember": ["--supersedes", "--on-similar"],
        "recall": ["--include-superseded", "--as-of"],
        "list": ["--include-superseded", "--as-of"],
        "stats": ["--session"],
        "invalidate": ["ID"],
    }[command]
    assert all(flag in out.stdout for flag in wanted), out.stdout
