"""Where a report's SQL runs: Postgres (the aggregate tables) or the lake (source=lake).

Report runners take a `Fetch`: (query, params) -> rows as mappings of the SQL's column names, so
they shape the answer the same way whichever engine produced the rows."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.to_thread
import psycopg
from psycopg.rows import dict_row

from api.reports.sql import ReportQuery
from wallet_lake.lake.query import LakeQueryEngine, LakeUnavailable, open_lake_engine

Fetch = Callable[[ReportQuery, dict[str, Any]], Awaitable[list[Mapping[str, Any]]]]
Source = Literal["postgres", "lake"]

# Lake queries scan Parquet in worker threads of this process: a few at a time, so they cannot
# starve the Postgres-backed reports of CPU.
_LAKE_CONCURRENCY = 2


def postgres_fetch(conn: psycopg.AsyncConnection) -> Fetch:
    async def fetch(query: ReportQuery, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query.sql, query.bind(**params))
            return await cur.fetchall()

    return fetch


def lake_fetch(engine: LakeQueryEngine, scan_from: dt.date, limiter: anyio.CapacityLimiter) -> Fetch:
    async def fetch(query: ReportQuery, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        bound = query.bind(**params)
        # DuckDB and pyathena block: run them in a worker thread, never on the event loop.
        return await anyio.to_thread.run_sync(
            functools.partial(engine.query, query.sql, bound, scan_from=scan_from), limiter=limiter
        )

    return fetch


class LakeEngines:
    """The app's lake engine, created on first use: a Postgres-only deployment never needs the
    lake's configuration, and a misconfigured lake fails only source=lake requests (503)."""

    def __init__(self, factory: Callable[[], LakeQueryEngine] = open_lake_engine) -> None:
        self._factory = factory
        self._engine: LakeQueryEngine | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # created inside the event loop
            self._limiter = anyio.CapacityLimiter(_LAKE_CONCURRENCY)
        return self._limiter

    def get(self) -> LakeQueryEngine:
        if self._engine is None:
            try:
                self._engine = self._factory()
            except LakeUnavailable:
                raise
            except (KeyError, ValueError, ImportError) as exc:
                raise LakeUnavailable(f"lake engine not configured: {exc}") from exc
        return self._engine


@asynccontextmanager
async def report_fetch(app_state: Any, source: Source, *, scan_from: dt.date) -> AsyncIterator[Fetch]:
    """A Fetch on the requested source; for Postgres it holds one pooled connection."""
    if source == "lake":
        yield lake_fetch(app_state.lake.get(), scan_from, app_state.lake.limiter)
        return
    async with app_state.database.connection() as conn:
        yield postgres_fetch(conn)
