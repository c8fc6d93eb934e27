"""The FastAPI app: `uvicorn api.main:app`.

Settings are read when the app starts (lifespan), not at import, so importing this module
needs no environment (tests build apps with create_app)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI

from api import metrics, route_table
from api.auth import SECURITY_SCHEMES, CachedKeyStore, KeyStore, PostgresKeyStore, RateLimits
from api.db import Database
from api.logs import configure_logging
from api.middleware import RequestContextMiddleware
from api.params import reject_unknown_query_params
from api.ratelimit import TokenBucketLimiter
from api.problems import install_exception_handlers, problem_media_types
from api.reports.answer_cache import AnswerCache
from api.reports.kept_histograms import KeptHistograms
from api.reports.source import LakeEngines
from api.routes import health, reports
from api.ui import routes as ui
from api.settings import Settings, load_settings
from wallet_lake.lake.query import LakeQueryEngine

log = structlog.get_logger(logger_name="api.main")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings or load_settings()
    app.state.settings = settings
    _apply_settings(app, settings)
    # Not waiting: the API starts while Postgres may still be coming up; /readyz tells when it can serve.
    await app.state.database.open(settings, wait=False)
    log.info(
        "postgres pool opening",
        host=settings.pg_host,
        port=settings.pg_port,
        db=settings.pg_db,
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        statement_timeout_ms=settings.pg_statement_timeout_ms,
    )
    # The ~75k objects of the loaded modules are permanent: move them out of the collector's
    # reach, or every full collection (tens of ms) stalls all in-flight requests of the worker.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await app.state.database.close()
        log.info("postgres pool closed")


def _apply_settings(app: FastAPI, settings: Settings) -> None:
    """Size the key caches, rate limits and lake bounds from the settings (at create_app when
    given, else at startup once they are read)."""
    if isinstance(app.state.key_store, CachedKeyStore):
        app.state.key_store.configure(
            ttl_s=settings.api_key_cache_ttl_s,
            negative_ttl_s=settings.api_key_negative_cache_ttl_s,
            max_entries=settings.api_key_cache_max_entries,
            negative_max_entries=settings.api_key_negative_cache_max_entries,
        )
    app.state.rate_limits = RateLimits(
        client=TokenBucketLimiter(settings.api_rate_limit_client_per_s, settings.api_rate_limit_client_burst),
        key=TokenBucketLimiter(settings.api_rate_limit_key_per_s, settings.api_rate_limit_key_burst),
    )
    app.state.lake.configure(settings)
    app.state.answer_cache = AnswerCache(settings.api_answer_cache_rows)
    app.state.kept_histograms = KeptHistograms(settings.api_kept_histogram_days, count=app.state.metrics.count_percentiles)


def _document_security(openapi: dict) -> dict:
    """Every report takes an API key (api.auth reads the headers itself, so FastAPI cannot
    derive this from its dependencies)."""
    openapi.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, item in openapi.get("paths", {}).items():
        if path.startswith(reports.router.prefix + "/"):
            for operation in item.values():
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return openapi


def _document_problem_media_types(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = reports.document_examples(_document_security(problem_media_types(generate())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_DESCRIPTION = """Reports over curated payments: the current state of every payment (one row per
payment_id), by `dt`, the UTC date of the surviving record's created_at. Dates are `YYYY-MM-DD`;
ranges `from`..`to` are inclusive and at most 366 days. Amounts are in minor units and never
summed across currencies. Empty results are answers (zero counts, empty lists), not 404s.

Authentication: an API key (`python -m api.keys create`) in the `X-API-Key` header or as
`Authorization: Bearer <key>`. A key is scoped to merchant ids or to all merchants; omitting
`merchant` asks for every merchant, which only all-merchant keys may do.

Rate limits: reports are limited per client address and per API key (token buckets); past
either, the answer is 429 with a `Retry-After` header (seconds). `source=lake` ranges are
limited to a few weeks and a bounded scan.

Errors are RFC 7807 problem documents (application/problem+json) that name the offending
parameter and its accepted form, and carry the request id (X-Request-ID)."""


def create_app(
    settings: Settings | None = None,
    *,
    key_store: KeyStore | None = None,
    lake_engine: Callable[[], LakeQueryEngine] | None = None,
) -> FastAPI:
    """Build the app; without `settings` they are read from WL_* variables at startup.

    key_store: where API keys are checked (default: the api_keys table behind a CachedKeyStore
    sized by the settings); lake_engine: factory of the source=lake engine (default: from
    WL_LAKE_ENGINE and friends, on first use)."""
    configure_logging()
    app = FastAPI(
        title="wallet-lake reports API",
        version="0.2.0",
        description=_DESCRIPTION,
        lifespan=_lifespan,
        dependencies=[Depends(reject_unknown_query_params)],
        # The API's telemetry is Prometheus metrics and JSON logs (api/metrics.py, api/logs.py),
        # not OpenTelemetry: with FastAPI's hooks on, it looks for an OpenTelemetry provider on
        # every request, work with no use here (docs/benchmarks.md, session 27).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = Database()
    defaults = settings or Settings.model_construct()  # field defaults until the real ones are read
    app.state.key_store = key_store or CachedKeyStore(
        PostgresKeyStore(app.state.database),
        ttl_s=defaults.api_key_cache_ttl_s,
        negative_ttl_s=defaults.api_key_negative_cache_ttl_s,
    )
    app.state.lake = LakeEngines(lake_engine)
    app.state.metrics = metrics.ApiMetrics()
    _apply_settings(app, defaults)  # again at startup when the settings are read then
    install_exception_handlers(app)
    _document_problem_media_types(app)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(reports.router)
    ui.install(app)
    # Report requests skip FastAPI's matching once it has chosen their route (api/route_table.py).
    route_table.install(app)
    return app


app = create_app()
