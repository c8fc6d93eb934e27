"""Postgres access: one psycopg AsyncConnectionPool per process, opened in the app lifespan.

Async, so a request waiting on Postgres holds no thread: under load the event loop serves every
connection without threadpool hand-offs and GIL contention, which is what keeps the tail
latency low on two cores. Routes borrow a connection inside the handler rather than through a
yield-dependency: FastAPI solves dependencies before it validates query parameters, so a
connection dependency would hold a pooled connection (or wait for one while Postgres is down)
for requests that end as 400/422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed

from api.settings import APPLICATION_NAME, Settings


def create_pool(settings: Settings) -> AsyncConnectionPool:
    """A closed pool; the caller opens it (the lifespan, without waiting, so the API starts and
    answers /healthz and a 503 /readyz while Postgres is still coming up)."""
    return AsyncConnectionPool(
        settings.conninfo(),
        # The password goes in kwargs, not in the conninfo string, so no string holds it.
        kwargs={"password": settings.pg_password.get_secret_value(), "autocommit": True},
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        timeout=settings.pg_pool_timeout_s,
        # No `check` callback: it costs a round trip on every borrow (half the round trips of a
        # report). A connection broken while idle (Postgres restarted) fails its request with a
        # 503, and the pool drops it on return; connections are also recycled after
        # max_lifetime and closed after max_idle.
        max_idle=60,
        name=APPLICATION_NAME,
        open=False,
    )


class Database:
    """The process's pool, or none yet (before the lifespan started or after it ended)."""

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool | None = None

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
        """Borrow a connection; every statement on it runs under the configured statement_timeout
        (a session default set at connect time, see Settings.conninfo).

        Raises psycopg.OperationalError (PoolTimeout, PoolClosed, connection errors) when
        Postgres is unavailable; the app answers those with 503."""
        if self.pool is None:
            raise PoolClosed("the connection pool is not open")
        async with self.pool.connection(timeout=timeout) as conn:
            yield conn
