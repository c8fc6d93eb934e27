"""Where a report's SQL runs: Postgres (the aggregate tables) or the lake (source=lake).

Report runners take a `Fetch`: (query, params, the dts read) -> (as_of, rows as mappings of the
SQL's column names), so they shape the answer the same way whichever engine produced the rows.
as_of is the answer's freshness:
- postgres: every change committed to curated_payments before as_of is in the aggregates
  (wallet_lake.serving.aggregates.AS_OF_SQL: the oldest mark pending for a dt in [first, last],
  or the time of the read), read in the same statement as the rows, or as the versions that
  show a kept answer still holds (api/reports/answer_cache.py);
- lake: the time of the query, taken before the lake is listed: every curated file published to
  the lake before it is read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread

from api.db import Session
from api.reports.answer_cache import FIRST_DT, HAVE_KEPT, KEPT_VERSIONS, LAST_DT, AnswerCache, split_result, versioned_sql
from api.reports.kept_histograms import KeptHistograms
from api.reports.sql import ReportQuery
from api.settings import Settings
from wallet_lake.lake.query import LakeQueryConfig, LakeQueryEngine, LakeUnavailable, open_lake_engine


class Fetch(Protocol):
    async def __call__(
        self, query: ReportQuery, params: dict[str, Any], *, first_dt: dt.date, last_dt: dt.date
    ) -> tuple[dt.datetime, list[Mapping[str, Any]]]:
        """The report's rows, and the answer's freshness (as_of, UTC), for a report reading the
        dts [first_dt, last_dt]."""
        ...


Source = Literal["postgres", "lake"]

# Lake queries scan Parquet in worker threads of this process: a few at a time, so they cannot
# starve the Postgres-backed reports of CPU.
_LAKE_CONCURRENCY = 2


class _PostgresFetch:
    """One statement per report (api/reports/answer_cache.py): as_of, the versions of the dts
    read, and the rows unless an answer with those versions is kept."""

    def __init__(self, conn: Session, cache: AnswerCache, count: Callable[[bool], None] | None,
                 histograms: KeptHistograms | None = None) -> None:
        self.conn, self.cache, self.count = conn, cache, count
        # The latency report's percentiles from the histograms kept by this worker
        # (api/reports/kept_histograms.py).
        self.kept_percentiles = (
            functools.partial(histograms.percentiles_at, conn) if histograms is not None and histograms.enabled else None
        )

    async def __call__(
        self, query: ReportQuery, params: dict[str, Any], *, first_dt: dt.date, last_dt: dt.date
    ) -> tuple[dt.datetime, list[Mapping[str, Any]]]:
        key = self.cache.key(query, params)
        kept = self.cache.get(key)
        bound = {**query.bind(**params), FIRST_DT: first_dt, LAST_DT: last_dt,
                 HAVE_KEPT: kept is not None, KEPT_VERSIONS: None if kept is None else list(kept.versions)}
        result = await self.conn.fetch(versioned_sql(query), bound)
        # versioned_sql answers one row at least, so the first row names the columns.
        as_of, _, read, fresh = split_result(list(result[0].keys()) if result else [], result)
        if self.count is not None:
            self.count(not read)
        if read:
            self.cache.put(key, fresh)
            kept = fresh
        assert kept is not None  # not read: the versions equal those of the kept answer
        return as_of.astimezone(dt.timezone.utc), kept.mappings()


class _LakeFetch:
    def __init__(self, engine: LakeQueryEngine, scan_from: dt.date, scan_to: dt.date, limiter: anyio.CapacityLimiter) -> None:
        self.engine, self.scan_from, self.scan_to, self.limiter = engine, scan_from, scan_to, limiter

    async def __call__(
        self, query: ReportQuery, params: dict[str, Any], *, first_dt: dt.date, last_dt: dt.date
    ) -> tuple[dt.datetime, list[Mapping[str, Any]]]:
        bound = query.bind(**params)
        # The lake is read as it is when the query lists it, after this instant.
        as_of = dt.datetime.now(dt.timezone.utc)
        # DuckDB and pyathena block: run them in a worker thread, never on the event loop.
        rows = await anyio.to_thread.run_sync(
            functools.partial(self.engine.query, query.sql, bound, scan_from=self.scan_from, scan_to=self.scan_to), limiter=self.limiter
        )
        return as_of, rows


def postgres_fetch(conn: Session, cache: AnswerCache | None = None,
                   count: Callable[[bool], None] | None = None, histograms: KeptHistograms | None = None) -> Fetch:
    """Reports on Postgres through `conn`, reusing the answers `cache` keeps (none by default);
    `count(hit)` is told whether each report reused a kept answer. With `histograms`, latency
    reports compute their percentiles from the histograms kept there (none by default: each latency
    report reads its terms' histogram rows, as on the lake)."""
    return _PostgresFetch(conn, cache if cache is not None else AnswerCache(0), count, histograms)


def lake_fetch(engine: LakeQueryEngine, scan_from: dt.date, scan_to: dt.date, limiter: anyio.CapacityLimiter) -> Fetch:
    """Reports that read the dts [scan_from, scan_to]: the lake scans no dt before, and past
    scan_to only what says which payments moved on (lake/scan_plan.py)."""
    return _LakeFetch(engine, scan_from, scan_to, limiter)


def bounded_lake_config(settings: Settings, env: Mapping[str, str] | None = None) -> LakeQueryConfig:
    """The lake's configuration (WL_LAKE_* and friends) with the API's bounds on DuckDB: memory,
    threads and scanned bytes (api/settings.py)."""
    return dataclasses.replace(
        LakeQueryConfig.from_env(env),
        duckdb_memory_limit=settings.api_lake_memory_limit,
        duckdb_threads=settings.api_lake_threads,
        max_scan_bytes=settings.api_lake_max_scan_bytes,
        cache_dir=settings.api_lake_cache_dir,
        cache_max_bytes=settings.api_lake_cache_max_bytes,
    )


class LakeEngines:
    """The app's lake engine, created on first use: a Postgres-only deployment never needs the
    lake's configuration, and a misconfigured lake fails only source=lake requests (503).

    Without a factory the engine comes from the environment, bounded by the app's settings
    (given at startup through `configure`)."""

    def __init__(self, factory: Callable[[], LakeQueryEngine] | None = None) -> None:
        self._factory = factory
        self._settings: Settings | None = None
        self._engine: LakeQueryEngine | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    def configure(self, settings: Settings) -> None:
        self._settings = settings
        self._engine = None

    def _create(self) -> LakeQueryEngine:
        if self._factory is not None:
            return self._factory()
        if self._settings is None:  # never an unbounded DuckDB inside the API
            raise LakeUnavailable("the lake engine is not configured yet")
        return open_lake_engine(bounded_lake_config(self._settings))

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # created inside the event loop
            self._limiter = anyio.CapacityLimiter(_LAKE_CONCURRENCY)
        return self._limiter

    def get(self) -> LakeQueryEngine:
        if self._engine is None:
            try:
                self._engine = self._create()
            except LakeUnavailable:
                raise
            except (KeyError, ValueError, ImportError) as exc:
                raise LakeUnavailable(f"lake engine not configured: {exc}") from exc
        return self._engine


@asynccontextmanager
async def report_fetch(app_state: Any, source: Source, *, scan_from: dt.date, scan_to: dt.date) -> AsyncIterator[Fetch]:
    """A Fetch on the requested source for reports of the dts [scan_from, scan_to]; for Postgres
    it holds one pooled connection."""
    if source == "lake":
        yield lake_fetch(app_state.lake.get(), scan_from, scan_to, app_state.lake.limiter)
        return
    async with app_state.database.connection() as conn:
        yield postgres_fetch(conn, app_state.answer_cache, app_state.metrics.count_answer, app_state.kept_histograms)
