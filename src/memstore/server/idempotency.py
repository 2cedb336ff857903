"""Idempotency-Key: a write retried with the same key is applied once; retries get its answer.

The SDK sends one key per logical request on every POST, PATCH and DELETE. Answers are kept
in the store's ``idempotency_keys`` table (not in process memory: with ``--workers N`` or
several servers, a retry may reach another process) for ``WINDOW_SECONDS``; a replay is
not charged again and carries ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Header, Request, Response
from pydantic import BaseModel

from memstore.engine import MemoryEngine
from memstore.errors import ConflictError, ValidationError

WINDOW_SECONDS = 3600.0  # SDK retries end within a minute or two; an hour is ample
STALE_SECONDS = 60.0  # a claim unanswered this long belongs to a request that died
PURGE_INTERVAL_SECONDS = 60.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (1-255 printable ASCII characters). A retry with the "
        "same key and request within an hour gets the first answer and is not applied again.",
    ),
]

_purge_lock = threading.Lock()
_last_purge = 0.0


def _fingerprint(request: Request, body: BaseModel | None) -> str:
    query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
    payload = "" if body is None else body.model_dump_json()
    text = f"{request.method} {request.url.path}?{query}\n{payload}"
    return hashlib.sha256(text.encode()).hexdigest()


def _maybe_purge(engine: MemoryEngine, now: float) -> None:
    global _last_purge
    if now - _last_purge < PURGE_INTERVAL_SECONDS:
        return
    with _purge_lock:
        if now - _last_purge >= PURGE_INTERVAL_SECONDS:
            _last_purge = now
            engine.store.purge_requests(now - WINDOW_SECONDS)


def _json(status: int, body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def answer_once(
    request: Request,
    engine: MemoryEngine,
    account: str,
    key: str | None,
    body: BaseModel | None,
    run: Callable[[], tuple[int, BaseModel]],
) -> Response:
    """Run ``run`` (which returns a status and a response model) once per idempotency key."""
    if key is None:
        status, model = run()
        return _json(status, model.model_dump_json())
    if not _KEY.match(key):
        raise ValidationError("Idempotency-Key must be 1-255 printable ASCII characters")
    fingerprint = _fingerprint(request, body)
    now = engine.clock()
    _maybe_purge(engine, now)
    store = engine.store
    if store.claim_request(account, key, fingerprint, now, now - STALE_SECONDS):
        try:
            status, model = run()
        except BaseException:
            store.release_request(account, key)
            raise
        text = model.model_dump_json()
        store.answer_request(account, key, status, text)
        return _json(status, text)
    found = store.find_request(account, key)
    if found is None or found.status is None or found.body is None:
        raise ConflictError(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            headers={"Retry-After": "1"},
        )
    if found.fingerprint != fingerprint:
        raise ValidationError("this Idempotency-Key was already used for another request")
    return _json(found.status, found.body, {"Idempotent-Replayed": "true"})
