"""API keys: issue them, store only their hash, and resolve a request's key to its account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from memstore.errors import AuthenticationError, PermissionDeniedError, ValidationError
from memstore.stores.base import ApiKeyRow, Store

KEY_PREFIX = "am_live_"
KEY_RANDOM_CHARS = 40
_BASE62 = string.ascii_letters + string.digits
PLANS = ("free", "pro", "unlimited")
LAST_USED_RESOLUTION = 60.0  # seconds; last_used_at is written at most this often per key


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    account_id: str
    account_name: str
    plan: str
    admin: bool = False


def issue_key(
    store: Store, account_name: str = "default", plan: str = "unlimited", *, admin: bool = False
) -> IssuedKey:
    """Create a key (and its account, if new); the plaintext is returned once, never stored.

    An ``admin`` key may also manage every key of the install (``require_admin``)."""
    if plan not in PLANS:
        raise ValidationError(f"plan must be one of {', '.join(PLANS)}")
    now = time.time()
    account = store.find_account_by_name(account_name) or store.create_account(
        "acc_" + secrets.token_hex(8), account_name, plan, now
    )
    key = KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_RANDOM_CHARS))
    row = ApiKeyRow(
        id="key_" + secrets.token_hex(8),
        account_id=account.id,
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
        created_at=now,
        admin=admin,
    )
    store.create_key(row)
    return IssuedKey(key, row.id, account.id, account.name, account.plan, admin)


def authenticate(store: Store, authorization: str | None) -> str:
    """The account id of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
    return authenticate_key(store, authorization).account_id


def authenticate_key(store: Store, authorization: str | None) -> ApiKeyRow:
    """The row of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
    if not authorization:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer am_live_...'")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationError("the Authorization header must be 'Bearer <API key>'")
    digest = hash_key(key)
    row = store.find_key(digest)
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise AuthenticationError("invalid API key")
    if row.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    now = time.time()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        store.touch_key(row.id, now)
    return row


# The same HTTP Bearer scheme as /v1's (server/routes.py), so OpenAPI declares one scheme.
bearer = HTTPBearer(
    auto_error=False, bearerFormat="am_live_...", description="An API key: am_live_..."
)


def require_admin(request: Request, _: Annotated[object, Security(bearer)]) -> ApiKeyRow:
    """FastAPI dependency: the caller's key, which must be an admin key (401 / 403 if not)."""
    row = authenticate_key(request.app.state.engine.store, request.headers.get("authorization"))
    request.scope["state"]["account"] = row.account_id
    if not row.admin:
        raise PermissionDeniedError(
            "this needs an admin key; create one with 'memstore keys create --admin'"
        )
    return row


AdminKey = Annotated[ApiKeyRow, Depends(require_admin)]
