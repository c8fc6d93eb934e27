"""The FastAPI app: `uvicorn api.main:app`.

Settings are read when the app starts (lifespan), not at import, so importing this module
needs no environment (tests build apps with create_app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI

from api.db import Database, create_pool
from api.logs import configure_logging
from api.middleware import RequestContextMiddleware
from api.params import reject_unknown_query_params
from api.problems import install_exception_handlers, problem_media_types
from api.routes import health, reports
from api.settings import Settings, load_settings

log = structlog.get_logger("api.main")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings or load_settings()
    app.state.settings = settings
    pool = create_pool(settings)
    # Not waiting: the API starts while Postgres may still be coming up; /readyz tells when it can serve.
    pool.open(wait=False)
    app.state.database.pool = pool
    log.info(
        "postgres pool opened",
        host=settings.pg_host,
        port=settings.pg_port,
        db=settings.pg_db,
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        statement_timeout_ms=settings.pg_statement_timeout_ms,
    )
    try:
        yield
    finally:
        app.state.database.pool = None
        pool.close()
        log.info("postgres pool closed")


def _document_problem_media_types(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = problem_media_types(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; without `settings` they are read from WL_* variables at startup."""
    configure_logging()
    app = FastAPI(
        title="wallet-lake reports API",
        version="0.1.0",
        description="Reports over curated payments. Errors are RFC 7807 problem documents (application/problem+json).",
        lifespan=_lifespan,
        dependencies=[Depends(reject_unknown_query_params)],
    )
    app.state.settings = settings
    app.state.database = Database()
    install_exception_handlers(app)
    _document_problem_media_types(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(reports.router)
    return app


app = create_app()
