"""The operator's view of an install: per account and in total, counts only (no content,
no session names). Served by ``memstore admin stats`` and ``GET /v1/admin/stats``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from memstore.accounts import PLANS, month_bounds
from memstore.models import to_datetime
from memstore.stores.base import Store


class AccountStats(BaseModel):
    id: str
    name: str
    plan: str
    ops_used: int = Field(description="Operations charged this calendar month (UTC).")
    ops_limit: int | None = Field(description="The plan's monthly cap; null for none.")
    memories: int = Field(description="Live memories.")
    sessions: int = Field(description="Sessions holding live memories (the shared one counts).")
    created_at: datetime
    last_write_at: datetime | None = Field(
        description="When one of its live memories was last stored or updated."
    )
    last_activity_at: datetime | None = Field(
        description="Its last write or the last request with one of its keys (to the minute)."
    )


class InstallTotals(BaseModel):
    accounts: int
    memories: int
    sessions: int
    ops_used: int
    database_bytes: int


class InstallStatsResponse(BaseModel):
    period: str = Field(description="The month the ops figures count, 'YYYY-MM' (UTC).")
    totals: InstallTotals
    accounts: list[AccountStats]


def install_stats(store: Store, now: float) -> InstallStatsResponse:
    """Per-account figures for the current month and install totals."""
    period, _ = month_bounds(now)
    rows = store.account_activity(period, now)
    accounts = [
        AccountStats(
            id=r.account_id,
            name=r.name,
            plan=r.plan,
            ops_used=r.ops,
            ops_limit=PLANS.get(r.plan),
            memories=r.memories,
            sessions=r.sessions,
            created_at=to_datetime(r.created_at),
            last_write_at=to_datetime(r.last_write_at),
            last_activity_at=to_datetime(
                max(
                    (t for t in (r.last_write_at, r.last_key_use_at) if t is not None), default=None
                )
            ),
        )
        for r in rows
    ]
    return InstallStatsResponse(
        period=period,
        totals=InstallTotals(
            accounts=len(accounts),
            memories=sum(a.memories for a in accounts),
            sessions=sum(a.sessions for a in accounts),
            ops_used=sum(a.ops_used for a in accounts),
            database_bytes=store.database_bytes(),
        ),
        accounts=accounts,
    )
