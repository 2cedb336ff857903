"""GET /v1/admin/stats: the install's figures (``memstore admin stats``) for an admin key."""

from __future__ import annotations

from fastapi import APIRouter, Request

from memstore.install_stats import InstallStatsResponse, install_stats
from memstore.models import ErrorResponse
from memstore.server.auth import AdminKey
from memstore.server.routes import router as v1_router

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={
        **v1_router.responses,
        403: {"model": ErrorResponse, "description": "The key is not an admin key"},
    },
)


@router.get("/stats", response_model=InstallStatsResponse)
def stats(request: Request, _admin: AdminKey) -> InstallStatsResponse:
    """Per account: plan, ops this month, memories, sessions, last activity; and install
    totals with the database size. Counts only: no content, no session names."""
    engine = request.app.state.engine
    return install_stats(engine.store, engine.clock())
