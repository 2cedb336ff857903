"""memstore as an MCP server: five tools built with the official SDK's FastMCP, served over
stdio by ``memstore mcp`` and over streamable HTTP at ``/mcp`` (``memstore.server.mcp``).

Over stdio the tools run on one ``Memstore`` (the embedded store, or a server through the
SDK). Over HTTP they run on the server's engine as the account of the request's Bearer key,
so quotas, validation and isolation are exactly the API's.
"""

from __future__ import annotations

import builtins
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.session import ServerSession
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from memstore.backend import Metadata
from memstore.errors import MemstoreError
from memstore.models import MemoryPage, MetadataValue, RecalledMemory, RememberResult, SessionInfo

if TYPE_CHECKING:
    from memstore.client import Memstore

log = logging.getLogger("memstore.mcp")
T = TypeVar("T")
ToolFn = TypeVar("ToolFn", bound=Callable[..., Any])

INSTRUCTIONS = """\
Long-term memory that persists across conversations and runs. Call `recall` before \
starting a task to learn what earlier work found (decisions, facts, user preferences), and \
`remember` afterwards to store what a later run should know: one self-contained fact per \
memory, written so it makes sense without this conversation. Sessions scope memories (a \
project, a user, an agent role); leave `session` out to use this server's default."""


# -- what the tools run on --------------------------------------------------------------------


class Memories(Protocol):
    """The five operations the tools need, for one account."""

    def remember(
        self,
        content: str,
        session: str | None,
        metadata: Metadata | None,
        ttl: float | None,
        supersedes: builtins.list[str] | None = None,
        on_similar: str | None = None,
    ) -> RememberResult: ...
    def recall(
        self,
        query: str,
        session: str | list[str] | None,
        limit: int,
        min_score: float | None,
        filters: Metadata | None,
    ) -> list[RecalledMemory]: ...
    def forget(self, memory_id: str) -> None: ...
    def list(self, session: str | None, limit: int, cursor: str | None) -> MemoryPage: ...
    def sessions(self) -> builtins.list[SessionInfo]: ...


class SDKMemories:
    """The operations through a ``Memstore`` (embedded store or a server)."""

    def __init__(self, client: Memstore) -> None:
        self.client = client

    def remember(
        self,
        content: str,
        session: str | None,
        metadata: Metadata | None,
        ttl: float | None,
        supersedes: builtins.list[str] | None = None,
        on_similar: str | None = None,
    ) -> RememberResult:
        item: dict[str, Any] = {"content": content, "session": session, "metadata": metadata}
        item["ttl"] = ttl
        if supersedes:
            item["supersedes"] = supersedes
        if on_similar is not None:
            item["on_similar"] = on_similar
        return self.client.remember_many([item])[0]

    def recall(
        self,
        query: str,
        session: str | list[str] | None,
        limit: int,
        min_score: float | None,
        filters: Metadata | None,
    ) -> list[RecalledMemory]:
        return self.client.recall(query, session, limit, min_score, filters)

    def forget(self, memory_id: str) -> None:
        self.client.forget(memory_id)

    def list(self, session: str | None, limit: int, cursor: str | None) -> MemoryPage:
        return self.client.list(session, limit, cursor)

    def sessions(self) -> builtins.list[SessionInfo]:
        return self.client.sessions()


@dataclass(frozen=True)
class Target:
    """Where one tool call goes: the account's memories and the default session."""

    memories: Memories
    default_session: str | None


# What a tool receives from FastMCP: the session, any lifespan state, and (over HTTP) the
# Starlette request.
ToolContext = Context[ServerSession, Any, Request]
Resolve = Callable[[ToolContext], Target]


# -- tool results (the output schemas the client sees) ----------------------------------------


class MemoryOut(BaseModel):
    id: str = Field(description="Pass to `forget` to delete this memory.")
    content: str
    session: str | None = Field(description="The memory's session; null is the shared session.")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    created_at: datetime


class RecalledOut(MemoryOut):
    score: float = Field(description="Relevance in [0, 1]; higher is better.")
    similar: int = Field(
        default=0, description="How many older near-identical versions this result stands for."
    )


class Remembered(BaseModel):
    memory: MemoryOut
    deduplicated: bool = Field(
        description="True if nothing was added: identical content was already in that session "
        "(or, with on_similar='skip', a near-identical one; `memory` is that one)."
    )


class Recalled(BaseModel):
    memories: list[RecalledOut] = Field(description="Best first.")


class Forgotten(BaseModel):
    forgotten: str = Field(description="The id of the memory that was deleted.")


