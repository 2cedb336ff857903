"""A crafted import file cannot break a store (issue 14, item 6): every line is checked
before anything is written, an error names its line, and an import is all or nothing, even
when killed with SIGKILL."""

from __future__ import annotations

import base64
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memstore.errors import ValidationError
from memstore.transfer import FORMAT, export_jsonl, import_jsonl

pytestmark = pytest.mark.reliability

BIN = Path(sys.executable).parent
A = "acct_a"


def header(embedder) -> dict:
    return {"format": FORMAT, "embedder": embedder.name, "dim": embedder.dim}


def vector(values) -> str:
    return base64.b64encode(np.asarray(values, dtype=np.float32).tobytes()).decode()


def jsonl(*records) -> io.StringIO:
    return io.StringIO("".join(json.dumps(r) + "\n" for r in records))


def good(embedder, i: int = 0) -> dict:
    unit = np.zeros(embedder.dim, np.float32)
    unit[i % embedder.dim] = 1
    return {"content": f"fine line {i}", "embedding": vector(unit)}


BAD_LINES = {
    "10-float vector": lambda d: {"content": "x", "embedding": vector([1.0] * 10)},
    "longer vector": lambda d: {"content": "x", "embedding": vector([1.0] * (d + 1))},
    "NaN vector": lambda d: {"content": "x", "embedding": vector([float("nan")] * d)},
    "infinite vector": lambda d: {"content": "x", "embedding": vector([float("inf")] * d)},
    "zero vector": lambda d: {"content": "x", "embedding": vector([0.0] * d)},
    "not base64": lambda d: {"content": "x", "embedding": "***"},
    "vector not text": lambda d: {"content": "x", "embedding": [1, 2, 3]},
    "created yesterday": lambda d: {"content": "x", "created_at": "yesterday"},
    "created as a number": lambda d: {"content": "x", "created_at": 12},
    "expires garbage": lambda d: {"content": "x", "expires_at": "2026-13-45"},
    "no content": lambda d: {"session": "s"},
    "empty content": lambda d: {"content": "  "},
    "nested metadata": lambda d: {"content": "x", "metadata": {"a": {"b": 1}}},
    "huge integer": lambda d: {"content": "x", "metadata": {"n": 2**70}},
    "bad session": lambda d: {"content": "x", "session": "a\u202eb"},
    "not an object": lambda d: ["content", "x"],
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_a_bad_line_is_refused_by_number_and_nothing_is_written(engine, kind):
    d = engine.embedder.dim
    records = [header(engine.embedder), good(engine.embedder, 1), good(engine.embedder, 2)]
    records.append(BAD_LINES[kind](d))
    with pytest.raises(ValidationError, match="line 4"):
        import_jsonl(engine, A, jsonl(*records))
    assert engine.list(A, "*").memories == []


def test_mixed_vector_lengths_are_refused(engine):
    d = engine.embedder.dim
    records = [
        header(engine.embedder),
        good(engine.embedder),
        {"content": "y", "embedding": vector([1.0] * (d // 2))},
    ]
    with pytest.raises(ValidationError, match="line 3.*dimensions"):
        import_jsonl(engine, A, jsonl(*records))
    assert engine.list(A, "*").memories == []


def test_an_exported_file_imports_whole_and_recall_still_works(engine):
    engine.remember(A, "Exported memory about the deployment", "s", {"k": 1}, ttl=3600)
    out = io.StringIO()
    export_jsonl(engine, A, out)
    assert import_jsonl(engine, "acct_b", io.StringIO(out.getvalue()))[:2] == (1, 0)
    assert engine.recall("acct_b", "deployment", "s")[0].metadata == {"k": 1}


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    line=st.dictionaries(
        st.sampled_from(
            ["content", "session", "metadata", "embedding", "created_at", "expires_at"]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=20)
        | st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=2),
    )
)
def test_any_line_imports_or_is_refused_by_number(engine, line):
    try:
        import_jsonl(engine, A, jsonl(header(engine.embedder), line))
    except ValidationError as exc:
        assert "line 2" in exc.message
    engine.recall(A, "anything", "*")
    engine.list(A, "*")


def count(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "memstore.db")
    try:
        return conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    finally:
        conn.close()


def test_the_cli_names_the_line_and_prints_no_traceback(tmp_path, embedder):
    file = tmp_path / "bad.jsonl"
    file.write_text(
        json.dumps(header(embedder)) + "\n" + json.dumps(good(embedder)) + "\n"
        '{"content": "x", "created_at": "yesterday"}\n'
    )
    out = subprocess.run(
        [str(BIN / "memstore"), "import", str(file), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "line 3" in out.stderr and "created_at" in out.stderr
    assert "Traceback" not in out.stderr
    assert count(tmp_path / "d") == 0


def test_an_import_killed_midway_leaves_nothing(tmp_path):
    """2,000 lines to embed take several seconds; SIGKILL after a few leaves 0 rows, not a
    prefix (the old import wrote every 100 lines)."""
    lines = 2000
    file = tmp_path / "big.jsonl"
    file.write_text(
        "".join(
            json.dumps({"content": f"memory number {i} of a big import"}) + "\n"
            for i in range(lines)
        )
    )
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [str(BIN / "memstore"), "import", str(file), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(8)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the import finished before it was killed"
    assert count(data) in (0, lines)
