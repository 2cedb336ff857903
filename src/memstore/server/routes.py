"""The /v1 routes. Each one authenticates, calls one engine operation, and shapes JSON."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor

from memstore.engine import MemoryEngine
from memstore.errors import ServiceUnavailableError, ValidationError
from memstore.models import (
    DeletedResponse,
    ErrorResponse,
    Memory,
    MemoryPage,
    RecallRequest,
    RecallResponse,
    RememberBatchRequest,
    RememberBatchResponse,
    RememberRequest,
    RememberResponse,
    SessionsResponse,
    Stats,
    UpdateRequest,
    Usage,
)
from memstore.server.caller import AuthCaller
from memstore.server.idempotency import IdempotencyKey, answer_once
from memstore.validation import SessionsArg

_errors: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing, invalid or revoked API key",
        404: "No such memory in this account",
        408: "The request body was not sent in time",
        413: "Request body over 1 MiB",
        422: "Invalid values",
        429: "Monthly operations used up, or too many requests now (see Retry-After)",
        503: "Not ready",
    }.items()
}

router = APIRouter(responses=_errors)
_ALL_VERSIONS = "Also superseded memories, each with superseded_at and superseded_by."
_AS_OF = "Memories current at this time: ISO 8601 (UTC if no zone) or epoch seconds."
health_router = APIRouter()  # /healthz and /readyz: no key, no body, no quota


class MemoryIdConvertor(Convertor[str]):
    """A memory id segment that is not one of the fixed routes beside it, so that
    ``GET /v1/memory/remember`` is a 405 (wrong method) rather than "no memory 'remember'"."""

    regex = "(?!(?:remember|recall)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("memory_id", MemoryIdConvertor())

_in_progress: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorResponse,
        "description": "A request with this Idempotency-Key is still in progress (Retry-After)",
    }
}


def engine_of(request: Request) -> MemoryEngine:
    engine: MemoryEngine = request.app.state.engine
    return engine


async def limited_account(who: AuthCaller) -> str:
    """The account, its key checked (its own worker-thread hop), within its limits: for
    routes that are not ``async`` (the /v1 routes here use ``Caller.run``: one hop)."""
    return await who.verified()


async def engine_dependency(request: Request) -> MemoryEngine:
    """The engine, as a coroutine: a sync dependency would cost a worker-thread hop."""
    return engine_of(request)


Account = Annotated[str, Depends(limited_account)]
Engine = Annotated[MemoryEngine, Depends(engine_dependency)]


def json_response(model: BaseModel, status: int = 200) -> Response:
    """``model`` as JSON, serialised once by pydantic-core: returning the model itself would
    have FastAPI validate it again against the response model before encoding it."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def _sessions_arg(session: list[str] | None) -> str | list[str] | None:
    if not session:
        return None
    return session[0] if len(session) == 1 else session


