"""API keys at the HTTP boundary: thin names over ``memstore.accounts``, which owns keys."""

from __future__ import annotations

from memstore.accounts import Accounts, IssuedKey
from memstore.stores.base import Store

__all__ = ["IssuedKey", "authenticate", "issue_key"]


def issue_key(store: Store, account_name: str = "default", plan: str = "unlimited") -> IssuedKey:
    """Create a key (and its account, if new); the plaintext is returned once, never stored."""
    return Accounts(store).create_key(account_name, plan)


def authenticate(store: Store, authorization: str | None) -> str:
    """The account id of a valid, unrevoked ``Bearer`` key; AuthenticationError otherwise."""
    return Accounts(store).verify(authorization)
