"""The SDK's local mode and the CLI, through real files and real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memstore import EmbedderMismatchError, Memstore, NotFoundError

BIN = Path(sys.executable).parent


def test_local_memstore_supports_the_seed_snippet(tmp_path):
    ms = Memstore.local(tmp_path)
    ms.remember("Research completed for Acme: they lack API docs", session="project_x")
    past_work = ms.recall("Acme research", session="project_x")
    text = "\n".join(f"- {m['content']}" for m in past_work)
    assert text == "- Research completed for Acme: they lack API docs"
    assert 0 <= past_work[0]["score"] <= 1 and past_work[0].score == past_work[0]["score"]


def test_memories_survive_a_new_process(tmp_path):
    script = (
        "from memstore import Memstore; import sys\n"
        "Memstore.local(sys.argv[1]).remember('The client prefers weekly reports', session='u1')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    found = Memstore.local(tmp_path).recall("how often does the client want reports", session="u1")
    assert found[0].content == "The client prefers weekly reports"


class OtherEmbedder:
    name = "test-random-64"
    dim = 64

    def embed_documents(self, texts):
        return np.ones((len(texts), 64), dtype=np.float32) / 8

    def embed_query(self, text):
        return np.ones(64, dtype=np.float32) / 8


def test_opening_a_store_with_another_embedder_fails_clearly(tmp_path):
    Memstore.local(tmp_path).remember("made with e5")
    with pytest.raises(EmbedderMismatchError, match="e5-small-q4"):
        Memstore.local(tmp_path, embedder=OtherEmbedder())


def test_sdk_methods_round_trip(tmp_path):
    ms = Memstore.local(tmp_path)
    m = ms.remember("note one", session="s", metadata={"k": "v"}, ttl=3600)
    assert ms.get(m.id).metadata == {"k": "v"}
    assert ms.update(m.id, content="note one, revised").content == "note one, revised"
    assert [s.session for s in ms.sessions()] == ["s"]
    assert ms.list(session="s").memories[0].id == m.id
    ms.forget(m.id)
    with pytest.raises(NotFoundError):
        ms.get(m.id)
    ms.remember_many(["a", "b", {"content": "c", "session": "s2"}])
    assert ms.forget_session("s2") == 1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "memstore"), *args], capture_output=True, text=True, timeout=120
    )


def test_cli_remember_then_recall_in_a_new_process(tmp_path):
    d = str(tmp_path / "d")
    done = run_cli("remember", "Acme Corp lacks API docs", "--session", "alpha", "--data-dir", d)
    assert done.returncode == 0, done.stderr
    out = run_cli("recall", "competitor analysis", "--session", "alpha", "--data-dir", d, "--json")
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["memories"][0]
    assert first["content"] == "Acme Corp lacks API docs"
    assert 0 <= first["score"] <= 1


def test_cli_forgets_a_session_or_the_shared_one(tmp_path):
    d = str(tmp_path / "d")
    ms = Memstore.local(d)
    ms.remember("shared note")
    ms.remember("chat note", session="chat")
    ms.close()
    assert run_cli("forget-session", "--data-dir", d).returncode == 2  # neither given
    out = run_cli("forget-session", "--shared", "--yes", "--data-dir", d)
    assert out.returncode == 0 and "forgot 1 memory of the shared session" in out.stdout
    out = run_cli("forget-session", "chat", "--yes", "--data-dir", d)
    assert out.returncode == 0 and "forgot 1 memory of session 'chat'" in out.stdout


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    out = run_cli("remember", "   ", "--data-dir", str(tmp_path))
    assert out.returncode == 2
    assert "must not be empty" in out.stderr and "Traceback" not in out.stderr


def test_export_import_reuses_vectors_with_the_same_embedder(tmp_path):
    src, dst, file = tmp_path / "src", tmp_path / "dst", tmp_path / "dump.jsonl"
    ms = Memstore.local(src)
    ms.remember("alpha fact", session="a", metadata={"n": 1})
    ms.remember("shared fact")
    ms.remember_many([{"content": f"turn {i}", "session": "chat"} for i in range(3)])
    assert run_cli("export", str(file), "--data-dir", str(src)).returncode == 0
    header = json.loads(file.read_text().splitlines()[0])
    assert header["embedder"] == "e5-small-q4"
    out = run_cli("import", str(file), "--data-dir", str(dst))
    assert out.returncode == 0, out.stderr
    assert "imported 5" in out.stderr and "vectors reused" in out.stderr
    copy = Memstore.local(dst)
    assert copy.recall("alpha fact", session="a")[0].metadata == {"n": 1}
    # The order memories were stored in survives (recall reads them in that order).
    assert [m.content for m in copy.list("chat").memories] == ["turn 2", "turn 1", "turn 0"]
    # Importing again adds nothing: identical content in a session is stored once.
    again = run_cli("import", str(file), "--data-dir", str(dst))
    assert "imported 0, skipped 5" in again.stderr


def test_import_re_embeds_when_the_embedder_differs(tmp_path):
    from memstore.transfer import import_jsonl

    file = tmp_path / "dump.jsonl"
    file.write_text(
        json.dumps({"format": "memstore-export/1", "embedder": "other-model", "dim": 8})
        + "\n"
        + json.dumps({"content": "re-embed me", "embedding": "AAAA"})
        + "\n"
    )
    ms = Memstore.local(tmp_path / "d")
    engine = ms.backend.engine
    with file.open() as f:
        imported, skipped, reembedded = import_jsonl(engine, "local", f)
    assert (imported, skipped, reembedded) == (1, 0, True)
    assert ms.recall("re-embed me")[0].score >= 0.9
