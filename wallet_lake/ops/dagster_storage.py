"""Dagster's Postgres storage (runs, event logs, schedules) with each process keeping its
connections: dagster.yaml names this class (`storage: custom:`), with dagster-postgres' own
config.

dagster-postgres opens a new connection for every query outside the webserver (SQLAlchemy's
NullPool, so that short-lived instances hold nothing). Here every connection is TLS with the
server's certificate verified and a SCRAM-SHA-256 login (dagster.yaml, stack/wallet-stack), whose
4,096 PBKDF2 rounds cost the client CPU each time and the server a new backend: the idle daemon
spent ~11 % of a core, half of it in libcrypto, and a run ~40 ms per event it wrote
(docs/benchmarks.md). This class keeps a small pool per storage in each process (daemon, code
server, run workers, CLI), as the webserver already does (optimize_for_webserver): a connection
is pinged before use, so one a server restart closed is replaced instead of failing the query
(in the webserver's engine too), and recycled after POOL_RECYCLE_S. dispose() closes them, so an instance used as a context
manager leaves no connection behind."""

from __future__ import annotations

from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

# Connections kept per storage and process (three storages), and how many more a burst may open
# (closed when returned). The daemon's threads (sensors, run queue, monitoring, schedules,
# backfills) query at once; a run worker mostly writes events from one thread.
POOL_SIZE = 2
MAX_OVERFLOW = 8
POOL_RECYCLE_S = 3600


class _Pooled:
    """A dagster-postgres storage whose engine (its `_engine`, dagster-postgres 0.29; the test
    wallet_lake_tests/integration/test_dagster_storage.py fails if that changes) is a pooled one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self, "_engine"):
            raise RuntimeError(f"{type(self).__name__} has no _engine: dagster-postgres changed, see wallet_lake/ops/dagster_storage.py")
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW, pool_recycle=POOL_RECYCLE_S, pool_pre_ping=True,
        )

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int, max_overflow: int) -> None:
        """dagster-postgres' webserver engine (one kept connection, a statement timeout), pinged
        before use like ours: as it comes, after a Postgres restart each kept connection failed one
        query, an HTTP 500 of the UI's GraphQL (bench/freshness.py met it after the fault tests)."""
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)
        pool = self._engine.pool
        if not hasattr(pool, "_pre_ping"):  # SQLAlchemy 2's Pool keeps create_engine's pool_pre_ping there
            raise RuntimeError("SQLAlchemy's Pool has no _pre_ping: see wallet_lake/ops/dagster_storage.py")
        pool._pre_ping = True

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()
        for other in getattr(self, "_disposes_with", ()):
            other._engine.dispose()


class PooledRunStorage(_Pooled, PostgresRunStorage):
    pass


class PooledEventLogStorage(_Pooled, PostgresEventLogStorage):
    pass


class PooledScheduleStorage(_Pooled, PostgresScheduleStorage):
    pass


class PooledPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage built of the pooled storages above (see module doc)."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None, token_provider=None):
        # DagsterPostgresStorage.__init__ would build the unpooled storages first; this is it, pooled.
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = PooledEventLogStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._schedule_storage = PooledScheduleStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        # DagsterInstance.dispose() disposes the run and event log storages but not the schedule
        # storage: the run storage closes its connections too.
        self._run_storage._disposes_with = (self._schedule_storage,)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "PooledPostgresStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
