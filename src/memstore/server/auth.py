"""API-key authentication for the server: thin wrappers over ``memstore.accounts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from memstore.accounts import DEFAULT_ACCOUNT, DEFAULT_PLAN, Accounts, IssuedKey
from memstore.errors import PermissionDeniedError
from memstore.stores.base import ApiKeyRow, Store

__all__ = [
    "AdminKey",
    "IssuedKey",
    "authenticate",
    "authenticate_key",
    "current_key",
    "issue_key",
    "require_admin",
]


def issue_key(
    store: Store,
    account_name: str = DEFAULT_ACCOUNT,
    plan: str = DEFAULT_PLAN,
    *,
    admin: bool = False,
) -> IssuedKey:
    """Create a key (and its account, if new); the plaintext is returned once, never stored.

    An ``admin`` key may also manage every key of the install (``require_admin``)."""
    return Accounts(store).create_key(account_name, plan, admin=admin)


def authenticate(store: Store, authorization: str | None) -> str:
    """The account id of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
    return authenticate_key(store, authorization).account_id


def authenticate_key(store: Store, authorization: str | None) -> ApiKeyRow:
    """The row of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
    return Accounts(store).verify_key(authorization)


# The same HTTP Bearer scheme routes.py declares (one entry in the OpenAPI document): it
# only documents the header; authenticate_key() checks it and gives the precise 401s.
bearer = HTTPBearer(
    auto_error=False, bearerFormat="am_live_...", description="An API key: am_live_..."
)


def current_key(request: Request, _: Annotated[object, Security(bearer)]) -> ApiKeyRow:
    """FastAPI dependency: the caller's valid, unrevoked key (401 otherwise)."""
    row = authenticate_key(request.app.state.engine.store, request.headers.get("authorization"))
    request.scope["state"]["account"] = row.account_id
    return row


def require_admin(request: Request, _: Annotated[object, Security(bearer)]) -> ApiKeyRow:
    """FastAPI dependency: the caller's key, which must be an admin key (401 / 403 if not)."""
    row = current_key(request, _)
    if not row.admin:
        raise PermissionDeniedError(
            "this needs an admin key; create one with 'memstore keys create --admin'"
        )
    return row


AdminKey = Annotated[ApiKeyRow, Depends(require_admin)]
