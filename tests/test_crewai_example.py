"""examples/crewai_research.py as the README runs it: the venv's python, --data-dir, --record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.crewai

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "crewai_research.py"


def run_example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),  # crewai writes under $HOME and its storage dir
        "CREWAI_STORAGE_DIR": str(tmp_path / "crewai-storage"),
        "TMPDIR": str(tmp_path),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    }
    cmd = [sys.executable, str(EXAMPLE), "--offline", "--crew", "research", *args]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run


def test_the_second_run_shows_what_it_recalled_on_the_console(tmp_path):
    data = str(tmp_path / "memstore-data")
    first = run_example(tmp_path, "--data-dir", data)
    assert "-- recalled for Researcher: nothing yet" in first.stdout
    record = tmp_path / "prompts.json"
    second = run_example(tmp_path, "--data-dir", data, "--record", str(record))
    assert "-- recalled for Researcher: 1" in second.stdout
    assert "Crew run for topic=AI agent memory" in second.stdout
    assert any(c["agent"] == "Researcher" for c in json.loads(record.read_text()))


def test_the_example_documents_its_flags():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, timeout=120
    )
    assert "--data-dir" in out.stdout and "--record FILE" in out.stdout
    assert ".venv/bin/python" in EXAMPLE.read_text()
