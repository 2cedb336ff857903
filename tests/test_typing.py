"""mypy is strict on the whole of src/ (.ci/run runs it): no module relaxes the settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_turns_strict_checks_off():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["strict"] is True and mypy["files"] == ["src"]
    relaxed = {"disable_error_code", "strict", "disallow_untyped_defs", "check_untyped_defs"}
    for override in mypy.get("overrides", []):
        assert set(override) <= {"module", "ignore_missing_imports"}, override
        assert not relaxed & set(override)
