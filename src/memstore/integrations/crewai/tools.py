"""Memory tools: agents decide for themselves what to recall and what to remember."""

from __future__ import annotations

from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, Field

from memstore.client import Memstore

__all__ = ["RecallMemoryTool", "RememberTool"]


class RecallInput(BaseModel):
    query: str = Field(..., description="What to look for, in a few words")


class RememberInput(BaseModel):
    content: str = Field(..., description="One self-contained fact, decision or lesson")


def _never_cache(_args: Any = None, _result: Any = None) -> bool:
    return False


class RecallMemoryTool(BaseTool):
    """Lets an agent search memstore for what earlier runs learned."""

    name: str = "recall_memory"
    description: str = (
        "Search long-term memory for facts, decisions and lessons from earlier work. "
        "Returns the most relevant memories, best first."
    )
    args_schema: type[BaseModel] = RecallInput
    memstore: Any = Field(exclude=True)
    session: str | list[str] | None = None
    limit: int = 5
    cache_function: Any = _never_cache  # memory changes during a run; never serve stale hits

    def __init__(self, memstore: Memstore, session: str | list[str] | None = None, **kw: Any):
        super().__init__(memstore=memstore, session=session, **kw)

    def _run(self, query: str) -> str:
        found = self.memstore.recall(query, session=self.session, limit=self.limit)
        if not found:
            return "No relevant memories."
        return "\n".join(f"- {m.content} (score {m.score:.2f})" for m in found)


class RememberTool(BaseTool):
    """Lets an agent store something worth knowing next time."""

    name: str = "remember"
    description: str = (
        "Save one self-contained fact, decision or lesson to long-term memory so later "
        "runs can recall it."
    )
    args_schema: type[BaseModel] = RememberInput
    memstore: Any = Field(exclude=True)
    session: str | None = None
    cache_function: Any = _never_cache

    def __init__(self, memstore: Memstore, session: str | None = None, **kw: Any):
        super().__init__(memstore=memstore, session=session, **kw)

    def _run(self, content: str) -> str:
        result = self.memstore.remember_many(
            [{"content": content, "session": self.session, "metadata": {"source": "crewai-tool"}}]
        )[0]
        if result.deduplicated:
            return f"Already in memory ({result.memory.id})."
        return f"Remembered ({result.memory.id})."
