"""The report tables are vacuumed after each refresh (migration 0011), so the reports' index-only
scans stop visiting the heap for the rows a refresh rewrote, with no manual VACUUM.

Waits for the real autovacuum daemon: the stack runs it every 10 s (autovacuum_naptime)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import psycopg
import pytest

from api.reports.sql import DECLINES, DECLINES_ALL, ReportQuery
from wallet_lake.serving import aggregates, pg_connect
from wallet_lake.serving.aggregates import refresh_report_aggregates
from wallet_lake_tests.polling import deadline_poll

from .conftest import payment
from .test_aggregates_pg import at, far_day

pytestmark = pytest.mark.integration

OPTIONS = ("autovacuum_vacuum_threshold", "autovacuum_vacuum_scale_factor",
           "autovacuum_vacuum_insert_threshold", "autovacuum_vacuum_insert_scale_factor")


def _report_tables(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    rows = conn.execute(
        "SELECT relname, coalesce(reloptions, '{}') FROM pg_class"
        " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname LIKE 'report\\_%'"
    ).fetchall()
    return {name: dict(option.split("=", 1) for option in options) for name, options in rows}


def test_every_report_table_is_due_for_a_vacuum_after_any_write(pg_admin: psycopg.Connection) -> None:
    tables = _report_tables(pg_admin)
    written = {
        m.group(1)
        for statement in (*aggregates._REFRESH_STATEMENTS, *aggregates._MTD_STATEMENTS)
        for m in re.finditer(r"(?:DELETE FROM|INSERT INTO) public\.(\w+)", statement)
    }
    # Every table the refresh writes is a report table (so the check below covers it), and the
    # versions and marks tables, which the triggers write, are among them.
    assert written and written <= set(tables), written - set(tables)
    assert {"report_aggregate_versions", "report_aggregate_dirty_dts"} <= set(tables)
    for name, options in tables.items():
        assert {o: options.get(o) for o in OPTIONS} == dict.fromkeys(OPTIONS, "0"), name


def _heap_fetches(conn: psycopg.Connection, query: ReportQuery, params: dict[str, Any]) -> tuple[int, int]:
    """(heap fetches, index-only scans) of the report's statement as Postgres runs it now."""
    [(plan,)] = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query.sql}", params).fetchall()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    fetches = scans = 0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node["Node Type"] == "Index Only Scan":
            scans += 1
            fetches += int(node["Heap Fetches"])
        nodes.extend(node.get("Plans", ()))
    return fetches, scans


def test_rows_a_refresh_rewrites_are_read_without_the_heap_once_autovacuum_has_run(
    pg_settings, pg_admin: psycopg.Connection, payments, new_merchant
) -> None:
    merchant, day = new_merchant(), far_day()
    rows = [
        payment(merchant, currency=currency, status=status, amount_cents=100 + i, created_at=at(day, i % 24))
        for i, (currency, status) in enumerate(
            (c, s) for c in ("EUR", "USD", "GBP", "JPY") for s in ("APPROVED", "DECLINED", "REFUNDED", "PENDING") for _ in range(5)
        )
    ]
    reads = [(DECLINES, {"merchant_id": merchant, "date_from": day, "date_to": day}),
             (DECLINES_ALL, {"date_from": day, "date_to": day})]
    with pg_connect.connect("owner", autocommit=True) as reader, pg_connect.connect("owner", autocommit=True) as holder:
        # The plans the reports get on the real tables; forced here, as the test tables are small.
        reader.execute("SET enable_seqscan = off")
        reader.execute("SET enable_bitmapscan = off")
        # A snapshot older than the refreshes: no vacuum may mark their pages all-visible while it
        # is open, so the rewritten rows are first seen through the heap whenever autovacuum runs.
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT 1")
        payments(rows)
        # Again: the first refresh's rows become dead, so autovacuum keeps finding this table due
        # until the snapshot is gone (an insert-only change would be looked at once).
        refresh_report_aggregates(pg_admin, [day], include_marked=False)
        for query, params in reads:
            fetches, scans = _heap_fetches(reader, query, params)
            assert scans >= 1, f"{query.name}: no index-only scan"
            assert fetches > 0, f"{query.name}: rows read without the heap before any vacuum could mark them"
        holder.rollback()
        for query, params in reads:
            deadline_poll(lambda: _heap_fetches(reader, query, params)[0] == 0,
                          f"{query.name} read without the heap after autovacuum", timeout=90, interval=1)
