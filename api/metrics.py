"""Prometheus metrics of the API: request counts, errors and latency per route template.

Every label has a bounded set of values, so no request can blow up the series count: the route
template (`/reports/daily-recon`), never the raw path (unmatched paths share
`route="<unmatched>"`); the method from a fixed set (any other token, which HTTP allows, is
`method="other"`); the status code.

Each app has its own registry (tests build many apps in one process). With several worker
processes (uvicorn --workers N) set PROMETHEUS_MULTIPROC_DIR to an empty directory before start:
prometheus_client then keeps values in files there, and /metrics aggregates every worker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from wallet_lake.settings import ApiSettings, load

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
# Seconds; dense below 100 ms, where the report targets are (p99 < 50 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "wallet_lake_api_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.errors = Counter(
            "wallet_lake_api_request_errors",
            "HTTP requests answered with an error, by route template and kind (client: 4xx, server: 5xx).",
            ["method", "route", "kind"], registry=self.registry,
        )
        self.duration = Histogram(
            "wallet_lake_api_request_duration_seconds", "Time to answer a request, by method and route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.answers = Counter(
            "wallet_lake_api_report_answers",
            "Reports answered from Postgres, by whether a kept answer was reused (its dts unchanged) or the report read.",
            ["result"], registry=self.registry,
        )
        self.percentiles = Counter(
            "wallet_lake_api_latency_percentiles",
            "Latency reports' percentiles from kept histograms (source=postgres), by whether they were kept from an "
            "earlier report at the same dt versions (reused) or computed.",
            ["result"], registry=self.registry,
        )

    def count_percentiles(self, reused: bool) -> None:
        """A latency report's percentiles: kept ones reused, or computed (api/reports/kept_histograms.py)."""
        self.percentiles.labels("reused" if reused else "computed").inc()

    def count_answer(self, reused: bool) -> None:
        """A source=postgres report: a kept answer reused, or the report read (api/reports/answer_cache.py)."""
        self.answers.labels("reused" if reused else "read").inc()

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER_METHOD
        route = route or UNMATCHED
        self.requests.labels(method, route, str(status)).inc()
        if status >= 400:
            self.errors.labels(method, route, "server" if status >= 500 else "client").inc()
        self.duration.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        folder = load(ApiSettings).prometheus_multiproc_dir
        if folder:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)
            return generate_latest(registry)
        return generate_latest(self.registry)


router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, include_in_schema=True)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
