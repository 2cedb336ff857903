"""API keys: issue them, store only their hash, and resolve a request's key to its account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass

from memstore.engine import LOCAL_ACCOUNT
from memstore.errors import AuthenticationError, ValidationError
from memstore.stores.base import ApiKeyRow, Store

KEY_PREFIX = "am_live_"
KEY_RANDOM_CHARS = 40
_BASE62 = string.ascii_letters + string.digits
PLANS = ("free", "pro", "unlimited")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    account_id: str
    account_name: str
    plan: str


def issue_key(store: Store, account_name: str = "default", plan: str = "unlimited") -> IssuedKey:
    """Create a key (and its account, if new); the plaintext is returned once, never stored."""
    if plan not in PLANS:
        raise ValidationError(f"plan must be one of {', '.join(PLANS)}")
    now = time.time()
    # The account named "local" is the one the CLI and Memstore.local() use, whose id is
    # "local" too: a key made for it must land in that account (issue 14, item 11).
    new_id = LOCAL_ACCOUNT if account_name == LOCAL_ACCOUNT else "acc_" + secrets.token_hex(8)
    account = store.find_account_by_name(account_name) or store.create_account(
        new_id, account_name, plan, now
    )
    key = KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_RANDOM_CHARS))
    row = ApiKeyRow(
        id="key_" + secrets.token_hex(8),
        account_id=account.id,
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
        created_at=now,
    )
    store.create_key(row)
    return IssuedKey(key, row.id, account.id, account.name, account.plan)


def authenticate(store: Store, authorization: str | None) -> str:
    """The account id of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
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
    return row.account_id
