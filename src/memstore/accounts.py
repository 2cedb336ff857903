"""Accounts, plans, API keys and usage: the only module that knows them.

An account is a tenant (id ``acc_...``, a unique name, a plan). A self-hosted install has
one account named ``default`` that the CLI, ``Memstore.local`` and the first key of
``memstore serve`` share; others are made by name. API keys are stored only as their
SHA-256 (plus a short prefix for display) and compared in constant time. Usage counts
operations per UTC calendar month against the plan's cap, atomically in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from memstore import metrics
from memstore.errors import AuthenticationError, QuotaExceededError, ValidationError
from memstore.models import Usage
from memstore.settings import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT  # re-exported
from memstore.stores.base import AccountRow, ApiKeyRow, DuplicateError, Store

PLANS: dict[str, int | None] = {"free": 1_000, "pro": 100_000, "unlimited": None}
DEFAULT_PLAN = "unlimited"
KEY_PREFIX = "am_live_"
KEY_RANDOM_CHARS = 40
_BASE62 = string.ascii_letters + string.digits


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


def month_bounds(now: float) -> tuple[str, datetime]:
    """The UTC calendar month of ``now`` as 'YYYY-MM', and when the next one starts."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return f"{moment.year:04d}-{moment.month:02d}", datetime(year, month, 1, tzinfo=UTC)


def check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise ValidationError(f"plan must be one of {', '.join(PLANS)}")
    return plan


LAST_USED_RESOLUTION = 60.0  # seconds; a key's last_used_at is written at most this often


class UsageMeter:
    """Holds the usage after the last charge made in its context (one HTTP request), so the
    server can send quota headers without asking the database again."""

    usage: Usage | None = None


# Set by the server per request; worker threads see the same meter (they run in a copy of
# the request's context, and the meter itself is shared).
current_meter: ContextVar[UsageMeter | None] = ContextVar("memstore_usage_meter", default=None)


