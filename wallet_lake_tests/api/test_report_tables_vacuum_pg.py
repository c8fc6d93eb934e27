"""The report tables are vacuumed after each refresh (migration 0011), so the reports' index-only
scans stop visiting the heap for the rows a refresh rewrote, with no manual VACUUM.

Waits for the real autovacuum daemon: the stack runs a round every 10 s (autovacuum_naptime)."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest

from api.reports.kept_histograms import DAY_HISTOGRAMS_SQL, LATENCY_TERMS
from api.reports.sql import DECLINES, DECLINES_ALL, REPORT_QUERIES, ReportQuery
from wallet_lake.serving import pg_connect
from wallet_lake.serving.aggregates import refresh_report_aggregates
from wallet_lake.serving.pg_roles import REPORT_TABLES
from wallet_lake_tests.polling import deadline_poll

from .conftest import payment
from .test_aggregates_pg import at, far_day

pytestmark = pytest.mark.integration

SETTINGS = {
    "autovacuum_vacuum_threshold": "0", "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "0", "autovacuum_vacuum_insert_scale_factor": "0",
    # Otherwise a vacuum may skip the indexes and leave pages with dead line pointers not all-visible.
    "vacuum_index_cleanup": "on",
}
# Read through the heap whatever the visibility map says (no covering index): 0011 leaves them be.
HEAP_READ = {"report_aggregate_versions", "report_aggregate_dirty_dts"}


def _options(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    rows = conn.execute(
        "SELECT relname, coalesce(reloptions, '{}') FROM pg_class"
        " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname LIKE 'report\\_%'"
    ).fetchall()
    return {name: dict(option.split("=", 1) for option in options) for name, options in rows}


def test_every_table_reports_read_is_due_for_a_vacuum_after_any_write(pg_admin: psycopg.Connection) -> None:
    statements = [q.sql for q in REPORT_QUERIES.values()] + [LATENCY_TERMS.sql, DAY_HISTOGRAMS_SQL]
    read = {m.group(1) for sql in statements for m in re.finditer(r"\b(?:FROM|JOIN)\s+(?:public\.)?(report_\w+)", sql)}
    # Every table a report reads by index is one 0011 covers (and report_latency_daily, which the refresh reads).
    assert read - HEAP_READ and read - HEAP_READ <= set(REPORT_TABLES), read
    options = _options(pg_admin)
    for name in REPORT_TABLES:
        assert {o: options[name].get(o) for o in SETTINGS} == SETTINGS, name


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


def _vacuumed_since(conn: psycopg.Connection, tables: tuple[str, ...], since) -> bool:
    """Every table vacuumed by autovacuum after `since`, and all its pages all-visible as that
    vacuum left them (pg_class: only VACUUM and ANALYZE update relallvisible)."""
    rows = conn.execute(
        "SELECT s.last_autovacuum > %s AND c.relallvisible = c.relpages FROM pg_stat_user_tables AS s"
        " JOIN pg_class AS c ON c.oid = s.relid WHERE s.relname = ANY(%s)", [since, list(tables)]
    ).fetchall()
    return len(rows) == len(tables) and all(ok for (ok,) in rows)


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
    read_tables = ("report_status_daily", "report_status_daily_all")
    with pg_connect.connect("owner", autocommit=True) as reader:
        # The plans the reports get on the real tables, where the planner can choose them (the test
        # tables are small, and it may pick a plain index scan: then heap fetches are not counted).
        reader.execute("SET enable_seqscan = off")
        reader.execute("SET enable_bitmapscan = off")
        payments(rows)
        # Again, as every hour's refresh does: the first refresh's rows become dead.
        refresh_report_aggregates(pg_admin, [day], include_marked=False)
        refreshed_at = pg_admin.execute("SELECT clock_timestamp()").fetchone()[0]
        # Autovacuum cannot have run yet: a backend reports what it wrote at the earliest when its
        # transaction ends, and the launcher starts a worker at most once per round.
        for query, params in reads:
            fetches, scans = _heap_fetches(reader, query, params)
            assert fetches > 0 or scans == 0, f"{query.name}: rows read without the heap before any vacuum could mark them"
        naptime_s = int(reader.execute("SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime'").fetchone()[0])
        try:
            # Small changes (16 rows a table here) never reach the server's default thresholds.
            deadline_poll(lambda: _vacuumed_since(reader, read_tables, refreshed_at),
                          "autovacuum of the report tables after the refresh, leaving every page all-visible",
                          timeout=max(90, 6 * naptime_s), interval=1)
        except AssertionError as exc:
            # What keeps a vacuum from marking the pages (an older snapshot or transaction), and
            # what autovacuum did and does.
            sessions = reader.execute(
                "SELECT datname, pid, backend_type, state, backend_xid, backend_xmin, xact_start, left(query, 120)"
                " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL OR backend_type = 'autovacuum worker')"
            ).fetchall()
            tables = reader.execute(
                "SELECT s.relname, n_live_tup, n_dead_tup, n_ins_since_vacuum, autovacuum_count, last_autovacuum,"
                " c.relpages, c.relallvisible FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid"
                " WHERE s.relname = ANY(%s)", [list(read_tables)]
            ).fetchall()
            raise AssertionError(f"{exc}; refreshed at {refreshed_at}; sessions: {sessions}; tables: {tables}") from None
        for query, params in reads:
            fetches, scans = _heap_fetches(reader, query, params)
            assert fetches == 0, f"{query.name}: {fetches} heap fetches after autovacuum"
