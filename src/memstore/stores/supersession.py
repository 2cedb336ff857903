"""Superseded memories in SQL shared by the SQLite and PostgreSQL stores.

A memory is *current* while ``superseded_at`` is NULL. Superseding keeps the row and records
when (``superseded_at``) and by which memory (``superseded_by``, NULL for an invalidation).
Statements use ``?`` and go through the store's ``_q``, ``_read`` and ``_change`` (see
``memstore.stores.accounts``). See docs/memory-over-time.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Both stores' migrations run this (after adding the two columns to memories); each
# statement is idempotent, so the migration can be re-run or reordered when merging.
SCHEMA = """
CREATE INDEX IF NOT EXISTS memories_superseded ON memories (account_id, superseded_at)
    WHERE superseded_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS recall_hits (
    account_id TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    hits {int} NOT NULL,
    last_at {real} NOT NULL,
    PRIMARY KEY (account_id, memory_id)
);
CREATE TABLE IF NOT EXISTS purged_counts (
    account_id TEXT NOT NULL,
    session TEXT NOT NULL,
    purged {int} NOT NULL,
    PRIMARY KEY (account_id, session)
);
"""


class Supersession:
    if TYPE_CHECKING:  # provided by the store and AccountsAndKeys

        def _read(self, sql: str, args: Any = ()) -> Any: ...
        def _change(self, sql: str, args: Any) -> int: ...
        def _q(self, sql: str) -> str: ...

    def set_superseded(
        self, account_id: str, ids: list[str], at: float | None, by: str | None
    ) -> list[str]:
        """Mark the account's current memories among ``ids`` superseded at ``at`` by ``by``
        (memories already superseded keep their first supersession); ``at=None`` makes
        superseded ones current again. Returns the ids changed."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        state = "superseded_at IS NULL" if at is not None else "superseded_at IS NOT NULL"
        changed = self._read(
            self._q(
                f"SELECT id FROM memories WHERE account_id = ? AND id IN ({marks}) AND {state}"
            ),
            (account_id, *ids),
        )
        found = [r[0] for r in changed]
        if found:
            self._change(
                self._q(
                    "UPDATE memories SET superseded_at = ?, superseded_by = ?"
                    f" WHERE account_id = ? AND id IN ({','.join('?' * len(found))}) AND {state}"
                ),
                (at, by, account_id, *found),
            )
        return found

    def not_current(
        self, account_id: str, sessions: list[str] | None, as_of: float | None
    ) -> set[str]:
        """Ids of the account's memories (in ``sessions``; all when None) that were not current
        at ``as_of`` (None: now): superseded by then, or created after it."""
        sql = "SELECT id FROM memories WHERE account_id = ?"
        args: list[Any] = [account_id]
        if sessions is not None:
            if not sessions:
                return set()
            sql += f" AND session IN ({','.join('?' * len(sessions))})"
            args += sessions
        if as_of is None:
            sql += " AND superseded_at IS NOT NULL"
        else:
            sql += " AND (superseded_at <= ? OR created_at > ?)"
            args += [as_of, as_of]
        return {r[0] for r in self._read(self._q(sql), args)}
