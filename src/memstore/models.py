"""Data shapes shared by the engine, the HTTP API and the SDK."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, model_validator

if TYPE_CHECKING:
    from memstore.stores.base import MemoryRow

MetadataValue = str | int | float | bool | None

MAX_CONTENT_BYTES = 32 * 1024
MAX_SESSION_CHARS = 256
MAX_METADATA_KEYS = 64
MAX_FILTER_KEYS = 16  # recall filters; each is one more condition per candidate row
MAX_INTEGER = 2**63 - 1  # metadata integers are signed 64-bit in both stores
MAX_METADATA_BYTES = 16 * 1024
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
MAX_RECALL_LIMIT = 100
MAX_LIST_LIMIT = 1000
MAX_BATCH = 100
MAX_SESSIONS = 100  # sessions one read may name
ALL_SESSIONS = "*"


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def content_hash(content: str) -> str:
    """The dedup key of a memory's text."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def new_memory_id() -> str:
    return "mem_" + secrets.token_hex(12)


class _Record(BaseModel):
    """A pydantic model that also reads like a dict: ``m["content"]``, ``m.get("score")``."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self) -> list[str]:
        return list(type(self).model_fields)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields


class Memory(_Record):
    """One stored memory. ``session`` is None for the account's shared session."""

    id: str
    content: str
    session: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    # Superseding (docs/memory-over-time.md): when the memory stopped being current, and by
    # which memory (None: invalidated, or its successor is gone). None while it is current.
    superseded_at: datetime | None = None
    superseded_by: str | None = None


class RecallPeriod(_Record):
    """A month or year the query named, [start, end) in UTC."""

    start: datetime
    end: datetime


class RecallWhy(_Record):
    """Why recall returned a memory: the parts of its rank (``explain=true``). See
    docs/memory-over-time.md."""

    cosine: float | None = Field(
        None, description="Raw cosine similarity of the query and the memory (e5 vectors)."
    )
    keywords: list[str] = Field(
        default_factory=list, description="Query terms the keyword search matched in it."
    )
    keyword_rank: int | None = Field(
        None, description="Its place in the keyword search's results (1 = first)."
    )
    neighbor_of: str | None = Field(
        None,
        description="Id of the memory stored next to it that matched the query better and "
        "passed part of its relevance to it (context spreading).",
    )
    period: RecallPeriod | None = Field(
        None, description="The period named by the query in which it was created."
    )
    similar: int = Field(0, description="Near-duplicates collapsed into it.")

    def describe(self) -> str:
        """One line for people: ``cosine 0.87 · keywords acme, docs (#2) · ...``."""
        parts = [] if self.cosine is None else [f"cosine {self.cosine:.2f}"]
        if self.keywords or self.keyword_rank is not None:
            parts.append(f"keywords {', '.join(self.keywords) or '-'} (#{self.keyword_rank})")
        if self.neighbor_of:
            parts.append(f"next to {self.neighbor_of}")
        if self.period:
            parts.append(f"in {self.period.start:%Y-%m-%d}..{self.period.end:%Y-%m-%d}")
        if self.similar:
            parts.append(f"{self.similar} similar")
        return " · ".join(parts)


class RecalledMemory(Memory):
    """A memory returned by recall, with its relevance ``score`` in [0, 1] (higher is better).

    ``similar`` counts the older near-duplicates collapsed into it (their ids, best first, in
    ``similar_ids``); ``why`` is filled when recall is asked to explain."""

    score: float
    similar: int = 0
    similar_ids: list[str] = Field(default_factory=list)
    why: RecallWhy | None = None


class RememberResult(_Record):
    """What remember returns: the memory and whether it already existed (no copy was made)."""

    memory: Memory
    deduplicated: bool


class MemoryPage(_Record):
    """One page of a listing; pass ``next_cursor`` back to get the next one (None at the end)."""

    memories: list[Memory]
    next_cursor: str | None = None


class SessionInfo(_Record):
    session: str | None
    count: int
    last_write: datetime | None = None  # the latest created_at / updated_at in the session


class Usage(_Record):
    """Operations used this calendar month (UTC) and when the counter resets."""

    account: str
    plan: str
    period: str
    ops_used: int
    ops_limit: int | None
    ops_remaining: int | None
    resets_at: datetime


def to_memory(row: MemoryRow) -> Memory:
    """A store row as the public model (the shared session "" becomes None)."""
    return Memory(**memory_fields(row))