@dataclass(frozen=True)
class IssuedKey:
    """A new key; ``key`` is the plaintext, shown once and never stored."""

    key: str
    key_id: str
    account_id: str
    account_name: str
    plan: str
    admin: bool = False


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the key itself."""

    key_id: str
    prefix: str
    account_id: str
    account: str
    plan: str
    created_at: float
    revoked_at: float | None = None
    admin: bool = False
    last_used_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Accounts:
    """Accounts, keys and usage over one Store."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # -- accounts
    def ensure(self, name: str = DEFAULT_ACCOUNT, plan: str = DEFAULT_PLAN) -> AccountRow:
        """The account called ``name``, created (with ``plan``) if there is none yet."""
        found = self.store.find_account_by_name(name)
        if found is not None:
            return found
        check_plan(plan)
        try:
            return self.store.create_account(
                "acc_" + secrets.token_hex(8), name, plan, self.clock()
            )
        except DuplicateError:  # another process created it just now
            again = self.store.find_account_by_name(name)
            if again is None:
                raise
            return again

    def ensure_id(self, account_id: str, plan: str = DEFAULT_PLAN) -> AccountRow:
        """The account with exactly this id (named after it), created if missing (tests,
        benchmarks and embedders that pick their own ids)."""
        found = self.store.get_account(account_id)
        if found is not None:
            return found
        try:
            return self.store.create_account(account_id, account_id, check_plan(plan), self.clock())
        except DuplicateError:
            again = self.store.get_account(account_id)
            if again is None:
                raise
            return again

    def list_accounts(self) -> list[AccountRow]:
        return self.store.list_accounts()

    def plan_of(self, account_id: str) -> str:
        account = self.store.get_account(account_id)
        return account.plan if account else DEFAULT_PLAN

    # -- keys
    def create_key(
        self, account: str = DEFAULT_ACCOUNT, plan: str = DEFAULT_PLAN, *, admin: bool = False
    ) -> IssuedKey:
        """A new key for the account named ``account`` (created with ``plan`` if new); an
        ``admin`` key may also manage every key of the install."""
        check_plan(plan)
        row = self.ensure(account, plan)
        key = KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_RANDOM_CHARS))
        key_row = ApiKeyRow(
            id="key_" + secrets.token_hex(8),
            account_id=row.id,
            prefix=key[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(key),
            created_at=self.clock(),
            admin=admin,
        )
        self.store.create_key(key_row)
        return IssuedKey(key, key_row.id, row.id, row.name, row.plan, admin)

    def list_keys(self) -> list[KeyInfo]:
        accounts = {a.id: a for a in self.store.list_accounts()}
        return [
            KeyInfo(
                key_id=k.id,
                prefix=k.prefix,
                account_id=k.account_id,
                account=accounts[k.account_id].name,
                plan=accounts[k.account_id].plan,
                created_at=k.created_at,
                revoked_at=k.revoked_at,
                admin=k.admin,
                last_used_at=k.last_used_at,
            )
            for k in self.store.list_keys()
        ]

    def has_keys(self) -> bool:
        return bool(self.store.list_keys())

    def revoke_key(self, key_id_or_prefix: str) -> bool:
        """Revoke an active key by id or display prefix; False if there is none."""
        return self.store.revoke_key(key_id_or_prefix, self.clock())

    def backup_keys(self) -> list[dict[str, object]]:
        """Every key as a backup records it: its hash, never the key (which is not kept)."""
        names = {a.id: a.name for a in self.store.list_accounts()}
        return [
            {
                "id": k.id,
                "account": names[k.account_id],
                "prefix": k.prefix,
                "key_hash": k.key_hash,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
                "admin": k.admin,
            }
            for k in self.store.list_keys()
        ]

    def restore_key(self, record: dict[str, object], account_id: str) -> bool:
        """Put back a key from ``backup_keys`` (the same key works again); False if its hash
        is already there."""
        try:
            self.store.create_key(
                ApiKeyRow(
                    id=str(record["id"]),
                    account_id=account_id,
                    prefix=str(record["prefix"]),
                    key_hash=str(record["key_hash"]),
                    created_at=float(str(record["created_at"])),
                    revoked_at=None
                    if record.get("revoked_at") is None
                    else float(str(record["revoked_at"])),
                    admin=record.get("admin") is True,
                )
            )
        except DuplicateError:
            return False
        return True

    def verify(self, authorization: str | None) -> str:
        """The account id of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
        return self.verify_key(authorization).account_id

    def verify_key(self, authorization: str | None) -> ApiKeyRow:
        """The row of a valid, unrevoked ``Bearer`` key (its last use recorded, at most once a
        ``LAST_USED_RESOLUTION``); AuthenticationError otherwise."""
        if not authorization:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer am_live_...'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationError("the Authorization header must be 'Bearer <API key>'")
        digest = hash_key(key)
        row = self.store.find_key(digest)
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            raise AuthenticationError("invalid API key")
        if row.revoked_at is not None:
            raise AuthenticationError("this API key has been revoked")
        now = self.clock()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            self.store.touch_key(row.id, now)
        return row

    # -- usage
    def charge(self, account_id: str, ops: int = 1) -> Usage:
        """Count ``ops`` operations against the account's monthly cap, atomically; the
        usage after them. QuotaExceededError (adding nothing) past the cap."""
        plan = self.plan_of(account_id)
        limit = PLANS.get(plan)
        now = self.clock()
        period, resets = month_bounds(now)
        used = self.store.add_usage(account_id, period, ops, limit)
        meter = current_meter.get()
        if used is None:
            metrics.quota_refused(plan)
            if meter is not None:
                got = self.store.get_usage(account_id, period)
                meter.usage = _usage(account_id, plan, period, resets, got)
            raise QuotaExceededError(
                f"the {plan} plan allows {limit} operations per month; this one is used up. "
                f"It resets at {resets.isoformat()}",
                retry_after=max(1, int(resets.timestamp() - now)),
            )
        usage = _usage(account_id, plan, period, resets, used)
        if meter is not None:
            meter.usage = usage
        return usage

    def usage(self, account_id: str) -> Usage:
        plan = self.plan_of(account_id)
        period, resets = month_bounds(self.clock())
        used = self.store.get_usage(account_id, period)
        return _usage(account_id, plan, period, resets, used)


def _usage(account_id: str, plan: str, period: str, resets: datetime, used: int) -> Usage:
    limit = PLANS.get(plan)
    return Usage(
        account=account_id,
        plan=plan,
        period=period,
        ops_used=used,
        ops_limit=limit,
        ops_remaining=None if limit is None else max(0, limit - used),
        resets_at=resets,
    )