class Page(BaseModel):
    memories: list[MemoryOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class SessionOut(BaseModel):
    session: str | None = Field(description="null is the shared session.")
    count: int


class Sessions(BaseModel):
    sessions: list[SessionOut]


Out = TypeVar("Out", bound=MemoryOut)


def _out(memory: BaseModel, cls: type[Out]) -> Out:
    """The tool's view of a memory: the fields of ``cls`` only."""
    return cls.model_validate(memory.model_dump(include=set(cls.model_fields)))


# -- the server ------------------------------------------------------------------------------


async def _run(fn: Callable[[], T]) -> T:
    """Run a blocking operation off the event loop; turn memstore errors into tool errors
    with the API's message."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except MemstoreError as exc:
        raise ToolError(f"{exc.message} ({exc.code})") from exc
    except Exception as exc:
        log.exception("MCP tool failed")
        raise ToolError("internal error; see the server log") from exc


SessionArg = Annotated[
    str | None,
    Field(description="Session name (a project, user or agent role). Omit for the default."),
]
Limit = Annotated[int, Field(description="How many memories at most.")]


def build_server(resolve: Resolve, **settings: Any) -> FastMCP:
    """A FastMCP server whose tools run on the ``Target`` that ``resolve`` gives per call."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mcp = FastMCP("memstore", instructions=INSTRUCTIONS, **settings)
    # FastMCP calls logging.basicConfig; the process's logging is the host's to configure.
    root.handlers[:], root.level = handlers, level

    def tool(**annotations: Any) -> Callable[[ToolFn], ToolFn]:
        """Register a tool; its docstring, dedented, is the description the model reads."""

        def register(fn: ToolFn) -> ToolFn:
            description = inspect.cleandoc(fn.__doc__ or "")
            hints = ToolAnnotations(**annotations)
            mcp.add_tool(fn, description=description, annotations=hints)
            return fn

        return register

    def session_or_default(target: Target, session: str | None) -> str | None:
        return target.default_session if session is None else session

    @tool(title="Remember", readOnlyHint=False, destructiveHint=False, idempotentHint=True)
    async def remember(
        content: Annotated[str, Field(description="The fact to store, self-contained.")],
        ctx: ToolContext,
        session: SessionArg = None,
        metadata: Annotated[
            dict[str, MetadataValue] | None,
            Field(description='Flat JSON object of tags, e.g. {"kind": "decision"}.'),
        ] = None,
        ttl: Annotated[
            float | None, Field(description="Seconds until the memory expires; omit to keep it.")
        ] = None,
        supersedes: Annotated[
            list[str] | None,
            Field(
                description="Ids of memories this one corrects or replaces: recall stops "
                "returning them, but they are kept as history."
            ),
        ] = None,
        on_similar: Annotated[
            Literal["keep", "skip", "supersede"] | None,
            Field(
                description="If a near-identical memory is already current in the session: "
                "'keep' both (default), 'skip' storing this one, or 'supersede' the old one."
            ),
        ] = None,
    ) -> Remembered:
        """Store a memory for later runs and conversations. Storing the same content twice
        in one session keeps a single copy. When a fact changed, pass the old memory's id in
        `supersedes` so only the new version is recalled."""
        target = resolve(ctx)
        where = session_or_default(target, session)
        result = await _run(
            lambda: target.memories.remember(content, where, metadata, ttl, supersedes, on_similar)
        )
        return Remembered(memory=_out(result.memory, MemoryOut), deduplicated=result.deduplicated)

    @tool(title="Recall", readOnlyHint=True)
    async def recall(
        query: Annotated[str, Field(description="What you need to know, in plain words.")],
        ctx: ToolContext,
        session: Annotated[
            str | None,
            Field(description="One session to search; '*' searches all. Omit for the default."),
        ] = None,
        sessions: Annotated[
            list[str] | None, Field(description="Several sessions to search instead of one.")
        ] = None,
        limit: Limit = 5,
        min_score: Annotated[
            float | None, Field(description="Drop memories scoring below this (0 to 1).")
        ] = None,
        filters: Annotated[
            dict[str, MetadataValue] | None,
            Field(description="Keep only memories whose metadata has these exact values."),
        ] = None,
    ) -> Recalled:
        """Find the stored memories most relevant to a query, best first, each with a score
        in [0, 1]."""
        if session is not None and sessions is not None:
            raise ToolError("give either session or sessions, not both (invalid_request)")
        target = resolve(ctx)
        where = sessions if sessions is not None else session_or_default(target, session)
        found = await _run(lambda: target.memories.recall(query, where, limit, min_score, filters))
        return Recalled(memories=[_out(m, RecalledOut) for m in found])

    @tool(title="Forget", readOnlyHint=False, destructiveHint=True)
    async def forget(
        id: Annotated[str, Field(description="The memory's id (mem_...), from recall or list.")],
        ctx: ToolContext,
    ) -> Forgotten:
        """Delete one memory by id, for good (e.g. one that was stored by mistake). To correct
        an outdated fact and keep its history, remember the new fact with `supersedes`."""
        target = resolve(ctx)
        await _run(lambda: target.memories.forget(id))
        return Forgotten(forgotten=id)

    @tool(title="List memories", readOnlyHint=True)
    async def list_memories(
        ctx: ToolContext,
        session: Annotated[
            str | None,
            Field(description="Session to list; '*' lists all. Omit for the default."),
        ] = None,
        limit: Limit = 20,
        cursor: Annotated[
            str | None, Field(description="next_cursor from the previous page.")
        ] = None,
    ) -> Page:
        """List stored memories, newest first, a page at a time (to browse, not to search:
        use recall to find what is relevant)."""
        target = resolve(ctx)
        where = session_or_default(target, session)
        page = await _run(lambda: target.memories.list(where, limit, cursor))
        return Page(
            memories=[_out(m, MemoryOut) for m in page.memories], next_cursor=page.next_cursor
        )

    @tool(title="List sessions", readOnlyHint=True)
    async def list_sessions(ctx: ToolContext) -> Sessions:
        """List the sessions that hold memories, with how many each holds."""
        target = resolve(ctx)
        found = await _run(target.memories.sessions)
        return Sessions(sessions=[SessionOut(session=s.session, count=s.count) for s in found])

    return mcp


# -- stdio -----------------------------------------------------------------------------------


def run_stdio(client: Memstore, default_session: str | None = None) -> None:
    """Serve the tools over stdio on one ``Memstore`` until the client disconnects."""
    target = Target(SDKMemories(client), default_session)
    build_server(lambda ctx: target, log_level="WARNING").run("stdio")