def memory_fields(row: MemoryRow) -> dict[str, Any]:
    """``to_memory``'s fields, for a model that extends ``Memory`` (built in one validation)."""
    return {
        "id": row.id,
        "content": row.content,
        "session": row.session or None,
        "metadata": row.metadata,
        "created_at": datetime.fromtimestamp(row.created_at, tz=UTC),
        "updated_at": datetime.fromtimestamp(row.updated_at, tz=UTC),
        "expires_at": to_datetime(row.expires_at),
        "superseded_at": to_datetime(row.superseded_at),
        "superseded_by": row.superseded_by,
    }


class DayUsage(_Record):
    day: str  # UTC, YYYY-MM-DD
    ops: int


class UsageDays(_Record):
    """Operations per UTC day of the current month; days without operations are left out."""

    period: str
    resets_at: datetime
    days: list[DayUsage]


# -- HTTP request and response bodies (the OpenAPI document is generated from these)

Scalar = str | int | float | bool | None
# Documented as a flat object of scalars, but checked by memstore.validation (as in every face),
# so a nested value gets one clear message instead of pydantic's dump of the union.
FlatObject = Annotated[dict[str, Any], WithJsonSchema(TypeAdapter(dict[str, Scalar]).json_schema())]


def _lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in a parsed JSON value is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


class _Body(BaseModel):
    """A request body: no unknown fields, no type coercion (``"ttl": "10"`` or ``true`` is
    refused, not read as 10 or 1), and valid Unicode everywhere (issue 14, items 4, 11)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _lone_surrogate(data):
            raise ValueError("strings must be valid Unicode (no lone surrogates such as \\ud800)")
        return data


class RememberRequest(_Body):
    content: str = Field(description="Text to remember (1 byte to 32 KiB of UTF-8).")
    session: str | None = Field(None, description="Session; omit for the shared session.")
    metadata: FlatObject | None = Field(None, description="Flat JSON object.")
    ttl: float | None = Field(None, description="Seconds until the memory expires.")
    supersedes: list[str] | None = Field(
        None, description="Ids of memories of this account that this one replaces."
    )
    on_similar: str | None = Field(
        None,
        description="'keep' (default), 'supersede' or 'skip': what to do when a current memory"
        " of the session is a near-duplicate (docs/memory-over-time.md).",
    )


class RememberBatchRequest(_Body):
    memories: list[RememberRequest] = Field(description="1 to 100 memories.")


class RecallRequest(_Body):
    query: str = Field(description="What to look for.")
    session: str | list[str | None] | None = Field(
        None, description="One session, a list, '*' for all; omit for the shared session."
    )
    limit: int = 5
    min_score: float | None = None
    filters: FlatObject | None = Field(
        None, description="Metadata values the memories must have (exact match)."
    )
    include_superseded: bool = Field(False, description="Also superseded memories.")
    as_of: str | float | None = Field(
        None, description="Memories current at this time (ISO 8601 or epoch seconds)."
    )
    collapse: bool = Field(
        True, description="Show near-duplicates of one session once, as the newest; false: all."
    )
    explain: bool = Field(False, description="Add ``why`` to each result: the parts of its rank.")


class UpdateRequest(_Body):
    content: str | None = None
    metadata: FlatObject | None = Field(None, description="Replaces the metadata.")


class RememberResponse(Memory):
    deduplicated: bool = Field(description="True if identical content was already stored.")


class RememberBatchResponse(_Record):
    memories: list[RememberResponse]


class RecallResponse(_Record):
    memories: list[RecalledMemory]


class SessionsResponse(_Record):
    sessions: list[SessionInfo]


class DeletedResponse(_Record):
    deleted: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class SessionStats(_Record):
    """Hygiene figures of one session (docs/memory-over-time.md, "Hygiene figures")."""

    session: str | None
    memories: int = Field(description="Live memories (not expired), current or superseded.")
    current: int
    superseded: int
    expired_purged: int = Field(description="Expired memories purged from it, ever.")
    never_recalled: int = Field(description="Live memories no recall has returned yet.")
    near_duplicate_groups: int = Field(
        description="Groups of current memories with e5 cosine >= near_duplicate_cosine."
    )


class Stats(SessionStats):
    """An account's figures (``session`` None: all sessions) and each session's."""

    near_duplicate_cosine: float
    near_duplicates_complete: bool = Field(
        description="False when the near-duplicate bound cut the examined memories short."
    )
    sessions: list[SessionStats] = Field(default_factory=list)
