"""Answers to writes sent with an Idempotency-Key, in SQL shared by both stores.

A row is claimed (answer still NULL) before the write runs and gets its answer after, so a
retry of the same request, on any server process, is answered from here and not applied
twice. Statements use ``?`` and go through the store's ``_q``, ``_read`` and ``_change``
(see ``memstore.stores.accounts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Both stores' migrations create this table.
SCHEMA = """
CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at {real} NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
"""


@dataclass(frozen=True)
class IdempotentAnswer:
    """What a claimed request key holds: its request's fingerprint and, once done, the answer."""

    fingerprint: str
    status: int | None
    body: str | None


class IdempotencyRecords:
    if TYPE_CHECKING:  # provided by the store and AccountsAndKeys

        def _q(self, sql: str) -> str: ...
        def _read(self, sql: str, args: Any = ()) -> Any: ...
        def _change(self, sql: str, args: Any) -> int: ...

    def claim_request(
        self, account_id: str, key: str, fingerprint: str, now: float, free_before: float
    ) -> bool:
        """Claim ``key`` for a request; True if it was free (unknown, or claimed before
        ``free_before`` and not answered: its request died). False: someone holds it."""
        return (
            self._change(
                self._q(
                    "INSERT INTO idempotency_keys (account_id, key, fingerprint, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (account_id, key) DO UPDATE SET"
                    " fingerprint = excluded.fingerprint, created_at = excluded.created_at"
                    " WHERE idempotency_keys.status IS NULL"
                    " AND idempotency_keys.created_at < ?"
                ),
                (account_id, key, fingerprint, now, free_before),
            )
            > 0
        )

    def answer_request(self, account_id: str, key: str, status: int, body: str) -> None:
        self._change(
            self._q(
                "UPDATE idempotency_keys SET status = ?, body = ? WHERE account_id = ? AND key = ?"
            ),
            (status, body, account_id, key),
        )

    def release_request(self, account_id: str, key: str) -> None:
        """Forget a claim whose request failed, so that a retry runs it again."""
        self._change(
            self._q("DELETE FROM idempotency_keys WHERE account_id = ? AND key = ?"),
            (account_id, key),
        )

    def find_request(self, account_id: str, key: str) -> IdempotentAnswer | None:
        rows = self._read(
            self._q(
                "SELECT fingerprint, status, body FROM idempotency_keys"
                " WHERE account_id = ? AND key = ?"
            ),
            (account_id, key),
        )
        return IdempotentAnswer(*rows[0]) if rows else None

    def purge_requests(self, before: float) -> int:
        """Drop keys claimed before ``before`` (the replay window has passed)."""
        return self._change(self._q("DELETE FROM idempotency_keys WHERE created_at < ?"), (before,))
