"""Postgres access: one asyncpg pool per process, opened in the app lifespan.

Async, so a request waiting on Postgres holds no thread: under load the event loop serves every
connection without threadpool hand-offs and GIL contention, which is what keeps the tail
latency low on two cores. asyncpg rather than psycopg: its protocol is compiled, prepares every
statement once per connection and reads results in the binary format, which costs the API
~0.1 ms less CPU per statement (docs/benchmarks.md, sessions 23 and 26).

Statements keep the project's one placeholder style, `%(name)s` (wallet_lake/sql_placeholders.py),
and are bound by name here. Routes borrow a connection inside the handler rather than through a
yield-dependency: FastAPI solves dependencies before it validates query parameters, so a
connection dependency would hold a pooled connection (or wait for one while Postgres is down)
for requests that end as 400/422."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
import tenacity

from api.settings import Settings
from wallet_lake.sql_placeholders import to_positional

log = structlog.get_logger(logger_name="api.db")

# SQLSTATE classes a retry can cure: connection exceptions (08), transaction rollback (40: a
# serialization failure, a deadlock, a standby's recovery conflict), insufficient resources (53,
# too many connections included), operator intervention (57: shutdown, cannot connect now, and
# query_canceled, which statement_timeout raises) and system errors (58); and lock_not_available.
# (libpq's clients report the same ones as OperationalError.)
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_STATES = frozenset({"55P03"})
QUERY_CANCELED = "57014"
# The longest pause between attempts to reach Postgres at startup.
_OPEN_RETRY_MAX_S = 10.0


class DatabaseUnavailable(Exception):
    """Postgres cannot answer now: refused or lost connections, no pooled connection within the
    pool timeout, a server shutting down, or a statement over its time limit (`timed_out`).
    A retry can cure each, so the app answers 503 (api/problems.py)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def unavailable(exc: BaseException, *, connection_lost: bool = False) -> DatabaseUnavailable | None:
    """The DatabaseUnavailable that an error raised while using a connection means, or None when
    it is not one (a bug, a constraint, bad SQL: those stay 500s). Any error once the connection
    is lost (`connection_lost`) is one: asyncpg then raises InterfaceError from whatever touched
    the connection next (a transaction's end, the next statement), masking the first error. Pure."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES:
            return DatabaseUnavailable(f"{type(exc).__name__}: {exc}", timed_out=state == QUERY_CANCELED)
    if connection_lost:
        return DatabaseUnavailable(f"connection lost: {type(exc).__name__}: {exc}")
    return None


def ssl_option(sslmode: str, sslrootcert: str | None) -> ssl.SSLContext | str:
    """libpq's sslmode for asyncpg. With a CA file, require, verify-ca and verify-full get a
    context that verifies the server's chain against that CA only, as libpq does (require with a
    CA file behaves as verify-ca); verify-full also checks the host name. A CA file that cannot
    be read raises here, at startup. Without one the mode is passed as is, and asyncpg looks for
    libpq's default CA file (~/.postgresql/root.crt) for the verify modes."""
    if sslrootcert and sslmode in ("require", "verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=sslrootcert)
        context.check_hostname = sslmode == "verify-full"
        return context
    return sslmode


def connect_options(settings: Settings) -> dict[str, Any]:
    """asyncpg.connect's arguments for the API's role: verified TLS, the session settings in the
    startup packet (statement timeout, read-only, search_path; api/settings.py)."""
    return {
        "host": settings.pg_host,
        "port": settings.pg_port,
        "user": settings.pg_user,
        "database": settings.pg_db,
        # Given to the driver only; no string that might be logged holds it.
        "password": settings.pg_password.get_secret_value(),
        "ssl": ssl_option(settings.pg_sslmode, settings.pg_sslrootcert),
        "timeout": settings.pg_connect_timeout_s,
        "server_settings": settings.session_settings(),
    }


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset on release. asyncpg's default runs RESET ALL, UNLISTEN and CLOSE ALL, a
    round trip per borrow; the API's sessions change nothing (their settings are startup
    defaults), and an open transaction is rolled back by asyncpg before this runs."""


def _lost(connection: asyncpg.Connection) -> bool:
    """Whether a borrowed connection is gone: closed, or already handed back by asyncpg, which
    does that when the server or the network drops it."""
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        return True


class Session:
    """A borrowed connection; statements in the `%(name)s` style, bound by name."""

    __slots__ = ("connection",)

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[asyncpg.Record]:
        """The statement's rows (each indexable by position and by column name). asyncpg keeps
        the prepared statement per connection, so each text is planned once per connection."""
        text, order = to_positional(sql)
        args: Sequence[Any] = [params[name] for name in order] if order else ()
        return await self.connection.fetch(text, *args)

    async def execute(self, sql: str) -> None:
        """A statement without values or rows (SET TRANSACTION, ...)."""
        await self.connection.execute(to_positional(sql)[0])

    def transaction(self) -> Any:
        """`async with session.transaction():` commits at the end, rolls back on an error."""
        return self.connection.transaction()


class Database:
    """The process's pool, or none yet (before the lifespan started, while Postgres cannot be
    reached at startup, or after the lifespan ended)."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.acquire_timeout_s: float | None = None
        self.borrows = 0  # connections asked for, for tests and metrics
        self._opening: asyncio.Task[None] | None = None

    async def open(self, settings: Settings, *, wait: bool = False) -> None:
        """Create the pool with pg_pool_min_size connections, which it keeps open (reconnecting
        in the background when one is lost). With `wait` an unreachable Postgres raises. Without
        it the API starts at once and the pool is created in the background, retried with
        backoff until Postgres answers; until then every borrow is DatabaseUnavailable (503)
        and /readyz says not ready."""
        self.acquire_timeout_s = settings.pg_pool_timeout_s
        # Built once, here: a bad setting (an unreadable CA file) fails the startup, not a retry.
        options = connect_options(settings)
        if wait:
            self.pool = await self._create(settings, options)
        else:
            self._opening = asyncio.create_task(self._open_in_background(settings, options), name="postgres-pool-open")

    @staticmethod
    async def _create(settings: Settings, options: dict[str, Any]) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            **options,
            min_size=settings.pg_pool_min_size,
            max_size=settings.pg_pool_max_size,
            max_inactive_connection_lifetime=60,
            reset=_keep_session,
        )

    async def _open_in_background(self, settings: Settings, options: dict[str, Any]) -> None:
        def tell(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("postgres not reachable yet; retrying", attempt=state.attempt_number,
                        error_type=type(error).__name__, error=str(error))

        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=0.5, max=_OPEN_RETRY_MAX_S),
            # Not a client configuration error (a setting asyncpg refuses): no retry cures it.
            retry=(tenacity.retry_if_exception_type((asyncpg.PostgresError, asyncpg.InterfaceError, OSError))
                   & tenacity.retry_if_not_exception_type(asyncpg.ClientConfigurationError)),
            before_sleep=tell,
        )
        try:
            self.pool = await retrying(self._create, settings, options)
        except Exception as exc:  # not a condition time cures (a bad setting): said once, loudly
            log.error("postgres pool not created; every request needing Postgres answers 503",
                      error_type=type(exc).__name__, error=str(exc))
            return
        log.info("postgres pool connected", min_size=settings.pg_pool_min_size)

    async def close(self) -> None:
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Session]:
        """Borrow a connection for at most `timeout` seconds of waiting (default: the pool's);
        every statement on it runs under the configured statement_timeout.

        Raises DatabaseUnavailable when Postgres cannot answer: no connection within the
        timeout, a connection that cannot be made (any error while connecting, as libpq
        reports them), or a statement that fails for a reason a retry can cure (`unavailable`)."""
        self.borrows += 1
        wait = self.acquire_timeout_s if timeout is None else timeout
        pool = self.pool
        if pool is None and self._opening is not None and not self._opening.done():
            # Starting up: wait for the pool within the same time a busy pool would be waited for.
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):  # the opening task itself never raises
                await asyncio.wait_for(asyncio.shield(self._opening), wait)
            pool = self.pool
            wait = None if wait is None else max(0.0, wait - (time.monotonic() - started))
        if pool is None:
            raise DatabaseUnavailable("the connection pool is not open (Postgres not reached yet, or shut down)")
        try:
            connection = await pool.acquire(timeout=wait)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise DatabaseUnavailable(f"no connection: {type(exc).__name__}: {exc}") from exc
        try:
            yield Session(connection)
        except Exception as exc:
            mapped = unavailable(exc, connection_lost=_lost(connection))
            if mapped is None or mapped is exc:
                raise
            raise mapped from exc
        finally:
            try:
                await pool.release(connection)
            except Exception as exc:  # asyncpg has closed the connection; the pool makes a new one
                log.warning("postgres connection dropped on release", error_type=type(exc).__name__, error=str(exc))
