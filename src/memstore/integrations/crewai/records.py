"""How CrewAI's memory records map to memstore memories, and CrewAI's filters over them.

A record's text is the memory's content; its categories, importance, source and privacy go
into the memory's metadata under ``crewai.*`` keys, next to the caller's own metadata and the
integration's notes (``source: crewai``, ``agent: <role>``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from crewai.memory.types import MemoryRecord, ScopeInfo

from memstore.integrations.crewai.sessions import scope_of
from memstore.models import Memory as Stored

__all__ = [
    "HIDDEN",
    "IMPORTANCE",
    "category_counts",
    "memory_item",
    "naive_utc",
    "scope_info",
    "selected",
    "to_record",
    "visible",
]

# CrewAI's record fields kept in a memory's metadata; hidden from the record's own metadata
# (which CrewAI prints into prompts) together with the notes memstore's integration adds.
CATEGORIES, IMPORTANCE, SOURCE, PRIVATE = (
    "crewai.categories",
    "crewai.importance",
    "crewai.source",
    "crewai.private",
)
HIDDEN = {"source", "agent", "kind"}


def naive_utc(value: datetime) -> datetime:
    """UTC without tzinfo, as CrewAI's records carry (``datetime.utcnow()``)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _flat(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, default=str)


def visible(
    record: MemoryRecord, categories: list[str] | None, source: str | None, private: bool
) -> bool:
    """CrewAI's rules: a category filter keeps records with any of them; a private record
    is seen only by its own source (or with ``include_private``)."""
    if categories and not set(categories) & set(record.categories):
        return False
    return private or not record.private or (source is not None and record.source == source)


def selected(
    record: MemoryRecord,
    categories: list[str] | None,
    older_than: datetime | None,
    metadata_filter: dict[str, Any] | None,
    record_ids: list[str] | None,
) -> bool:
    if record_ids is not None and record.id not in record_ids:
        return False
    if older_than is not None and record.created_at >= naive_utc(older_than):
        return False
    if categories and not set(categories) & set(record.categories):
        return False
    wanted = (metadata_filter or {}).items()
    return all(record.metadata.get(k) == v for k, v in wanted)


def memory_item(
    content: str,
    session: str | None,
    categories: list[str] | None,
    metadata: dict[str, Any] | None,
    importance: float | None,
    source: str | None,
    private: bool,
    agent_role: str | None,
) -> dict[str, Any]:
    """The memstore item for one CrewAI record: its fields go into the metadata."""
    meta: dict[str, Any] = {k: _flat(v) for k, v in (metadata or {}).items()}
    meta["source"] = "crewai"
    if agent_role:
        meta["agent"] = agent_role
    if categories:
        meta[CATEGORIES] = json.dumps(categories)
    if importance is not None:
        meta[IMPORTANCE] = float(importance)
    if source is not None:
        meta[SOURCE] = source
    if private:
        meta[PRIVATE] = True
    return {"content": content, "session": session, "metadata": meta}


def to_record(memory: Stored, root: str | None, default_importance: float) -> MemoryRecord:
    """The CrewAI record of a memory in a memory whose root session is ``root``."""
    meta = memory.metadata
    return MemoryRecord(
        id=memory.id,
        content=memory.content,
        scope=scope_of(root, memory.session),
        categories=json.loads(str(meta.get(CATEGORIES) or "[]")),
        metadata={k: v for k, v in meta.items() if k not in HIDDEN and not k.startswith("crewai.")},
        importance=float(meta.get(IMPORTANCE, default_importance) or 0.0),
        created_at=naive_utc(memory.created_at),
        last_accessed=naive_utc(memory.updated_at),
        source=meta.get(SOURCE),
        private=bool(meta.get(PRIVATE, False)),
    )


def category_counts(records: Iterable[MemoryRecord]) -> dict[str, int]:
    """How many of ``records`` carry each category."""
    return dict(Counter(c for r in records for c in r.categories))


def scope_info(path: str, records: list[MemoryRecord], children: list[str]) -> ScopeInfo:
    """CrewAI's summary of scope ``path`` holding ``records``."""
    return ScopeInfo(
        path=path,
        record_count=len(records),
        categories=sorted({c for r in records for c in r.categories}),
        oldest_record=min((r.created_at for r in records), default=None),
        newest_record=max((r.created_at for r in records), default=None),
        child_scopes=children,
    )
