"""Data shapes shared by the engine, the HTTP API and the SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

MetadataValue = str | int | float | bool | None

MAX_CONTENT_BYTES = 32 * 1024
MAX_SESSION_CHARS = 256
MAX_METADATA_KEYS = 64
MAX_METADATA_BYTES = 16 * 1024
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
MAX_RECALL_LIMIT = 100
MAX_LIST_LIMIT = 1000
MAX_BATCH = 100
ALL_SESSIONS = "*"


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


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


class RecalledMemory(Memory):
    """A memory returned by recall, with its relevance ``score`` in [0, 1] (higher is better)."""

    score: float


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


class Usage(_Record):
    """Operations used this calendar month (UTC) and when the counter resets."""

    account: str
    plan: str
    period: str
    ops_used: int
    ops_limit: int | None
    ops_remaining: int | None
    resets_at: datetime


# -- HTTP request and response bodies (the OpenAPI document is generated from these)

Scalar = str | int | float | bool | None
# Documented as a flat object of scalars, but checked by memstore.validation (as in every face),
# so a nested value gets one clear message instead of pydantic's dump of the union.
FlatObject = Annotated[dict[str, Any], WithJsonSchema(TypeAdapter(dict[str, Scalar]).json_schema())]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RememberRequest(_Body):
    content: str = Field(description="Text to remember (1 byte to 32 KiB of UTF-8).")
    session: str | None = Field(None, description="Session; omit for the shared session.")
    metadata: FlatObject | None = Field(None, description="Flat JSON object.")
    ttl: float | None = Field(None, description="Seconds until the memory expires.")


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
