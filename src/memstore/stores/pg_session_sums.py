"""Running sums of the stored vectors per (account, session) on PostgreSQL, for recall's
centring mean (``Store.session_mean``): ``avg(embedding)`` over a scope is a scan, the sums
are a few rows.

Every write that adds, changes or removes a memory's vector passes its change to
``move_sums`` inside its own transaction, so the sums commit or roll back with it and
every process over the database sees them at once. ``move_sums`` is the last statement
of its transaction and touches the sessions in sorted order: a writer holds a sums row
only while it commits, and two writers never wait for each other's rows in opposite
orders (no deadlock). Writers to one session take turns on its row for that moment.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCHEMA = """
CREATE TABLE session_vector_sums (
    account_id text COLLATE "C" NOT NULL,
    session text COLLATE "C" NOT NULL,
    total vector NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (account_id, session)
);
INSERT INTO session_vector_sums (account_id, session, total, n)
SELECT account_id, session, sum(embedding), count(*) FROM memories GROUP BY account_id, session;
"""


def sent_vector(sent: bytes) -> np.ndarray:
    """A vector from pgvector's binary form (vector_send: int16 dim, int16 unused,
    big-endian float4s)."""
    return np.frombuffer(sent, dtype=">f4", offset=4).astype(np.float32)


class SumChanges:
    """What one transaction adds to (and removes from) each session's vector sum."""

    def __init__(self) -> None:
        self.moves: dict[tuple[str, str], tuple[np.ndarray, int]] = {}

    def add(self, account_id: str, session: str, total: Any, n: int = 1) -> None:
        """``n`` memories whose vectors sum to ``total`` joined the session."""
        key = (account_id, session)
        before, count = self.moves.get(key, (np.zeros(0), 0))
        vector = as_array(total)
        self.moves[key] = (before + vector if before.size else vector, count + n)

    def remove(self, account_id: str, session: str, total: Any, n: int = 1) -> None:
        """``n`` memories whose vectors sum to ``total`` left the session."""
        self.add(account_id, session, -as_array(total), -n)


def as_array(vector: Any) -> np.ndarray:
    """A pgvector value (``Vector`` or numpy) as float64 numpy."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, np.float64)


def move_sums(conn: Any, changes: SumChanges) -> None:
    """Apply ``changes`` on ``conn``, sessions in sorted order (see the module docstring);
    a session left with no memory loses its row."""
    emptied: list[tuple[str, str]] = []
    for (account_id, session), (total, n) in sorted(changes.moves.items()):
        if not n and not total.any():
            continue
        row = conn.execute(
            "INSERT INTO session_vector_sums AS s (account_id, session, total, n)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (account_id, session) DO UPDATE"
            " SET total = s.total + excluded.total, n = s.n + excluded.n RETURNING n",
            (account_id, session, total.astype(np.float32), n),
        ).fetchone()
        if row is not None and row[0] <= 0:
            emptied.append((account_id, session))
    for account_id, session in emptied:
        conn.execute(
            "DELETE FROM session_vector_sums WHERE account_id = %s AND session = %s",
            (account_id, session),
        )


class SessionSums:
    """``Store.session_mean`` for PostgresStore (mixed in; uses its ``_read``)."""

    _read: Any

    def session_mean(
        self,
        account_id: str,
        sessions: list[str] | None,
        now: float,
        max_rows: int | None = None,
    ) -> np.ndarray | None:
        """From the running sums: expired memories count until purged. The sum comes back
        in pgvector's binary form (parsing its text took ~2 ms a recall)."""
        sql = (
            "SELECT vector_send(sum(total)), sum(n) FROM session_vector_sums WHERE account_id = %s"
        )
        args: list[Any] = [account_id]
        if sessions is not None:
            sql += " AND session = ANY(%s)"
            args.append(sessions)
        ((total, n),) = self._read(sql, args, binary=True)
        if not n or total is None or (max_rows is not None and n > max_rows):
            return None
        summed = sent_vector(total).astype(np.float64)
        return (summed / float(n)).astype(np.float32)
