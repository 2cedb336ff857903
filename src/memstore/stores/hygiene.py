"""Hygiene figures of one account in SQL shared by both stores: memories, superseded,
never recalled (``recall_hits``, written in batches by the engine) and expired-and-purged
(``purged_counts``, counted in the purge's own transaction). Tables: ``supersession.SCHEMA``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

HITS_PER_STATEMENT = 200


@dataclass(frozen=True)
class SessionCounts:
    """One session's live memories, how many of them are superseded, how many no recall has
    ever returned, and how many expired memories were purged from it."""

    session: str
    memories: int
    superseded: int
    never_recalled: int
    purged: int


class Hygiene:
    if TYPE_CHECKING:  # provided by the store and AccountsAndKeys

        def _read(self, sql: str, args: Any = ()) -> Any: ...
        def _change(self, sql: str, args: Any) -> int: ...
        def _q(self, sql: str) -> str: ...

    def add_recall_hits(self, hits: dict[tuple[str, str], int], now: float) -> None:
        """Add (account, memory id) -> times returned by recall, a few statements in all.
        Counts of memories the account no longer holds (forgotten since) are dropped."""
        items = list(hits.items())
        for start in range(0, len(items), HITS_PER_STATEMENT):
            chunk = items[start : start + HITS_PER_STATEMENT]
            self._change(
                self._q(
                    "INSERT INTO recall_hits (account_id, memory_id, hits, last_at)"
                    " SELECT v.column1, v.column2, CAST(v.column3 AS BIGINT),"
                    " CAST(v.column4 AS DOUBLE PRECISION) FROM (VALUES "
                    + ",".join(["(?, ?, ?, ?)"] * len(chunk))
                    + ") AS v WHERE EXISTS (SELECT 1 FROM memories m"
                    " WHERE m.account_id = v.column1 AND m.id = v.column2)"
                    " ON CONFLICT (account_id, memory_id) DO UPDATE"
                    " SET hits = recall_hits.hits + excluded.hits, last_at = excluded.last_at"
                ),
                [v for (account, mid), n in chunk for v in (account, mid, n, now)],
            )

    def _forget_hits(self, db: Any, account_id: str, where: str, args: Sequence[Any]) -> None:
        """Drop the recall counts of the account's memories matching ``where`` (SQL over
        ``memories``), on the connection and in the transaction about to delete them: a
        forgotten memory leaves no trace (``add_recall_hits`` drops the counts of it still
        pending in the engine's batch)."""
        db.execute(
            self._q(
                "DELETE FROM recall_hits WHERE account_id = ? AND memory_id IN"
                f" (SELECT id FROM memories WHERE account_id = ? AND {where})"
            ),
            (account_id, account_id, *args),
        )

    def session_counts(
        self, account_id: str, session: str | None, now: float
    ) -> list[SessionCounts]:
        """Per session of the account (or only ``session``), by name."""
        where, args = (
            "m.account_id = ? AND (m.expires_at IS NULL OR m.expires_at > ?)",
            [
                account_id,
                now,
            ],
        )
        if session is not None:
            where += " AND m.session = ?"
            args.append(session)
        rows = self._read(
            self._q(
                "SELECT m.session, count(*), count(m.superseded_at),"
                " sum(CASE WHEN h.memory_id IS NULL THEN 1 ELSE 0 END) FROM memories m"
                " LEFT JOIN recall_hits h ON h.account_id = m.account_id AND h.memory_id = m.id"
                f" WHERE {where} GROUP BY m.session"
            ),
            args,
        )
        purged_sql = "SELECT session, purged FROM purged_counts WHERE account_id = ?"
        purged_args = [account_id]
        if session is not None:
            purged_sql += " AND session = ?"
            purged_args.append(session)
        purged = {r[0]: int(r[1]) for r in self._read(self._q(purged_sql), purged_args)}
        counts = {r[0]: (int(r[1]), int(r[2]), int(r[3] or 0)) for r in rows}
        return [
            SessionCounts(name, *counts.get(name, (0, 0, 0)), purged.get(name, 0))
            for name in sorted(counts.keys() | purged.keys())
        ]

    def _count_purged(self, db: Any, account_id: str, sessions: list[str]) -> None:
        """Add the sessions of purged rows to ``purged_counts`` on the purge's connection."""
        for name, n in Counter(sessions).items():
            db.execute(
                self._q(
                    "INSERT INTO purged_counts (account_id, session, purged) VALUES (?, ?, ?)"
                    " ON CONFLICT (account_id, session) DO UPDATE"
                    " SET purged = purged_counts.purged + excluded.purged"
                ),
                (account_id, name, n),
            )
