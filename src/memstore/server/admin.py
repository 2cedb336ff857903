"""/v1/admin: key management for admin keys only (``require_admin``: 401 without a valid
key, 403 for a key that is not an admin key). Used by the console's Keys page."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from memstore.accounts import DEFAULT_PLAN, PLANS, Accounts
from memstore.errors import NotFoundError, ValidationError
from memstore.models import DeletedResponse, ErrorResponse, to_datetime
from memstore.server.auth import AdminKey, issue_key
from memstore.server.routes import router as v1_router
from memstore.stores.base import Store

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={
        **v1_router.responses,
        403: {"model": ErrorResponse, "description": "The key is not an admin key"},
        404: {"model": ErrorResponse, "description": "No such active key"},
    },
)


class KeyInfo(BaseModel):
    """An API key as the install's admin sees it: never the key itself, only its prefix."""

    key_id: str
    prefix: str
    account_id: str
    account: str
    plan: str
    admin: bool
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class KeysResponse(BaseModel):
    keys: list[KeyInfo]


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=200, description="Account name (created if new).")
    plan: str = Field(DEFAULT_PLAN, description=f"One of {', '.join(PLANS)} (for a new account).")
    admin: bool = Field(False, description="May also manage every key of the install.")


class CreatedKey(KeyInfo):
    key: str = Field(description="The API key. Shown this once; only its hash is stored.")


def _store(request: Request) -> Store:
    store: Store = request.app.state.engine.store
    return store


@router.get("/keys", response_model=KeysResponse)
def list_keys(request: Request, _admin: AdminKey) -> KeysResponse:
    """Every key of the install, oldest first."""
    return KeysResponse(
        keys=[
            KeyInfo(
                key_id=k.key_id,
                prefix=k.prefix,
                account_id=k.account_id,
                account=k.account,
                plan=k.plan,
                admin=k.admin,
                created_at=to_datetime(k.created_at),
                last_used_at=to_datetime(k.last_used_at),
                revoked_at=to_datetime(k.revoked_at),
            )
            for k in Accounts(_store(request)).list_keys()
        ]
    )


@router.post("/keys", status_code=201, response_model=CreatedKey)
def create_key(body: CreateKeyRequest, request: Request, _admin: AdminKey) -> CreatedKey:
    """Create a key (and its account, if new). The response is the only time it is shown."""
    name = body.account.strip()
    if not name:
        raise ValidationError("account: give the account's name")
    store = _store(request)
    issued = issue_key(store, name, body.plan, admin=body.admin)
    row = next(k for k in store.list_keys() if k.id == issued.key_id)
    return CreatedKey(
        key=issued.key,
        key_id=issued.key_id,
        prefix=row.prefix,
        account_id=issued.account_id,
        account=issued.account_name,
        plan=issued.plan,
        admin=issued.admin,
        created_at=to_datetime(row.created_at),
    )


@router.delete("/keys/{key_id}", response_model=DeletedResponse)
def revoke_key(key_id: str, request: Request, _admin: AdminKey) -> DeletedResponse:
    """Revoke a key by id: requests with it fail at once."""
    if not key_id.startswith("key_") or not _store(request).revoke_key(key_id, time.time()):
        raise NotFoundError(f"no active key {key_id!r}")
    return DeletedResponse(deleted=1)
