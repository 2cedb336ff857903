"""CrewAI integration: memory around a kickoff, memory tools, and a native storage backend.

Three ways in, all over the public ``Memstore`` methods, so they work the same with
``Memstore.local(path)`` and a remote ``Memstore(api_key=...)``:

* ``kickoff_with_memory(crew, ms, session=...)`` / ``CrewMemory(...).attach(crew)``: recall
  before kickoff, inject into backstories or task descriptions, remember a summary after.
* ``RecallMemoryTool`` / ``RememberTool``: agents read and write memory themselves.
* ``MemstoreStorage``: ``crewai.Memory(storage=MemstoreStorage(ms))`` keeps CrewAI's own
  memory in memstore.

Needs ``pip install 'memstore-ai[crewai]'``; ``import memstore`` never imports crewai.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

try:
    from crewai.memory.types import MemoryRecord, ScopeInfo
    from crewai.tools import BaseTool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "memstore.integrations.crewai needs crewai: pip install 'memstore-ai[crewai]'"
    ) from exc

from memstore.client import Memstore
from memstore.errors import ConflictError, NotFoundError
from memstore.models import MAX_BATCH, MAX_LIST_LIMIT, MAX_METADATA_BYTES, Memory

__all__ = [
    "CrewMemory",
    "MemstoreStorage",
    "RecallMemoryTool",
    "RememberTool",
    "by_agent_role",
    "kickoff_with_memory",
    "summarize_run",
]

SessionSpec = str | None | Callable[[Any], str | None]
Injection = Literal["backstory", "task"]
PLACEHOLDER = "memstore_memories_{}"
MAX_SESSIONS_PER_LIST = 100
MAX_QUERY_CHARS = 4000  # the embedder reads ~512 tokens; the rest would only cost time


# --------------------------------------------------------------------------- kickoff helper


def by_agent_role(prefix: str = "agent:") -> Callable[[Any], str]:
    """A session spec giving each agent its own session, named after its role."""

    def session_for(agent: Any) -> str:
        return f"{prefix}{agent.role}"

    return session_for


def _fill(template: str, inputs: dict[str, Any]) -> str:
    for key, value in inputs.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _format_memories(header: str, memories: list[Any]) -> str:
    lines = [header]
    for m in memories:
        lines.append("- " + m.content.strip().replace("\n", "\n  "))
    return "\n".join(lines)


def _tools_called(task_output: Any) -> list[str]:
    """Tool names an agent asked for in this task (ReAct text or native tool calls)."""
    names: list[str] = []
    for msg in getattr(task_output, "messages", None) or []:
        if msg.get("role") != "assistant":
            continue
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            if fn.get("name"):
                names.append(fn["name"])
        names += re.findall(r"^Action\s*:\s*(.+?)\s*$", msg.get("content") or "", re.M)
    return names


def summarize_run(task_outputs: list[Any], inputs: dict[str, Any] | None = None) -> str:
    """A short memory of a run, without an LLM: what was done, the result, what worked
    (tools that ran without failing) and what to avoid (tool failures)."""
    shown = {k: v for k, v in (inputs or {}).items() if not k.startswith("memstore_")}
    head = "Crew run" + (
        " for " + ", ".join(f"{k}={_clip(str(v), 80)}" for k, v in shown.items()) if shown else ""
    )
    lines = [head + ".", "What was done:"]
    used: dict[str, int] = {}
    failures: list[str] = []
    for i, out in enumerate(task_outputs):
        task = _clip(out.description.splitlines()[0] if out.description else out.name or "", 160)
        found = "" if i == len(task_outputs) - 1 else " → " + _clip(out.raw or "(empty)", 300)
        lines.append(f"- {out.agent}: {task}{found}")
        for name in _tools_called(out):
            used[name] = used.get(name, 0) + 1
        for failure in getattr(out, "tool_failures", None) or []:
            failures.append(f"{failure.tool_name} failed: {_clip(failure.message, 160)}")
    if task_outputs:
        lines.append("Result: " + _clip(task_outputs[-1].raw or "(empty)", 800))
    failed = {f.split(" failed:")[0] for f in failures}
    worked = [f"{n} ({c}x)" for n, c in used.items() if n not in failed]
    if worked:
        lines.append("What worked: used " + ", ".join(worked) + ".")
    if failures:
        lines.append("What to avoid: " + "; ".join(failures) + ".")
    return "\n".join(lines)


class CrewMemory:
    """The seed pattern: recall before kickoff, inject, run, remember a summary after.

    ``session`` is a name (a user id, a project; None is the shared session) or a callable
    ``agent -> session`` such as ``by_agent_role()`` for per-agent memory. ``inject`` puts
    memories into each agent's backstory or into each task's description. After a kickoff,
    ``recalled`` maps each agent role (or ``"task N"``) to the memories it was given.
    """

    def __init__(
        self,
        memstore: Memstore,
        session: SessionSpec = None,
        *,
        inject: Injection = "backstory",
        limit: int = 5,
        min_score: float | None = None,
        query: str | Callable[[dict[str, Any]], str] | None = None,
        remember: bool = True,
        header: str = "Relevant memories from earlier runs:",
    ) -> None:
        if inject not in ("backstory", "task"):
            raise ValueError("inject must be 'backstory' or 'task'")
        self.memstore = memstore
        self.session = session
        self.inject = inject
        self.limit = limit
        self.min_score = min_score
        self.query = query
        self.remember = remember
        self.header = header
        self.recalled: dict[str, list[Any]] = {}
        self._crew: Any = None
        self._inputs: dict[str, Any] = {}
        self._saved: list[tuple[Any, str, Any, Any]] = []

    def session_for(self, agent: Any) -> str | None:
        """The session of ``agent``; work with no agent (a manager's) uses the shared one."""
        if not callable(self.session):
            return self.session
        return None if agent is None else self.session(agent)

    # -- callbacks
    def attach(self, crew: Any) -> Any:
        """Add this memory's kickoff callbacks to ``crew`` (once) and return the crew."""
        self._crew = crew
        if self.before_kickoff not in crew.before_kickoff_callbacks:
            crew.before_kickoff_callbacks.append(self.before_kickoff)
            crew.after_kickoff_callbacks.append(self.after_kickoff)
        return crew

    def before_kickoff(self, inputs: dict[str, Any] | None) -> dict[str, Any]:
        if self._crew is None:
            raise RuntimeError("CrewMemory.before_kickoff needs a crew: call attach(crew)")
        return self.prepare(self._crew, inputs)

    def after_kickoff(self, output: Any) -> Any:
        self.restore()
        if self.remember:
            self.remember_run(self._crew, output)
        return output

    def kickoff(self, crew: Any, inputs: dict[str, Any] | None = None) -> Any:
        """Run ``crew`` once with memory, without leaving callbacks or text behind on it."""
        self._crew = crew
        prepared = self.prepare(crew, inputs)
        try:
            output = crew.kickoff(inputs=prepared)
        finally:
            self.restore()
        if self.remember:
            self.remember_run(crew, output)
        return output

    # -- the steps
    def _targets(self, crew: Any) -> list[tuple[Any, str, Any]]:
        """(object, field, agent) pairs memories go into."""
        if self.inject == "task":
            return [(t, "description", t.agent) for t in crew.tasks]
        agents = list(crew.agents)
        agents += [t.agent for t in crew.tasks if t.agent is not None and t.agent not in agents]
        return [(a, "backstory", a) for a in agents]

    def _query(self, crew: Any, target: Any, agent: Any, inputs: dict[str, Any]) -> str:
        if callable(self.query):
            return self.query(inputs)
        if isinstance(self.query, str):
            return _fill(self.query, inputs)
        if self.inject == "task":
            parts = [target.description]
        else:
            parts = [agent.goal] + [t.description for t in crew.tasks if t.agent is agent]
        return _fill("\n".join(p for p in parts if p), inputs)[:MAX_QUERY_CHARS]

    def prepare(self, crew: Any, inputs: dict[str, Any] | None) -> dict[str, Any]:
        """Recall for each agent (or task) and add the memories as inputs that crewai's own
        interpolation puts into the text, so braces in memories are never parsed."""
        self.restore()
        inputs = dict(inputs or {})
        self._inputs = dict(inputs)
        self.recalled = {}
        try:
            for i, (target, field, agent) in enumerate(self._targets(crew)):
                self._inject(i, target, field, agent, crew, inputs)
        except BaseException:
            self.restore()
            raise
        return inputs

    def _inject(
        self, i: int, target: Any, field: str, agent: Any, crew: Any, inputs: dict[str, Any]
    ) -> None:
        """Recall for one target; if anything is found, end its text with a placeholder and
        put the memories in ``inputs`` under that placeholder's name."""
        found = self.memstore.recall(
            self._query(crew, target, agent, inputs),
            session=self.session_for(agent),
            limit=self.limit,
            min_score=self.min_score,
        )
        label = agent.role if field == "backstory" else f"task {i}"
        self.recalled[label] = found
        if not found:
            return
        key = PLACEHOLDER.format(i)
        private = "_original_" + field
        template = getattr(target, private) or getattr(target, field)
        self._saved.append((target, field, getattr(target, field), getattr(target, private)))
        setattr(target, private, template + "\n\n{" + key + "}")
        setattr(target, field, template + "\n\n{" + key + "}")
        inputs[key] = _format_memories(self.header, found)

    def restore(self) -> None:
        """Put back the texts ``prepare`` changed."""
        while self._saved:
            target, field, value, original = self._saved.pop()
            setattr(target, "_original_" + field, original)
            setattr(target, field, value)

    def remember_run(self, crew: Any, output: Any) -> list[Any]:
        """Remember one summary per session the crew's agents write to."""
        groups: dict[str | None, list[Any]] = {}
        agents = {a.role: a for a in crew.agents}
        agents.update({t.agent.role: t.agent for t in crew.tasks if t.agent is not None})
        for out in output.tasks_output:
            session = self.session_for(agents.get(out.agent))
            groups.setdefault(session, []).append(out)
        items = [
            {
                "content": summarize_run(outs, self._inputs),
                "session": session,
                "metadata": {
                    "source": "crewai",
                    "kind": "crew_run",
                    "crew": crew.name or "crew",
                    "tasks": len(outs),
                    "tool_failures": sum(len(o.tool_failures or []) for o in outs),
                },
            }
            for session, outs in groups.items()
        ]
        return self.memstore.remember_many(items) if items else []


def kickoff_with_memory(
    crew: Any,
    memstore: Memstore,
    session: SessionSpec = None,
    *,
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """Recall → inject → ``crew.kickoff(inputs)`` → remember; returns the CrewOutput.
    ``options`` are CrewMemory's (inject, limit, min_score, query, remember, header)."""
    return CrewMemory(memstore, session, **options).kickoff(crew, inputs)


# --------------------------------------------------------------------------- tools


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


# --------------------------------------------------------------------------- storage backend

_KEY = "crewai."


_VECTOR_TYPES = {"f64": "<f8", "f32": "<f4", "f16": "<f2"}


def _pack_vector(vector: list[float], budget: int) -> str:
    """The most precise encoding that fits the metadata budget: float64 (exact) for small
    vectors, float32, else float16 (≈1e-3 precision, plenty for cosine ranking; crewai's
    default 3072 dimensions take 8 KB)."""
    for kind, dtype in _VECTOR_TYPES.items():
        packed = f"{kind}:" + base64.b64encode(np.asarray(vector, dtype=dtype).tobytes()).decode()
        if len(packed) <= budget:
            break
    return packed


def _unpack_vector(text: str) -> list[float]:
    kind, data = text.split(":", 1)
    return np.frombuffer(base64.b64decode(data), dtype=_VECTOR_TYPES[kind]).astype(float).tolist()


def _in_scope(scope: str, prefix: str | None) -> bool:
    if not prefix or prefix == "/":
        return True
    p = prefix.rstrip("/")
    return scope == p or scope.startswith(p + "/")


def _norm_scope(scope: str | None) -> str:
    scope = "/" + (scope or "").strip("/")
    return scope


class MemstoreStorage:
    """crewai's ``StorageBackend`` over a Memstore, for ``Memory(storage=MemstoreStorage(ms))``.

    Each scope is one memstore session (``session_prefix + scope``); a record's text is the
    memory's content (so ``ms.recall`` and ``memstore recall`` find it too) and its other
    fields, including crewai's embedding, live in the memory's metadata. ``search`` ranks
    by cosine between crewai's query embedding and the stored embeddings of the records in
    scope: crewai hands us vectors from its own embedder, never the query text, so memstore's
    text ranking cannot answer it. That costs one listing of the scope per search, fine for
    a crew's memory (thousands of records) and identical locally and over HTTP.
    """

    def __init__(self, memstore: Memstore, *, session_prefix: str = "crewai:") -> None:
        self.memstore = memstore
        self.session_prefix = session_prefix
        self._ids: dict[str, str] = {}  # crewai record id -> memstore memory id
        self._lock = threading.Lock()

    # -- mapping between records and memories
    def _session(self, scope: str) -> str:
        return self.session_prefix + _norm_scope(scope)

    def _metadata(self, record: MemoryRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            _KEY + "id": record.id,
            _KEY + "categories": json.dumps(record.categories),
            _KEY + "metadata": json.dumps(record.metadata, default=str),
            _KEY + "importance": record.importance,
            _KEY + "created_at": record.created_at.isoformat(),
            _KEY + "last_accessed": record.last_accessed.isoformat(),
            _KEY + "private": record.private,
        }
        if record.source is not None:
            meta[_KEY + "source"] = record.source
        if record.embedding is not None:
            used = sum(len(k) + len(str(v)) for k, v in meta.items())
            budget = MAX_METADATA_BYTES - used - len(_KEY + "embedding")
            meta[_KEY + "embedding"] = _pack_vector(record.embedding, budget)
        return meta

    def _record(self, memory: Memory) -> MemoryRecord:
        meta = memory.metadata
        packed = meta.get(_KEY + "embedding")
        return MemoryRecord(
            id=str(meta[_KEY + "id"]),
            content=memory.content,
            scope=(memory.session or "")[len(self.session_prefix) :] or "/",
            categories=json.loads(str(meta[_KEY + "categories"])),
            metadata=json.loads(str(meta[_KEY + "metadata"])),
            importance=float(meta[_KEY + "importance"] or 0.0),
            created_at=datetime.fromisoformat(str(meta[_KEY + "created_at"])),
            last_accessed=datetime.fromisoformat(str(meta[_KEY + "last_accessed"])),
            embedding=_unpack_vector(str(packed)) if packed else None,
            source=meta.get(_KEY + "source"),
            private=bool(meta.get(_KEY + "private", False)),
        )

    def _sessions(self, scope_prefix: str | None) -> list[tuple[str, int]]:
        """(session, count) of every non-empty scope under ``scope_prefix``."""
        out = []
        for info in self.memstore.sessions():
            name = info.session or ""
            if name.startswith(self.session_prefix) and _in_scope(
                name[len(self.session_prefix) :], scope_prefix
            ):
                out.append((name, info.count))
        return out

    def _scan(self, scope_prefix: str | None) -> Iterator[tuple[Memory, MemoryRecord]]:
        names = [name for name, _ in self._sessions(scope_prefix)]
        for start in range(0, len(names), MAX_SESSIONS_PER_LIST):
            chunk = names[start : start + MAX_SESSIONS_PER_LIST]
            cursor = None
            while True:
                page = self.memstore.list(session=chunk, limit=MAX_LIST_LIMIT, cursor=cursor)
                for memory in page.memories:
                    if _KEY + "id" in memory.metadata:
                        record = self._record(memory)
                        with self._lock:
                            self._ids[record.id] = memory.id
                        yield memory, record
                cursor = page.next_cursor
                if cursor is None:
                    break

    def _locate(self, record_id: str) -> Memory | None:
        with self._lock:
            memory_id = self._ids.get(record_id)
        if memory_id is not None:
            try:
                memory = self.memstore.get(memory_id)
                if memory.metadata.get(_KEY + "id") == record_id:
                    return memory
            except NotFoundError:
                pass  # forgotten elsewhere; fall back to a scan
        for memory, record in self._scan(None):
            if record.id == record_id:
                return memory
        return None

    @staticmethod
    def _matches(
        record: MemoryRecord,
        categories: list[str] | None,
        metadata_filter: dict[str, Any] | None,
    ) -> bool:
        if categories and not set(categories) & set(record.categories):
            return False
        return not metadata_filter or all(
            record.metadata.get(k) == v for k, v in metadata_filter.items()
        )

    # -- the protocol
    def save(self, records: list[MemoryRecord]) -> None:
        """Store records; identical content in one scope is kept once, with the newest
        record's id and fields (memstore's dedup)."""
        for start in range(0, len(records), MAX_BATCH):
            batch = records[start : start + MAX_BATCH]
            items = [
                {"content": r.content, "session": self._session(r.scope), "metadata": m}
                for r, m in ((r, self._metadata(r)) for r in batch)
            ]
            results = self.memstore.remember_many(items)
            for record, item, result in zip(batch, items, results, strict=True):
                if result.deduplicated:
                    self.memstore.update(result.memory.id, metadata=item["metadata"])
                with self._lock:
                    self._ids[record.id] = result.memory.id

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        query = np.asarray(query_embedding, dtype=float)
        query = query / (np.linalg.norm(query) or 1.0)
        scored = []
        for _, record in self._scan(scope_prefix):
            if record.embedding is None or not self._matches(record, categories, metadata_filter):
                continue
            vector = np.asarray(record.embedding, dtype=float)
            if vector.shape != query.shape:
                continue  # written by another embedder; not comparable
            score = float(np.dot(query, vector) / (np.linalg.norm(vector) or 1.0))
            score = min(1.0, max(0.0, score))
            if score >= min_score:
                scored.append((record, score))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        if not (categories or record_ids or older_than or metadata_filter):
            names = [name for name, _ in self._sessions(scope_prefix)]
            return sum(self.memstore.forget_session(name) for name in names)
        doomed = [
            memory.id
            for memory, record in self._scan(scope_prefix)
            if (not record_ids or record.id in record_ids)
            and (not older_than or record.created_at < older_than)
            and self._matches(record, categories, metadata_filter)
        ]
        for memory_id in doomed:
            self.memstore.forget(memory_id)
        return len(doomed)

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (stored anew if it is missing)."""
        memory = self._locate(record.id)
        if memory is not None and memory.session == self._session(record.scope):
            content = None if record.content == memory.content else record.content
            try:
                self.memstore.update(memory.id, content=content, metadata=self._metadata(record))
                return
            except ConflictError:
                pass  # another record in the scope has this text: merge into it below
        if memory is not None:
            self.memstore.forget(memory.id)
        self.save([record])

    def get_record(self, record_id: str) -> MemoryRecord | None:
        memory = self._locate(record_id)
        return None if memory is None else self._record(memory)

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        records = [record for _, record in self._scan(scope_prefix)]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[offset : offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        records = [record for _, record in self._scan(scope)]
        return ScopeInfo(
            path=scope,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min((r.created_at for r in records), default=None),
            newest_record=max((r.created_at for r in records), default=None),
            child_scopes=self.list_scopes(scope),
        )

    def list_scopes(self, parent: str = "/") -> list[str]:
        base = _norm_scope(parent).rstrip("/")
        children = set()
        for name, _ in self._sessions(parent):
            scope = name[len(self.session_prefix) :]
            if scope.startswith(base + "/") and scope != base:
                head = scope[len(base) + 1 :].split("/")[0]
                if head:
                    children.add(f"{base}/{head}")
        return sorted(children)

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, record in self._scan(scope_prefix):
            for category in record.categories:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        return sum(count for _, count in self._sessions(scope_prefix))

    def reset(self, scope_prefix: str | None = None) -> None:
        self.delete(scope_prefix=scope_prefix)

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        args = (query_embedding, scope_prefix, categories, metadata_filter, limit, min_score)
        return await asyncio.to_thread(self.search, *args)

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self.delete, scope_prefix, categories, record_ids, older_than, metadata_filter
        )
