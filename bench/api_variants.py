"""Builds of the reports app as they were before a change, for bench/api_in_process.py's --b:
each rebuilds an earlier configuration from today's code, so the two compare in one process."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.main import create_app


def telemetry_hooks_on() -> FastAPI:
    """Before session 27: FastAPI's OpenTelemetry hooks on, its default (FastAPI 0.165 reads this
    dict on every request)."""
    app = create_app()
    app._telemetry.update({"tracing": True, "metrics": True, "logs": True})
    return app


def reports_router_first() -> FastAPI:
    """Tried in session 27, not kept: the reports router matched before the health and metrics
    routers (no gain measured)."""
    app = create_app()
    routes = app.router.routes
    included = [i for i, r in enumerate(routes) if type(r).__name__ == "_IncludedRouter"]
    routes.insert(included[0], routes.pop(included[2]))  # health, metrics, reports -> reports, health, metrics
    return app


def route_table_off() -> FastAPI:
    """Before session 28: every request matched by FastAPI's routing (api/route_table.py off)."""
    app = create_app()
    app.router.middleware_stack = app.state.route_table.routed
    del app.state.route_table
    return app


class _NeverKept(dict):
    """A store for the kept percentiles that keeps nothing."""

    def __setitem__(self, key, value) -> None:
        pass


def percentiles_not_kept() -> FastAPI:
    """Before session 28: the latency percentiles computed on every report from the kept
    histograms, never kept themselves."""
    app = create_app()
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with started(a) as state:
            a.state.kept_histograms._percentiles = _NeverKept()
            yield state

    app.router.lifespan_context = lifespan
    return app
