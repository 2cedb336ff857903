"""Settings: one class names every MEMSTORE_* variable, and the README lists each one."""

from __future__ import annotations

import re
from pathlib import Path

from memstore.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _variables() -> set[str]:
    return {"MEMSTORE_" + name.upper() for name in Settings.model_fields}


def test_every_variable_the_code_reads_is_a_setting():
    used = set()
    for path in (ROOT / "src" / "memstore").rglob("*.py"):
        used |= set(re.findall(r"MEMSTORE_[A-Z_]+[A-Z]", path.read_text()))
    assert used <= _variables()


def test_the_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(MEMSTORE_[A-Z_]+)`", table, re.M)) == _variables()


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEMSTORE_ACCOUNT", "team-b")
    monkeypatch.setenv("MEMSTORE_DATABASE_POOL_SIZE", "3")
    settings = Settings()
    assert (settings.account, settings.database_pool_size) == ("team-b", 3)
