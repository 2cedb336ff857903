"""/v1 routes about the caller's own account: who the key is, usage per day, export.

The console reads these like any client; each is scoped to the key's account alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from memstore.accounts import DEFAULT_PLAN
from memstore.models import UsageDays
from memstore.server.auth import current_key
from memstore.server.routes import Account, Engine
from memstore.server.routes import router as v1_router
from memstore.stores.base import ApiKeyRow
from memstore.transfer import export_jsonl

router = APIRouter(responses=v1_router.responses)
EXPORT_SPOOL_BYTES = 16 * 1024 * 1024  # larger exports spill to a temporary file


class Me(BaseModel):
    """The caller's key and account (never the key itself)."""

    account_id: str
    account: str
    plan: str
    key_id: str
    key_prefix: str
    admin: bool


@router.get("/v1/me", response_model=Me)
def me(key: Annotated[ApiKeyRow, Depends(current_key)], engine: Engine) -> Me:
    """Which account this key belongs to, its plan, and whether it is an admin key."""
    account = engine.store.get_account(key.account_id)
    return Me(
        account_id=key.account_id,
        account=account.name if account else key.account_id,
        plan=account.plan if account else DEFAULT_PLAN,
        key_id=key.id,
        key_prefix=key.prefix,
        admin=key.admin,
    )


@router.get("/v1/usage/daily", response_model=UsageDays)
def usage_daily(account: Account, engine: Engine) -> UsageDays:
    """Operations per UTC day of the current month (the days that had any)."""
    return engine.usage_days(account)


@router.get(
    "/v1/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines in the format `memstore export` writes",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def export(account: Account, engine: Engine) -> StreamingResponse:
    """Every memory of the account as JSON Lines, exactly as ``memstore export`` writes them
    (a header line, then one memory per line with its vector); ``memstore import`` reads it."""
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by chunks() when sent)
        max_size=EXPORT_SPOOL_BYTES, mode="w+", encoding="utf-8"
    )
    try:
        export_jsonl(engine, account, spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[str]:
        with spool:
            while block := spool.read(64 * 1024):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="memstore-export.jsonl"'},
    )
