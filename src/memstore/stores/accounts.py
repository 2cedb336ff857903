"""Accounts and API keys in SQL, shared by the SQLite and PostgreSQL stores.

The statements are written once with ``?`` parameters; a store names its driver's mark
in ``param`` and provides ``_read`` (rows of a query) and ``_change`` (rowcount of a
statement run in its own transaction).
"""

from __future__ import annotations

from typing import Any

from memstore.stores.base import AccountRow, ApiKeyRow

_ACCOUNT = "SELECT id, name, plan, created_at FROM accounts"
_DEFAULT_ID = "(SELECT id FROM accounts WHERE name = 'default')"

# Schema 2 of both stores: one default account. Before it, the CLI and Memstore.local kept
# their memories in a hidden account 'local' while the server's first key used 'default'.
# 'local' is merged into 'default' (created from it if missing): content both hold in one
# session is kept once (default's copy), usage adds up, keys move, expired memories go first.
_MERGE_LOCAL_INTO_DEFAULT = f"""
DELETE FROM memories WHERE account_id IN ('local', {_DEFAULT_ID}) AND expires_at <= {{now}}
    AND EXISTS (SELECT 1 FROM accounts WHERE id = 'local');
INSERT INTO accounts (id, name, plan, created_at)
    SELECT {{new_id}}, 'default', plan, created_at FROM accounts
    WHERE id = 'local' AND NOT EXISTS (SELECT 1 FROM accounts WHERE name = 'default');
DELETE FROM memories AS m WHERE m.account_id = 'local' AND EXISTS (
    SELECT 1 FROM memories d WHERE d.account_id = {_DEFAULT_ID}
    AND d.session = m.session AND d.content_hash = m.content_hash);
UPDATE memories SET account_id = {_DEFAULT_ID} WHERE account_id = 'local';
INSERT INTO usage (account_id, period, ops)
    SELECT {_DEFAULT_ID}, period, ops FROM usage WHERE account_id = 'local' AND true
    ON CONFLICT (account_id, period) DO UPDATE SET ops = usage.ops + excluded.ops;
DELETE FROM usage WHERE account_id = 'local';
UPDATE api_keys SET account_id = {_DEFAULT_ID} WHERE account_id = 'local';
DELETE FROM accounts WHERE id = 'local';
"""


def merge_local_into_default(*, now: str, new_id: str) -> str:
    """Schema 2 in a store's SQL: ``now`` is its expression for the epoch seconds, ``new_id``
    for a random account id."""
    return _MERGE_LOCAL_INTO_DEFAULT.format(now=now, new_id=new_id)


_KEY = (
    "SELECT id, account_id, prefix, key_hash, created_at, revoked_at, admin, last_used_at"
    " FROM api_keys"
)


def _key_row(r: tuple[Any, ...]) -> ApiKeyRow:
    id_, account_id, prefix, key_hash, created_at, revoked_at = r[:6]
    return ApiKeyRow(id_, account_id, prefix, key_hash, created_at, revoked_at, bool(r[6]), r[7])


class AccountsAndKeys:
    param = "?"

    def _read(self, sql: str, args: Any = ()) -> Any:  # provided by the store
        raise NotImplementedError

    def _change(self, sql: str, args: Any) -> int:  # provided by the store
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql if self.param == "?" else sql.replace("?", self.param)

    def create_account(self, account_id: str, name: str, plan: str, now: float) -> AccountRow:
        self._change(
            self._q("INSERT INTO accounts (id, name, plan, created_at) VALUES (?, ?, ?, ?)"),
            (account_id, name, plan, now),
        )
        return AccountRow(account_id, name, plan, now)

    def get_account(self, account_id: str) -> AccountRow | None:
        rows = self._read(self._q(f"{_ACCOUNT} WHERE id = ?"), (account_id,))
        return AccountRow(*rows[0]) if rows else None

    def find_account_by_name(self, name: str) -> AccountRow | None:
        rows = self._read(self._q(f"{_ACCOUNT} WHERE name = ?"), (name,))
        return AccountRow(*rows[0]) if rows else None

    def list_accounts(self) -> list[AccountRow]:
        return [AccountRow(*r) for r in self._read(f"{_ACCOUNT} ORDER BY created_at")]

    def create_key(self, key: ApiKeyRow) -> None:
        self._change(
            self._q(
                "INSERT INTO api_keys (id, account_id, prefix, key_hash, created_at, revoked_at,"
                " admin) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                key.id,
                key.account_id,
                key.prefix,
                key.key_hash,
                key.created_at,
                key.revoked_at,
                key.admin,
            ),
        )

    def find_key(self, key_hash: str) -> ApiKeyRow | None:
        rows = self._read(self._q(f"{_KEY} WHERE key_hash = ?"), (key_hash,))
        return _key_row(rows[0]) if rows else None

    def list_keys(self) -> list[ApiKeyRow]:
        return [_key_row(r) for r in self._read(f"{_KEY} ORDER BY created_at")]

    def revoke_key(self, key_id_or_prefix: str, now: float) -> bool:
        changed = self._change(
            self._q(
                "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR prefix = ?)"
                " AND revoked_at IS NULL"
            ),
            (now, key_id_or_prefix, key_id_or_prefix),
        )
        return changed > 0

    def touch_key(self, key_id: str, now: float) -> None:
        self._change(self._q("UPDATE api_keys SET last_used_at = ? WHERE id = ?"), (now, key_id))

    def usage_days(self, account_id: str, period: str) -> list[tuple[str, int]]:
        rows = self._read(
            self._q(
                "SELECT day, ops FROM usage_daily WHERE account_id = ? AND day LIKE ? ORDER BY day"
            ),
            (account_id, period + "-%"),
        )
        return [(r[0], int(r[1])) for r in rows]
