"""CrewAI integration: CrewAI's own memory in memstore, memory around a kickoff, memory
tools, and a storage backend for ``crewai.Memory``.

Four ways in, all over the public ``Memstore`` methods, so they work the same with
``Memstore.local(path)`` and a remote ``Memstore(api_key=...)``:

* ``MemstoreMemory(ms, session=...)``: a drop-in for ``Crew(memory=...)``,
  ``Agent(memory=...)`` and a Flow's memory, with no LLM call and no CrewAI embedder.
* ``kickoff_with_memory(crew, ms, session=...)`` / ``CrewMemory(...).attach(crew)``: recall
  before kickoff, inject into backstories or task descriptions, remember a summary after.
* ``RecallMemoryTool`` / ``RememberTool``: agents read and write memory themselves.
* ``MemstoreStorage``: ``crewai.Memory(storage=MemstoreStorage(ms))`` keeps CrewAI's own
  LLM-analysed memory in memstore.

Needs ``pip install 'memstore-ai[crewai]'``; ``import memstore`` never imports crewai.
"""

from __future__ import annotations

try:
    import crewai  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "memstore.integrations.crewai needs crewai: pip install 'memstore-ai[crewai]'"
    ) from exc

from memstore.integrations.crewai.kickoff import CrewMemory, kickoff_with_memory
from memstore.integrations.crewai.memory import MemstoreMemory
from memstore.integrations.crewai.sessions import by_agent_role
from memstore.integrations.crewai.storage import MemstoreStorage
from memstore.integrations.crewai.summary import summarize_run
from memstore.integrations.crewai.tools import RecallMemoryTool, RememberTool

__all__ = [
    "CrewMemory",
    "MemstoreMemory",
    "MemstoreStorage",
    "RecallMemoryTool",
    "RememberTool",
    "by_agent_role",
    "kickoff_with_memory",
    "summarize_run",
]
