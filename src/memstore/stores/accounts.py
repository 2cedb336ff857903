"""Accounts and API keys in SQL, shared by the SQLite and PostgreSQL stores.

The statements are written once with ``?`` parameters; a store names its driver's mark
in ``param`` and provides ``_read`` (rows of a query) and ``_change`` (rowcount of a
statement run in its own transaction).
"""

from __future__ import annotations

from typing import Any

from memstore.stores.base import AccountRow, ApiKeyRow

_ACCOUNT = "SELECT id, name, plan, created_at FROM accounts"
_KEY = (
    "SELECT id, account_id, prefix, key_hash, created_at, revoked_at, admin, last_used_at"
    " FROM api_keys"
)


def _key_row(r: tuple[Any, ...]) -> ApiKeyRow:
    return ApiKeyRow(*r[:6], admin=bool(r[6]), last_used_at=r[7])


class AccountsAndKeys:
    param = "?"

    def _read(self, sql: str, args: Any = ()) -> Any: ...  # provided by the store
    def _change(self, sql: str, args: Any) -> int: ...  # provided by the store

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
