"""The CLI reads MEMSTORE_* through memstore.settings.Settings, as the server and the SDK do."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer

from memstore import Memstore
from memstore.cli import app
from memstore.settings import Settings
from tests.test_cli import one_line_error, run_cli

SETTING_OPTIONS = {
    "data_dir", "account", "base_url", "api_key", "database_url", "metrics", "log_format",
    "log_user_data",
}  # fmt: skip


def _options(command: click.Command, path: str = "memstore") -> list[tuple[str, click.Option]]:
    found = [(path, p) for p in command.params if isinstance(p, click.Option)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _options(sub, f"{path} {name}")
    return found


def test_no_option_reads_the_environment_itself():
    options = _options(typer.main.get_command(app))
    assert [(path, o.name, o.envvar) for path, o in options if o.envvar] == []
    from_settings = {o.name for _, o in options if "($MEMSTORE_" in (o.help or "")}
    assert from_settings == SETTING_OPTIONS and from_settings <= set(Settings.model_fields)


def test_the_environment_picks_the_store_and_account_and_flags_win(tmp_path):
    env = {"MEMSTORE_DATA_DIR": str(tmp_path / "env-dir"), "MEMSTORE_ACCOUNT": "team-b"}
    assert run_cli("remember", "kept by the environment", **env).returncode == 0
    flag = tmp_path / "flag-dir"
    assert run_cli("remember", "kept by the flag", "--data-dir", str(flag), **env).returncode == 0
    with Memstore.local(tmp_path / "env-dir", account="team-b") as ms:
        assert [m.content for m in ms.list(session="*").memories] == ["kept by the environment"]
    with Memstore.local(tmp_path / "env-dir") as ms:  # the default account saw nothing
        assert ms.list(session="*").memories == []
    with Memstore.local(flag, account="team-b") as ms:
        assert [m.content for m in ms.list(session="*").memories] == ["kept by the flag"]


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path):
    out = run_cli("sessions", "--data-dir", str(tmp_path), MEMSTORE_EMBED_HANDLES="many")
    line = one_line_error(out)
    assert line.startswith("error: MEMSTORE_EMBED_HANDLES='many': Input should be a valid integer")


def test_the_readme_table_names_the_flag_of_each_variable_the_cli_takes():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        (row[0], flag)
        for row in re.findall(r"^\| `(MEMSTORE_[A-Z_]+)` \|(.*)$", table, re.M)
        for flag in re.findall(r"`(--[a-z-]+)", row[1])
    }
    cli = {(f"MEMSTORE_{name.upper()}", "--" + name.replace("_", "-")) for name in SETTING_OPTIONS}
    assert documented == cli


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("MEMSTORE_DATA_DIR", "")
    monkeypatch.setenv("MEMSTORE_BASE_URL", "")
    settings = Settings()
    assert (settings.data_dir, settings.base_url) == ("memstore-data", "http://127.0.0.1:8420")
    assert "data_dir" not in settings.model_fields_set
