"""What the CrewAI tests share: the real crewai package, imported and run in a sandbox, with
the examples' scripted offline LLM in place of a provider.

crewai writes a key file under $HOME on import and a task-output database under
CREWAI_STORAGE_DIR on kickoff: both point at a temporary directory while crewai is imported
and during each test (``sandbox``), never for the whole process.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SANDBOX = Path(tempfile.mkdtemp(prefix="memstore-crewai-"))
atexit.register(shutil.rmtree, SANDBOX, ignore_errors=True)
CREWAI_ENV = {
    "HOME": str(SANDBOX / "home"),
    "CREWAI_STORAGE_DIR": str(SANDBOX / "crewai-storage"),
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_TESTING": "true",
    "OTEL_SDK_DISABLED": "true",
}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@contextmanager
def crewai_env() -> Iterator[None]:
    """CREWAI_ENV for a while, then the environment as it was."""
    saved = {name: os.environ.get(name) for name in CREWAI_ENV}
    os.environ.update(CREWAI_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CREWAI_ENV for one test, with crewai's task-output database in its own directory."""
    for name, value in CREWAI_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai-storage"))


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a crewai run in a child process, sandboxed in ``tmp_path``."""
    return {
        **os.environ,
        **CREWAI_ENV,
        "HOME": str(tmp_path / "home"),
        "CREWAI_STORAGE_DIR": str(tmp_path / "crewai-storage"),
        "TMPDIR": str(tmp_path),  # crewai's lock files
        **extra,
    }


@contextmanager
def sandboxed_lock(name: str, timeout: float = 60.0) -> Iterator[None]:
    """crewai's file lock, kept in the sandbox instead of littering the system temp dir."""
    import portalocker

    path = SANDBOX / f"{hashlib.md5(name.encode()).hexdigest()}.lock"
    with portalocker.Lock(str(path), timeout=timeout):
        yield


def _load_example() -> Any:
    """examples/crewai_research.py as the module ``crewai_research`` (pydantic resolves the
    scripted LLM's annotations through it, and examples/crewai_memory.py imports it)."""
    if "crewai_research" in sys.modules:
        return sys.modules["crewai_research"]
    spec = importlib.util.spec_from_file_location(
        "crewai_research", EXAMPLES / "crewai_research.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crewai_research"] = module
    spec.loader.exec_module(module)
    return module


with crewai_env():
    pytest.importorskip("crewai")
    from crewai import Agent, Crew, Task
    from crewai_core.lock_store import set_lock_backend

    example = _load_example()

set_lock_backend(sandboxed_lock)
ScriptedLLM = example.ScriptedLLM


def final(text: str) -> str:
    """A scripted LLM answer that ends the agent's turn with ``text``."""
    return f"Thought: I now know the final answer\nFinal Answer: {text}"


def prompt_text(call: dict[str, Any]) -> str:
    """Every message of one recorded LLM call, as one text."""
    return "\n".join(m["content"] or "" for m in call["messages"])


def one_agent_crew(
    llm: Any,
    role: str = "Analyst",
    tools: tuple[Any, ...] | list[Any] = (),
    description: str = "Analyse {topic}.",
    **options: Any,
) -> Crew:
    """A crew of one agent with one task; ``options`` go to ``Crew`` (e.g. ``memory``)."""
    agent = Agent(
        role=role,
        goal="Analyse {topic}",
        backstory="You are thorough.",
        llm=llm,
        tools=list(tools),
        max_retry_limit=0,
    )
    task = Task(description=description, expected_output="An analysis.", agent=agent)
    return Crew(agents=[agent], tasks=[task], name="analysis", **options)