@router.post(
    "/v1/memory/remember",
    status_code=201,
    response_model=RememberResponse,
    responses={
        200: {
            "model": RememberResponse,
            "description": "Identical content was already in that session; nothing was added",
        },
        **_in_progress,
    },
)
async def remember(
    body: RememberRequest,
    request: Request,
    who: AuthCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Remember one memory. 201 when stored, 200 when identical content was already there."""
    engine = who.engine

    def answer(account: str) -> Response:
        def run() -> tuple[int, RememberResponse]:
            result = engine.remember(
                account,
                body.content,
                body.session,
                body.metadata,
                body.ttl,
                supersedes=body.supersedes,
                on_similar=body.on_similar,
            )
            memory = result.memory.model_dump()
            shaped = RememberResponse(**memory, deduplicated=result.deduplicated)
            return (200 if result.deduplicated else 201), shaped

        return answer_once(request, engine, account, idempotency_key, body, run)

    return await who.run(answer)


@router.post(
    "/v1/memory/remember/batch",
    status_code=201,
    response_model=RememberBatchResponse,
    responses=_in_progress,
)
async def remember_batch(
    body: RememberBatchRequest,
    request: Request,
    who: AuthCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Remember up to 100 memories in one transaction; each counts as one operation."""
    engine = who.engine

    def answer(account: str) -> Response:
        def run() -> tuple[int, RememberBatchResponse]:
            results = engine.remember_many(account, [m.model_dump() for m in body.memories])
            memories = [
                RememberResponse(**r.memory.model_dump(), deduplicated=r.deduplicated)
                for r in results
            ]
            return 201, RememberBatchResponse(memories=memories)

        return answer_once(request, engine, account, idempotency_key, body, run)

    return await who.run(answer)


@router.get("/v1/memory/recall", response_model=RecallResponse)
async def recall(
    who: AuthCaller,
    q: Annotated[str, Query(description="What to look for.")],
    session: Annotated[
        list[str] | None, Query(description="Repeatable; '*' for all; omit for shared.")
    ] = None,
    limit: int = 5,
    min_score: float | None = None,
    include_superseded: Annotated[bool, Query(description=_ALL_VERSIONS)] = False,
    as_of: Annotated[str | None, Query(description=_AS_OF)] = None,
    collapse: Annotated[
        bool, Query(description="Near-duplicates of one session shown once; false: all.")
    ] = True,
    explain: Annotated[bool, Query(description="Add `why` to each result.")] = False,
) -> Response:
    """The memories most relevant to ``q``, best first, each with a score in [0, 1]."""
    engine = who.engine
    sessions = _sessions_arg(session)

    def run(account: str) -> Response:
        found = engine.recall(
            account,
            q,
            sessions,
            limit,
            min_score,
            include_superseded=include_superseded,
            as_of=as_of,
            collapse=collapse,
            explain=explain,
        )
        return json_response(RecallResponse(memories=found))

    return await who.run(run)


@router.post("/v1/memory/recall", response_model=RecallResponse)
async def recall_post(body: RecallRequest, who: AuthCaller) -> Response:
    """Recall with a JSON body, which can also carry metadata ``filters``."""
    engine = who.engine

    def run(account: str) -> Response:
        found = engine.recall(
            account,
            body.query,
            body.session,
            body.limit,
            body.min_score,
            body.filters,
            include_superseded=body.include_superseded,
            as_of=body.as_of,
            collapse=body.collapse,
            explain=body.explain,
        )
        return json_response(RecallResponse(memories=found))

    return await who.run(run)


@router.get("/v1/memory", response_model=MemoryPage)
async def list_memories(
    who: AuthCaller,
    session: Annotated[list[str] | None, Query(description="Repeatable; '*' for all.")] = None,
    shared: Annotated[
        bool, Query(description="Also list the shared session (memories stored without one).")
    ] = False,
    limit: int = 50,
    cursor: str | None = None,
    include_superseded: Annotated[bool, Query(description=_ALL_VERSIONS)] = False,
    as_of: Annotated[str | None, Query(description=_AS_OF)] = None,
) -> Response:
    """Memories newest first, a page at a time; pass ``next_cursor`` back for the next page.
    No ``session``: the shared session; ``session=x&shared=true``: x and the shared one."""
    engine = who.engine
    sessions: SessionsArg = _sessions_arg(session)
    if shared and session:
        sessions = [None, *session]

    def run(account: str) -> Response:
        page = engine.list(
            account, sessions, limit, cursor, include_superseded=include_superseded, as_of=as_of
        )
        return json_response(page)

    return await who.run(run)


@router.delete("/v1/memory", response_model=DeletedResponse, responses=_in_progress)
async def forget_session(
    request: Request,
    who: AuthCaller,
    session: Annotated[str | None, Query(description="The session to forget.")] = None,
    shared: Annotated[
        bool, Query(description="Forget the shared session (memories stored without one).")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Forget every memory of one session: ``?session=NAME``, or ``?shared=true`` for the
    shared session."""
    engine = who.engine
    if shared and session is not None:
        raise ValidationError("give ?session=NAME or ?shared=true, not both")
    if not shared and session is None:
        raise ValidationError(
            "give ?session=NAME, or ?shared=true for the shared session: forgetting a whole "
            "account is not supported"
        )
    name = None if shared else session

    def answer(account: str) -> Response:
        def run() -> tuple[int, DeletedResponse]:
            return 200, DeletedResponse(deleted=engine.forget_session(account, name))

        return answer_once(request, engine, account, idempotency_key, None, run)

    return await who.run(answer)


@router.get("/v1/memory/{memory_id:memory_id}", response_model=Memory)
async def get_memory(memory_id: str, who: AuthCaller) -> Response:
    engine = who.engine
    return await who.run(lambda account: json_response(engine.get(account, memory_id)))


@router.patch(
    "/v1/memory/{memory_id:memory_id}",
    response_model=Memory,
    responses={
        409: {
            "model": ErrorResponse,
            "description": "The session already has that content, or a request with this "
            "Idempotency-Key is still in progress (Retry-After)",
        }
    },
)
async def update_memory(
    memory_id: str,
    body: UpdateRequest,
    request: Request,
    who: AuthCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Replace a memory's content and/or metadata."""
    engine = who.engine

    def answer(account: str) -> Response:
        def run() -> tuple[int, Memory]:
            return 200, engine.update(account, memory_id, body.content, body.metadata)

        return answer_once(request, engine, account, idempotency_key, body, run)

    return await who.run(answer)


@router.delete(
    "/v1/memory/{memory_id:memory_id}", response_model=DeletedResponse, responses=_in_progress
)
async def forget_memory(
    memory_id: str,
    request: Request,
    who: AuthCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Forget one memory. Retried with the same Idempotency-Key, it answers as the first time."""
    engine = who.engine

    def answer(account: str) -> Response:
        def run() -> tuple[int, DeletedResponse]:
            engine.forget(account, memory_id)
            return 200, DeletedResponse(deleted=1)

        return answer_once(request, engine, account, idempotency_key, None, run)

    return await who.run(answer)


@router.post(
    "/v1/memory/{memory_id:memory_id}/invalidate", response_model=Memory, responses=_in_progress
)
async def invalidate_memory(
    memory_id: str,
    request: Request,
    who: AuthCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Mark a memory no longer current (kept, with ``superseded_at``); idempotent."""
    engine = who.engine

    def answer(account: str) -> Response:
        def run() -> tuple[int, Memory]:
            return 200, engine.invalidate(account, memory_id)

        return answer_once(request, engine, account, idempotency_key, None, run)

    return await who.run(answer)


@router.get("/v1/stats", response_model=Stats)
async def stats(
    who: AuthCaller,
    session: Annotated[str | None, Query(description="One session; omit for all.")] = None,
) -> Response:
    """Hygiene figures: memories, current and superseded, expired and purged, near-duplicate
    groups and never recalled, per session and in all (docs/memory-over-time.md)."""
    engine = who.engine
    return await who.run(lambda account: json_response(engine.stats(account, session)))


@router.get("/v1/sessions", response_model=SessionsResponse)
async def list_sessions(who: AuthCaller) -> Response:
    engine = who.engine
    return await who.run(
        lambda account: json_response(SessionsResponse(sessions=engine.sessions(account)))
    )


@router.get("/v1/usage", response_model=Usage)
async def usage(who: AuthCaller) -> Response:
    engine = who.engine
    return await who.run(lambda account: json_response(engine.usage(account)))


# Health and readiness are coroutines: they never wait for a worker thread, so they answer
# while requests fill the pool (issue 14, item 2).
@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


READY_TIMEOUT_SECONDS = 5.0


@health_router.get(
    "/readyz",
    responses={503: {"model": ErrorResponse, "description": "The database does not answer"}},
)
async def readyz(request: Request) -> dict[str, str]:
    """The process can serve: its database answers (within 5 s)."""
    store = engine_of(request).store  # not a dependency: sync ones run on the worker pool
    try:
        await asyncio.wait_for(asyncio.to_thread(store.check), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        raise ServiceUnavailableError(f"database not ready: {type(exc).__name__}") from exc
    return {"status": "ready"}
