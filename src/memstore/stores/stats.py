"""Install-wide figures for operators (``memstore admin stats``, ``/metrics``), shared by the
SQLite and PostgreSQL stores.

Like ``accounts.py``, the statements are written once with ``?`` parameters; a store
provides ``_read``, ``_q`` and ``database_bytes``. These are the only store methods that
read across accounts, and they return counts and times, never content or session names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_LIVE = "(expires_at IS NULL OR expires_at > ?)"


@dataclass(frozen=True)
class StoreSize:
    """Totals cheap enough to compute at every scrape (expired rows not yet purged count)."""

    memories: int
    sessions: int
    accounts_by_plan: dict[str, int]
    database_bytes: int


@dataclass(frozen=True)
class AccountActivity:
    """One account's live memories, sessions, ops in a period, last memory write and last
    use of one of its keys (recorded to the minute)."""

    account_id: str
    name: str
    plan: str
    created_at: float
    ops: int
    memories: int
    sessions: int
    last_write_at: float | None
    last_key_use_at: float | None


class InstallStats:
    def _read(self, sql: str, args: Any = ()) -> Any: ...  # provided by the store
    def _q(self, sql: str) -> str:  # provided by AccountsAndKeys
        raise NotImplementedError

    def database_bytes(self) -> int:  # provided by the store
        raise NotImplementedError

    def size_stats(self) -> StoreSize:
        memories = self._read("SELECT count(*) FROM memories")[0][0]
        sessions = self._read(
            "SELECT count(*) FROM (SELECT DISTINCT account_id, session FROM memories) s"
        )[0][0]
        plans = self._read("SELECT plan, count(*) FROM accounts GROUP BY plan")
        return StoreSize(
            memories=int(memories),
            sessions=int(sessions),
            accounts_by_plan={plan: int(n) for plan, n in plans},
            database_bytes=self.database_bytes(),
        )

    def account_activity(self, period: str, now: float) -> list[AccountActivity]:
        """Every account, oldest first, with its usage in ``period`` ('YYYY-MM')."""
        accounts = self._read("SELECT id, name, plan, created_at FROM accounts ORDER BY created_at")
        ops = dict(
            self._read(self._q("SELECT account_id, ops FROM usage WHERE period = ?"), (period,))
        )
        held = {
            r[0]: r[1:]
            for r in self._read(
                self._q(
                    "SELECT account_id, count(*), count(DISTINCT session), max(updated_at)"
                    f" FROM memories WHERE {_LIVE} GROUP BY account_id"
                ),
                (now,),
            )
        }
        used = dict(
            self._read("SELECT account_id, max(last_used_at) FROM api_keys GROUP BY account_id")
        )
        out = []
        for account_id, name, plan, created_at in accounts:
            memories, sessions, last = held.get(account_id, (0, 0, None))
            out.append(
                AccountActivity(
                    account_id=account_id,
                    name=name,
                    plan=plan,
                    created_at=float(created_at),
                    ops=int(ops.get(account_id, 0)),
                    memories=int(memories),
                    sessions=int(sessions),
                    last_write_at=None if last is None else float(last),
                    last_key_use_at=_float(used.get(account_id)),
                )
            )
        return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
