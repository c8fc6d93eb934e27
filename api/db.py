"""Postgres access: one psycopg ConnectionPool per process, opened in the app lifespan.

Routes take a `Database` dependency and borrow a connection inside the handler rather than
through a yield-dependency: FastAPI solves dependencies before it validates query parameters,
so a connection dependency would hold a pooled connection (or wait for one while Postgres is
down) for requests that end as 400/422."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool, PoolClosed

from api.settings import APPLICATION_NAME, Settings


def create_pool(settings: Settings) -> ConnectionPool:
    """A closed pool; the caller opens it (the lifespan, without waiting, so the API starts and
    answers /healthz and a 503 /readyz while Postgres is still coming up)."""
    return ConnectionPool(
        settings.conninfo(),
        # The password goes in kwargs, not in the conninfo string, so no string holds it.
        kwargs={"password": settings.pg_password.get_secret_value(), "autocommit": True},
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        timeout=settings.pg_pool_timeout_s,
        # Catches connections dropped while idle (Postgres restarted) before a request gets one.
        check=ConnectionPool.check_connection,
        name=APPLICATION_NAME,
        open=False,
    )


class Database:
    """The process's pool, or none yet (before the lifespan started or after it ended)."""

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """Borrow a connection; every statement on it runs under the configured statement_timeout
        (a session default set at connect time, see Settings.conninfo).

        Raises psycopg.OperationalError (PoolTimeout, PoolClosed, connection errors) when
        Postgres is unavailable; the app answers those with 503."""
        if self.pool is None:
            raise PoolClosed("the connection pool is not open")
        with self.pool.connection(timeout=timeout) as conn:
            yield conn


def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(get_database)]
