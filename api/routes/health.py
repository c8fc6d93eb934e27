"""Probes: /healthz says the process serves requests; /readyz says it can reach Postgres.

Kept apart so an orchestrator restarts a wedged process (liveness) but only stops routing
traffic to one whose database is down (readiness)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse


router = APIRouter(tags=["health"])
log = structlog.get_logger(logger_name="api.health")


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: Postgres answers `select 1`",
    responses={503: {"description": "Postgres is unreachable."}},
)
async def readyz(request: Request) -> JSONResponse:
    timeout = request.app.state.settings.api_readyz_timeout_s if request.app.state.settings else None
    try:
        async with request.app.state.database.connection(timeout=timeout) as conn:
            await conn.fetch("select 1")
    except Exception as exc:  # any failure means not ready; the probe itself must not 500
        log.warning("postgres not ready", error_type=type(exc).__name__, error=str(exc))
        return JSONResponse({"status": "unavailable", "postgres": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ready", "postgres": "ok"})
