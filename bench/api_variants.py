"""Builds of the reports app as they were before a change, for bench/api_in_process.py's --b:
each rebuilds an earlier configuration from today's code, so the two compare in one process."""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app


def session27_before() -> FastAPI:
    """Before session 27: FastAPI's OpenTelemetry hooks on (its default), and the reports router
    matched after the health and metrics routers."""
    app = create_app()
    app._telemetry.update({"tracing": True, "metrics": True, "logs": True})  # FastAPI 0.165's default
    included = [i for i, r in enumerate(app.router.routes) if type(r).__name__ == "_IncludedRouter"]
    reports = app.router.routes.pop(included[0])  # included first today (api/main.py)
    app.router.routes.insert(included[2], reports)
    return app
