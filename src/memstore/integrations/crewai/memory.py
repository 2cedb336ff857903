"""``MemstoreMemory``: CrewAI's ``Memory``, kept in memstore, with no LLM and no CrewAI embedder.

CrewAI (1.15) calls ``memory.recall(task.description, limit=5)`` before each task and, after
it, ``memory.extract_memories(raw)`` then ``memory.remember_many(...)``; its memory tools,
Flows and ``Agent.kickoff`` call ``recall``/``remember``. Here ``recall`` is memstore's own
recall with the query text (hybrid ranking, scores in [0, 1]), ``extract_memories`` writes
one note per task (agent, task, result, clipped) without an LLM, and the records CrewAI gets
back are ``MemoryRecord``/``MemoryMatch`` as it formats them into prompts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from datetime import datetime
from itertools import islice
from types import SimpleNamespace
from typing import Any, Literal

from crewai.events.event_bus import crewai_event_bus
from crewai.events.types.memory_events import MemorySaveCompletedEvent, MemorySaveStartedEvent
from crewai.memory.types import MemoryMatch, MemoryRecord, ScopeInfo
from crewai.memory.unified_memory import Memory
from crewai.memory.utils import join_scope_paths, normalize_scope_path
from pydantic import PrivateAttr

from memstore.client import AsyncMemstore, Memstore
from memstore.errors import NotFoundError
from memstore.integrations.crewai.listing import chunks, memories_in
from memstore.integrations.crewai.records import (
    HIDDEN,
    IMPORTANCE,
    category_counts,
    memory_item,
    scope_info,
    selected,
    to_record,
    visible,
)
from memstore.integrations.crewai.sessions import (
    SessionSpec,
    scope_of,
    scope_session,
    sessions_under,
)
from memstore.integrations.crewai.summary import MAX_QUERY_CHARS, summarize_task
from memstore.models import MAX_BATCH, MAX_RECALL_LIMIT, RecalledMemory
from memstore.models import Memory as Stored

__all__ = ["MemstoreMemory"]

log = logging.getLogger(__name__)

# How long recall trusts its list of the account's sessions (to find the sessions of scopes
# below the memory's own). Listing sessions reads every memory of the account, so recall
# does it at most this often; sessions this memory writes to are added at once.
SESSIONS_TTL = 30.0
# CrewAI's write arguments: scope, categories, metadata, importance, source, private,
# agent_role, root_scope.
WriteArgs = tuple[
    str | None,
    list[str] | None,
    dict[str, Any] | None,
    float | None,
    str | None,
    bool,
    str | None,
    str | None,
]


def _emit(source: Any, event: Any) -> None:
    with suppress(RuntimeError):  # the event bus is shut down: the process is exiting
        crewai_event_bus.emit(source, event)


class MemstoreMemory(Memory):
    """CrewAI's memory in memstore: ``Crew(memory=MemstoreMemory(ms, session="project:alpha"))``.

    ``session`` is where the memories live: a project, a user (``"user:alice"``), None for
    the account's shared session, or ``by_agent_role()`` for one session per agent (then
    ``attach(crew)`` gives each agent its view). CrewAI's scope paths are sessions below it
    (``/`` is ``session``, ``/facts`` is ``session + "/facts"``). ``remember_many`` writes
    in the background like CrewAI's own memory (``recall`` waits for it); the ``a*``
    methods await ``async_memstore`` when given, else run in a worker thread. ``min_score``
    drops weaker recall hits. ``depth`` is accepted and ignored: recall never calls an LLM.
    Other keyword arguments are ``crewai.Memory`` fields (``read_only``, ``root_scope``,
    ``default_importance``...).
    """

    _ms: Memstore = PrivateAttr()
    _ams: AsyncMemstore | None = PrivateAttr(default=None)
    _spec: SessionSpec = PrivateAttr(default=None)
    _agent: Any = PrivateAttr(default=None)
    _min_score: float | None = PrivateAttr(default=None)
    _known: tuple[float, set[str | None]] | None = PrivateAttr(default=None)

    def __init__(
        self,
        memstore: Memstore,
        session: SessionSpec = None,
        *,
        async_memstore: AsyncMemstore | None = None,
        min_score: float | None = None,
        **fields: Any,
    ) -> None:
        if isinstance(memstore, AsyncMemstore):
            raise TypeError(
                "MemstoreMemory needs a Memstore (CrewAI calls memory synchronously); "
                "pass the AsyncMemstore as async_memstore="
            )
        super().__init__(**fields)
        self._ms = memstore
        self._ams = async_memstore
        self._spec = session
        self._min_score = min_score

    def model_post_init(self, __context: Any) -> None:
        """Nothing to build: no LLM, no embedder, no LanceDB (``Memory`` builds all three)."""

    @property
    def _llm(self) -> Any:
        raise RuntimeError("MemstoreMemory never calls an LLM")

    @property
    def _embedder(self) -> Any:
        raise RuntimeError("MemstoreMemory never embeds with CrewAI: memstore does")

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> MemstoreMemory:
        """A copy shares the memstore handles (a copied crew keeps the same memory)."""
        return self._view(self._agent)

    # -- sessions
    def _view(self, agent: Any) -> MemstoreMemory:
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        fields.pop("memory_kind", None)
        view = MemstoreMemory(
            self._ms, self._spec, async_memstore=self._ams, min_score=self._min_score, **fields
        )
        view._agent = agent
        return view

    def for_agent(self, agent: Any) -> MemstoreMemory:
        """This memory as ``agent`` sees it: with ``by_agent_role()``, that agent's session."""
        return self._view(agent)

    def attach(self, crew: Any) -> Any:
        """Give each agent of ``crew`` without a memory of its own this memory's view for it
        (needed for per-agent sessions, since CrewAI's recall does not say who asks)."""
        agents = list(crew.agents)
        agents += [t.agent for t in crew.tasks if t.agent is not None and t.agent not in agents]
        for agent in agents:
            if agent.memory is None:
                agent.memory = self.for_agent(agent)
        return crew

    @property
    def session(self) -> str | None:
        """The root session of this memory (of its agent, with a per-agent spec)."""
        return self._root()

    def _root(self, agent_role: str | None = None) -> str | None:
        if not callable(self._spec):
            return self._spec
        agent = self._agent or (SimpleNamespace(role=agent_role) if agent_role else None)
        if agent is None:
            log.warning("memstore: a per-agent MemstoreMemory was used without an agent")
            raise ValueError(
                "this memory has one session per agent and CrewAI did not say which agent "
                "asks: use memory.attach(crew) or Agent(memory=memory.for_agent(agent))"
            )
        return self._spec(agent)

    def _path(self, scope: str | None, root_scope: str | None = None) -> str:
        return join_scope_paths(root_scope if root_scope is not None else self.root_scope, scope)

    def _counts(self, infos: Iterable[Any]) -> dict[str | None, int]:
        return {info.session: info.count for info in infos}

    def _known_sessions(self) -> set[str | None] | None:
        """The account's sessions as last listed, or None when that is over SESSIONS_TTL old."""
        known = self._known
        return known[1] if known and time.monotonic() - known[0] < SESSIONS_TTL else None

    def _learn(self, sessions: Iterable[str | None]) -> set[str | None]:
        names = set(sessions)
        self._known = (time.monotonic(), names)
        return names

    def _wrote(self, items: list[dict[str, Any]]) -> None:
        known = self._known_sessions()
        if known is not None:
            known.update(item["session"] for item in items)

    # -- records
    def _items(self, contents: list[str], args: WriteArgs) -> list[dict[str, Any]]:
        """The memstore items for ``contents`` written with CrewAI's ``args``."""
        scope, categories, metadata, importance, source, private, agent_role, root_scope = args
        session = scope_session(self._root(agent_role), self._path(scope, root_scope))
        return [
            memory_item(c, session, categories, metadata, importance, source, private, agent_role)
            for c in contents
        ]

    def _record(self, memory: Stored, root: str | None) -> MemoryRecord:
        return to_record(memory, root, self.default_importance)

    def _matches(
        self,
        found: list[RecalledMemory],
        root: str | None,
        limit: int,
        categories: list[str] | None,
        source: str | None,
        include_private: bool,
    ) -> list[MemoryMatch]:
        found = sorted(found, key=lambda m: m.score, reverse=True)
        records = [(self._record(m, root), m.score) for m in found]
        return [
            MemoryMatch(record=r, score=score, match_reasons=["memstore"])
            for r, score in records
            if visible(r, categories, source, include_private)
        ][:limit]

    @staticmethod
    def _fetch(limit: int, categories: list[str] | None, include_private: bool) -> int:
        """How many hits to ask for: more when some may be filtered out here."""
        if include_private and not categories:
            return min(limit, MAX_RECALL_LIMIT)
        return min(max(2 * limit, limit + 5), MAX_RECALL_LIMIT)

    def _scan(self, names: list[str | None], root: str | None) -> Iterator[MemoryRecord]:
        """Every record in the sessions ``names``, newest first within each chunk of them."""
        return (self._record(m, root) for m in memories_in(self._ms, names))

    def _under(self, path: str) -> tuple[str | None, list[str | None], dict[str | None, int]]:
        """(root session, the non-empty sessions at or below ``path``, every session's count)."""
        root = self._root()
        counts = self._counts(self._ms.sessions())
        return root, [n for n in sessions_under(root, path, counts) if counts.get(n)], counts

    # -- writing
    def remember(
        self,
        content: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> MemoryRecord | None:
        """Store ``content`` now and return its record (None when ``read_only``); identical
        content in the same session is stored once."""
        if self.read_only:
            return None
        args = (scope, categories, metadata, importance, source, private, agent_role, root_scope)
        [item] = self._items([content], args)
        self._wrote([item])
        [result] = self._ms.remember_many([item])
        return self._record(result.memory, self._root(agent_role))

    def remember_many(
        self,
        contents: list[str],
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> list[MemoryRecord]:
        """Store ``contents`` in the background and return ``[]`` at once, as CrewAI's
        ``Memory`` does; ``recall`` and ``drain_writes`` wait for the write."""
        if not contents or self.read_only:
            return []
        args = (scope, categories, metadata, importance, source, private, agent_role, root_scope)
        self._submit_save(self._background_save, self._items(contents, args), agent_role)
        return []

    def _background_save(self, items: list[dict[str, Any]], agent_role: str | None) -> list[Any]:
        """``_save`` between CrewAI's save events (a failure is reported by ``Memory``)."""
        _emit(
            self,
            MemorySaveStartedEvent(
                value=f"{len(items)} memories", agent_role=agent_role, source_type="memstore"
            ),
        )
        start = time.perf_counter()
        results = self._save(items)
        elapsed = (time.perf_counter() - start) * 1000
        _emit(
            self,
            MemorySaveCompletedEvent(
                value=f"{len(results)} memories saved",
                agent_role=agent_role,
                save_time_ms=elapsed,
                source_type="memstore",
            ),
        )
        return results

    def _save(self, items: list[dict[str, Any]]) -> list[Any]:
        self._wrote(items)
        try:
            return [
                result
                for start in range(0, len(items), MAX_BATCH)
                for result in self._ms.remember_many(items[start : start + MAX_BATCH])
            ]
        except Exception:
            log.warning("memstore: saving %d memories failed", len(items), exc_info=True)
            raise  # reported as CrewAI's MemorySaveFailedEvent

    def extract_memories(self, content: str) -> list[str]:
        """One memory of a task from CrewAI's dump of it (agent, task, result, clipped),
        made without an LLM."""
        note = summarize_task(content)
        return [note] if note else []

    def update(
        self,
        record_id: str,
        content: str | None = None,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
    ) -> MemoryRecord:
        """Change a record of this memory (unchanged when ``read_only``); moving it to
        another scope moves it to that scope's session."""
        root = self._root()
        try:
            stored = self._ms.get(record_id)
        except NotFoundError:
            raise ValueError(f"Record not found: {record_id}") from None
        if stored.session not in sessions_under(root, "/", [stored.session]):
            raise ValueError(f"Record not found: {record_id}")
        existing = self._record(stored, root)
        if self.read_only:
            return existing
        new = existing.model_copy(
            update={
                k: v
                for k, v in {
                    "content": content,
                    "categories": categories,
                    "metadata": metadata,
                    "importance": importance,
                }.items()
                if v is not None
            }
        )
        session = stored.session if scope is None else scope_session(root, scope)
        kept_importance = importance is not None or IMPORTANCE in stored.metadata
        item = memory_item(
            new.content,
            session,
            new.categories,
            new.metadata,
            new.importance if kept_importance else None,
            new.source,
            new.private,
            None,
        )
        # the integration's own notes (source, agent, kind) stay as they were
        item["metadata"].update({k: v for k, v in stored.metadata.items() if k in HIDDEN})
        if session == stored.session:
            changed = None if new.content == stored.content else new.content
            memory = self._ms.update(stored.id, content=changed, metadata=item["metadata"])
        else:
            self._wrote([item])
            memory = self._ms.remember_many([item])[0].memory
            self._ms.forget(stored.id)
        return self._record(memory, root)

    # -- reading
    def recall(
        self,
        query: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        limit: int = 10,
        depth: Literal["shallow", "deep"] = "deep",
        source: str | None = None,
        include_private: bool = False,
    ) -> list[MemoryMatch]:
        """The records most relevant to ``query`` in ``scope`` and below, best first, scored
        by memstore's recall (query text and meaning; no LLM whatever ``depth`` says)."""
        self.drain_writes()
        root = self._root()
        known = self._known_sessions()
        if known is None:
            known = self._learn(info.session for info in self._ms.sessions())
        names = sessions_under(root, self._path(scope), known)
        fetch, text = self._fetch(limit, categories, include_private), query[:MAX_QUERY_CHARS]
        found = [
            m
            for chunk in chunks(names)
            for m in self._ms.recall(text, session=chunk, limit=fetch, min_score=self._min_score)
        ]
        return self._matches(found, root, limit, categories, source, include_private)

    def list_records(
        self, scope: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records in ``scope`` and below, newest first."""
        root, names, _ = self._under(self._path(scope))
        records = [
            r for chunk in chunks(names) for r in islice(self._scan(chunk, root), offset + limit)
        ]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[offset : offset + limit]

    def _children(self, root: str | None, path: str, names: list[str | None]) -> list[str]:
        own, base = scope_session(root, path), normalize_scope_path(path).rstrip("/")
        heads = {scope_of(root, n)[len(base) + 1 :].split("/")[0] for n in names if n != own}
        return sorted(f"{base}/{head}" for head in heads if head)

    def _info(self, path: str) -> ScopeInfo:
        root, names, _ = self._under(path)
        return scope_info(path, list(self._scan(names, root)), self._children(root, path, names))

    def list_scopes(self, path: str | None = None) -> list[str]:
        """The scopes right below ``path`` that hold records."""
        path = self._path(path)
        root, names, _ = self._under(path)
        return self._children(root, path, names)

    def info(self, path: str | None = None) -> ScopeInfo:
        """How many records ``path`` holds (with the scopes below it), their categories and
        dates, and its child scopes."""
        return self._info(self._path(path))

    def tree(self, path: str | None = None, max_depth: int = 3) -> str:
        lines: list[str] = []

        def walk(p: str, depth: int, prefix: str) -> None:
            info = self._info(p)
            lines.append(f"{prefix}{p} ({info.record_count} records)")
            if depth < max_depth:
                for child in info.child_scopes[:20]:
                    walk(child, depth + 1, prefix + "  ")

        walk(self._path(path), 0, "")
        return "\n".join(lines)

    def list_categories(self, path: str | None = None) -> dict[str, int]:
        root, names, _ = self._under(self._path(path))
        return category_counts(self._scan(names, root))

    # -- forgetting (allowed when read_only, as in CrewAI)
    def forget(
        self,
        scope: str | None = None,
        categories: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
        record_ids: list[str] | None = None,
    ) -> int:
        """Forget the records of ``scope`` (and below) that match every filter given; with no
        filter, the whole scope. Returns how many."""
        self.drain_writes()
        root, names, _ = self._under(self._path(scope))
        if categories is None and older_than is None and not metadata_filter and record_ids is None:
            return sum(self._ms.forget_session(name) for name in names)
        doomed = [
            r.id
            for r in self._scan(names, root)
            if selected(r, categories, older_than, metadata_filter, record_ids)
        ]
        for memory_id in doomed:
            self._ms.forget(memory_id)
        return len(doomed)

    def reset(self, scope: str | None = None) -> None:
        """Forget everything in ``scope`` (default: ``root_scope``, else the whole memory)."""
        self.forget(scope)

    def reset_all(self) -> None:
        """Forget everything of this memory, ignoring ``root_scope``."""
        self.drain_writes()
        root = self._root()
        counts = self._counts(self._ms.sessions())
        for name in sessions_under(root, "/", counts):
            if counts.get(name):
                self._ms.forget_session(name)

    def close(self) -> None:
        """Wait for background writes and stop their thread; the Memstore stays open (it is
        the caller's)."""
        self.drain_writes()
        self._save_pool.shutdown(wait=True)

    # -- asyncio: through the AsyncMemstore when given, never blocking the event loop
    async def _adrain(self) -> None:
        if self._pending_saves:
            await asyncio.to_thread(self.drain_writes)

    async def arecall(
        self,
        query: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        limit: int = 10,
        depth: Literal["shallow", "deep"] = "deep",
        source: str | None = None,
        include_private: bool = False,
    ) -> list[MemoryMatch]:
        if self._ams is None:
            return await asyncio.to_thread(
                self.recall, query, scope, categories, limit, depth, source, include_private
            )
        await self._adrain()
        root = self._root()
        known = self._known_sessions()
        if known is None:
            known = self._learn(info.session for info in await self._ams.sessions())
        names = sessions_under(root, self._path(scope), known)
        fetch, text = self._fetch(limit, categories, include_private), query[:MAX_QUERY_CHARS]
        found: list[RecalledMemory] = []
        for chunk in chunks(names):
            found += await self._ams.recall(
                text, session=chunk, limit=fetch, min_score=self._min_score
            )
        return self._matches(found, root, limit, categories, source, include_private)

    async def aremember(
        self,
        content: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> MemoryRecord | None:
        records = await self.aremember_many(
            [content], scope, categories, metadata, importance, source, private, agent_role,
            root_scope,
        )  # fmt: skip
        return records[0] if records else None

    async def aremember_many(
        self,
        contents: list[str],
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> list[MemoryRecord]:
        """Store ``contents`` and return their records once written."""
        if not contents or self.read_only:
            return []
        args = (scope, categories, metadata, importance, source, private, agent_role, root_scope)
        items = self._items(contents, args)
        if self._ams is None:
            results = await asyncio.to_thread(self._save, items)
        else:
            results = []
            self._wrote(items)
            for start in range(0, len(items), MAX_BATCH):
                results += await self._ams.remember_many(items[start : start + MAX_BATCH])
        root = self._root(agent_role)
        return [self._record(r.memory, root) for r in results]
