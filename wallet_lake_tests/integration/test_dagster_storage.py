"""The project's Dagster instance (dagster.yaml) keeps its Postgres connections
(wallet_lake/ops/dagster_storage.py): queries reuse a backend instead of a new TLS + SCRAM login
each, a connection the server dropped is replaced, and dispose() closes them. Against the stack's
Postgres, as the daemon and the run workers use it."""

from __future__ import annotations

import os
import time

import dagster as dg
import psycopg
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from sqlalchemy import text

from wallet_lake.ops.dagster_storage import PooledEventLogStorage, PooledRunStorage, PooledScheduleStorage
from wallet_lake.serving.pg_provision import admin_connect_kwargs


def backend_pid(storage) -> int:
    # The event log storage names its connection index_connection(); the others connect().
    connect = storage.index_connection if isinstance(storage, PostgresEventLogStorage) else storage.connect
    with connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def backend_alive(pid: int) -> bool:
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 1


def terminate(pid: int) -> None:
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


@pytest.fixture
def instance():
    with dg.DagsterInstance.get() as inst:
        yield inst


def storages(inst) -> list:
    return [inst.run_storage, inst.event_log_storage, inst._schedule_storage]


def test_the_project_instance_uses_the_pooled_postgres_storages(instance):
    kinds = [(PooledRunStorage, PostgresRunStorage), (PooledEventLogStorage, PostgresEventLogStorage),
             (PooledScheduleStorage, PostgresScheduleStorage)]
    for storage, (pooled, base) in zip(storages(instance), kinds):
        assert isinstance(storage, pooled) and isinstance(storage, base), type(storage)


def test_queries_reuse_one_encrypted_backend(instance):
    for storage in storages(instance):
        pids = {backend_pid(storage) for _ in range(5)}
        assert len(pids) == 1, f"{type(storage).__name__} opened {len(pids)} connections for 5 queries"
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        ssl = admin.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = %s", (pids.pop(),)).fetchone()
    assert ssl == (True,)
    # The instance's own calls go through the same pool.
    before = backend_pid(instance.run_storage)
    for _ in range(5):
        instance.get_runs_count()
    assert backend_pid(instance.run_storage) == before


def test_a_connection_the_server_dropped_is_replaced_not_an_error(instance):
    pid = backend_pid(instance.run_storage)
    terminate(pid)
    instance.get_runs_count()  # pinged first: the dead connection is replaced
    assert backend_pid(instance.run_storage) != pid


def test_dispose_closes_the_kept_connections():
    inst = dg.DagsterInstance.get()
    pids = [backend_pid(s) for s in storages(inst)]
    assert all(backend_alive(p) for p in pids)
    inst.dispose()
    deadline = time.monotonic() + 10
    while any(backend_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(backend_alive(p) for p in pids)


def test_the_webservers_connections_are_replaced_too_after_the_server_dropped_them(instance):
    """dagster-webserver swaps each storage's engine for dagster-postgres' webserver one
    (optimize_for_webserver), which kept a connection without pinging it: after a Postgres
    restart, the UI's first GraphQL query on each storage failed with HTTP 500."""
    instance.optimize_for_webserver(statement_timeout=5000, pool_recycle=3600, max_overflow=20)
    for storage in storages(instance):
        pid = backend_pid(storage)
        terminate(pid)
        assert backend_pid(storage) != pid, type(storage).__name__  # pinged first: no error
    instance.get_runs_count()
