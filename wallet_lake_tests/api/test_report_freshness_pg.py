"""Reports are never silently stale (issue 11, section 2), on the real Postgres:

- every change to curated_payments (insert, update in place, a dt move, delete) marks its dts in
  the same transaction, one mark per statement and dt, and a replayed older state marks nothing;
- the refresher sensor (evaluated with real resources) drains the marks, after which the
  aggregates equal a recomputation from curated_payments done here;
- a mark added while a refresh runs is not drained by it;
- a report's as_of is older than a change still pending and moves past it after the drain;
- concurrent refreshes (sensor, asset-style, different dts of one month) neither fail nor
  double count.

Days are random in 2031-2099 and merchants and payment methods unique, so other tests' rows
never mix in."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from unittest import mock

import dagster as dg
import psycopg
import pytest

from wallet_lake.serving import pg_connect
from psycopg import sql

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS
from wallet_lake.contracts.schema import CURATED_COLUMNS
from wallet_lake.defs.serving import aggregates_refresher as refresher_module
from wallet_lake.defs.serving.aggregates_refresher import report_aggregates_refresher
from wallet_lake.resources import PostgresResource
from wallet_lake.serving.aggregates import drain_marks, refresh_report_aggregates

from ..polling import deadline_poll
from .conftest import payment, split_as_of

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc


def far_month() -> dt.date:
    """The first day of a month no other test uses."""
    day = dt.date(2031, 1, 1) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(68 * 365))
    return day.replace(day=1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def new_method() -> str:
    return f"t_{uuid.uuid4().hex[:20]}"


# One multi-row INSERT ... ON CONFLICT DO UPDATE, as the JDBC driver rewrites the sink's batches
# (reWriteBatchedInserts): the statement-level triggers fire once for all its rows.
def sink_upsert(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    columns = sql.SQL(", ").join(map(sql.Identifier, CURATED_COLUMNS))
    one_row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() for _ in CURATED_COLUMNS))
    statement = sql.SQL("INSERT INTO public.curated_payments ({}) VALUES {} ON CONFLICT (payment_id) DO UPDATE SET {}").format(
        columns,
        sql.SQL(", ").join(one_row for _ in rows),
        sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in CURATED_COLUMNS if c != "payment_id"
        ),
    )
    conn.execute(statement, [r[c] for r in rows for c in CURATED_COLUMNS])


def marks_of_this_transaction(conn: psycopg.Connection) -> list[dt.date]:
    """Marks written by the connection's open transaction (sorted dts, one per mark)."""
    return sorted(r[0] for r in conn.execute(
        "SELECT dt FROM public.report_aggregate_dirty_dts WHERE xmin = pg_current_xact_id()::xid"
    ).fetchall())


def pending_marks(conn: psycopg.Connection, dts: Iterable[dt.date]) -> list[tuple[int, dt.date]]:
    return conn.execute(
        "SELECT id, dt FROM public.report_aggregate_dirty_dts WHERE dt = ANY(%s) ORDER BY id", [sorted(set(dts))]
    ).fetchall()


def tick(postgres: PostgresResource, *, settled: bool = True) -> dict[str, Any]:
    """One evaluation of the refresher sensor; its observation's metadata as plain values.
    `settled`: as the daemon's tick once the test's writes, seconds old, are quiet (no deferral);
    otherwise with the configured WL_AGGREGATES_REFRESH_QUIET_S."""
    with mock.patch.object(refresher_module, "SETTINGS", replace(refresher_module.SETTINGS, quiet_s=0.0) if settled else refresher_module.SETTINGS):
        result = report_aggregates_refresher(dg.build_sensor_context(resources={"postgres": postgres}))
    [observation] = result.asset_events
    assert observation.asset_key == dg.AssetKey(TABLE_CURATED_PAYMENTS)
    return {k: getattr(v, "value", v) for k, v in observation.metadata.items()}


# --- an independent recomputation -------------------------------------------------------------


def recomputed(conn: psycopg.Connection, dts: list[dt.date], methods: list[str]) -> dict[str, dict]:
    """What the aggregates of `dts` must hold, computed here in Python from curated_payments:
    counts and amounts per merchant and over all merchants, latency count/sum/max per method,
    and month-to-date latency counts of `methods`."""
    rows = conn.execute(
        "SELECT dt, merchant_id, currency, status, decline_reason, amount_cents, payment_method, authorized_to_complete_ms"
        " FROM public.curated_payments WHERE dt = ANY(%s)",
        [dts],
    ).fetchall()
    status: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    status_all: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    latency: dict[tuple, list[int]] = {}
    for day, merchant, currency, st, reason, amount, method, ms in rows:
        reason = (reason or "unknown") if st == "DECLINED" else ""
        for target, key in ((status, (merchant, day, currency, st, reason)), (status_all, (day, currency, st, reason))):
            target[key][0] += 1
            target[key][1] += int(amount)
        if ms is not None:
            t = latency.setdefault((day, method or "unknown"), [0, 0, ms])
            t[0], t[1], t[2] = t[0] + 1, t[1] + ms, max(t[2], ms)
    # Month to date: the payments of each method from the month's first day through dt (the
    # month's days outside `dts` are read too: they count in the running total).
    # A day has month-to-date rows when it has latency data of any method.
    mtd: dict[tuple, int] = {}
    for day in {d for d, _ in latency}:
        for method in methods:
            n = conn.execute(
                "SELECT count(*) FROM public.curated_payments WHERE payment_method = %s AND authorized_to_complete_ms IS NOT NULL"
                " AND dt BETWEEN %s AND %s",
                [method, day.replace(day=1), day],
            ).fetchone()[0]
            if n:
                mtd[(day, method)] = n
    return {
        "status": {k: tuple(v) for k, v in status.items()},
        "status_all": {k: tuple(v) for k, v in status_all.items()},
        "latency": {k: tuple(v) for k, v in latency.items()},
        "mtd": mtd,
    }


def stored(conn: psycopg.Connection, dts: list[dt.date], methods: list[str]) -> dict[str, dict]:
    """What the aggregate tables hold for `dts`, in recomputed()'s shape."""
    status = {
        (m, d, c, s, r): (n, int(a))
        for m, d, c, s, r, n, a in conn.execute(
            "SELECT merchant_id, dt, currency, status, decline_reason, payment_count, amount_cents FROM public.report_status_daily"
            " WHERE dt = ANY(%s)",
            [dts],
        ).fetchall()
    }
    status_all = {
        (d, c, s, r): (n, int(a))
        for d, c, s, r, n, a in conn.execute(
            "SELECT dt, currency, status, decline_reason, payment_count, amount_cents FROM public.report_status_daily_all WHERE dt = ANY(%s)",
            [dts],
        ).fetchall()
    }
    latency = {
        (d, m): (n, int(s), int(x))
        for d, m, n, s, x in conn.execute(
            "SELECT dt, payment_method, payment_count, sum_ms, max_ms FROM public.report_latency_totals_daily WHERE dt = ANY(%s)", [dts]
        ).fetchall()
    }
    mtd = {
        (d, m): int(n)
        for d, m, n in conn.execute(
            "SELECT dt, payment_method, sum(payment_count) FROM public.report_latency_mtd WHERE dt = ANY(%s) AND payment_method = ANY(%s)"
            " GROUP BY 1, 2",
            [dts, methods],
        ).fetchall()
    }
    return {"status": status, "status_all": status_all, "latency": latency, "mtd": mtd}


def assert_aggregates_match(conn: psycopg.Connection, dts: list[dt.date], methods: list[str]) -> None:
    want, got = recomputed(conn, dts, methods), stored(conn, dts, methods)
    assert got == want


# --- every change marks -----------------------------------------------------------------------


def test_every_change_marks_its_dts_in_its_own_transaction(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    d1 = far_month() + dt.timedelta(days=3)
    d2 = d1 + dt.timedelta(days=2)
    batch = [
        payment(merchant, payment_id=f"{merchant}_{i}", currency="EUR", status="PENDING", amount_cents=100 + i, created_at=at(d1, 1, i))
        for i in range(50)
    ]
    try:
        # An insert into a new dt: one mark for the 50-row statement.
        with pg_admin.transaction():
            sink_upsert(pg_admin, batch)
            assert marks_of_this_transaction(pg_admin) == [d1]

        # A status change within the dt (the sink's upsert) and a plain UPDATE: the dt again.
        approved = dict(batch[0], status="APPROVED", created_at=at(d1, 2), is_approved=True)
        with pg_admin.transaction():
            sink_upsert(pg_admin, [approved])
            assert marks_of_this_transaction(pg_admin) == [d1]
        with pg_admin.transaction():
            pg_admin.execute(
                "UPDATE public.curated_payments SET created_at = created_at + interval '1 minute' WHERE payment_id = %s",
                [batch[1]["payment_id"]],
            )
            assert marks_of_this_transaction(pg_admin) == [d1]

        # A dt move (a refund two days later): the dt it left and the dt it joined.
        refunded = dict(approved, status="REFUNDED", created_at=at(d2, 5), dt=d2, hour=5, is_approved=False, is_refunded=True)
        with pg_admin.transaction():
            sink_upsert(pg_admin, [refunded])
            assert marks_of_this_transaction(pg_admin) == [d1, d2]

        # A replayed older state changes nothing and marks nothing.
        with pg_admin.transaction():
            sink_upsert(pg_admin, [approved])
            assert marks_of_this_transaction(pg_admin) == []
        assert pg_admin.execute("SELECT status, dt FROM public.curated_payments WHERE payment_id = %s", [approved["payment_id"]]).fetchone() == ("REFUNDED", d2)

        # A delete: the dts of the rows deleted.
        with pg_admin.transaction():
            pg_admin.execute("DELETE FROM public.curated_payments WHERE payment_id = ANY(%s)", [[batch[2]["payment_id"], refunded["payment_id"]]])
            assert marks_of_this_transaction(pg_admin) == [d1, d2]

        # Marks commit or roll back with their change.
        before = pending_marks(pg_admin, [d1])
        with pg_admin.transaction():
            pg_admin.execute("DELETE FROM public.curated_payments WHERE payment_id = %s", [batch[3]["payment_id"]])
            assert marks_of_this_transaction(pg_admin) == [d1]
            raise psycopg.Rollback
        assert pending_marks(pg_admin, [d1]) == before
    finally:
        pg_admin.execute("DELETE FROM public.curated_payments WHERE merchant_id = %s", [merchant])
        refresh_report_aggregates(pg_admin, [d1, d2], include_marked=False)


# --- the refresher sensor ---------------------------------------------------------------------


def test_refresher_sensor_drains_every_kind_of_mark_and_the_aggregates_equal_a_recomputation(
    pg_admin: psycopg.Connection, payments, new_merchant, stack_resources
) -> None:
    merchants, methods = [new_merchant(), new_merchant()], [new_method(), new_method()]
    month = far_month()
    d1, d2 = month + dt.timedelta(days=4), month + dt.timedelta(days=9)
    d3 = (month + dt.timedelta(days=40)).replace(day=2)  # the next month
    rng = random.Random(7)
    rows = []
    for i in range(120):
        status = rng.choice(["APPROVED", "APPROVED", "PENDING", "DECLINED", "FAILED", "REFUNDED"])
        rows.append(payment(
            merchants[i % 2], payment_id=f"{merchants[i % 2]}_{i}", currency=rng.choice(["EUR", "USD"]), status=status,
            amount_cents=rng.randrange(1, 10**6), created_at=at([d1, d2, d3][i % 3], i % 24, i % 60),
            payment_method=rng.choice(methods), decline_reason=rng.choice([None, "", "do_not_honor"]) if status == "DECLINED" else None,
            latency_ms=rng.choice([None, rng.randrange(0, 5000)]),
        ))
    payments(rows)  # loaded and refreshed, as the Postgres asset does
    assert_aggregates_match(pg_admin, [d1, d2, d3], methods)

    # Then changes nobody refreshes (the Postgres step failed): a new payment on a new dt, a
    # status change in place, a move to another dt, a delete.
    d4 = d2 + dt.timedelta(days=1)
    new = payment(merchants[0], currency="EUR", status="APPROVED", amount_cents=5, created_at=at(d4, 3), payment_method=methods[0], latency_ms=77)
    moved = dict(rows[0], status="REFUNDED", created_at=at(d2, 23), dt=d2, hour=23, is_approved=False, is_refunded=True)
    in_place = dict(rows[1], status="CHARGEBACK", created_at=rows[1]["created_at"] + dt.timedelta(minutes=1), is_approved=False)
    sink_upsert(pg_admin, [new, moved, in_place])
    pg_admin.execute("DELETE FROM public.curated_payments WHERE payment_id = %s", [rows[5]["payment_id"]])
    ours = [d1, d2, d3, d4]
    assert {d for _, d in pending_marks(pg_admin, ours)} == set(ours)
    assert stored(pg_admin, ours, methods) != recomputed(pg_admin, ours, methods)  # the reports are behind

    figures = tick(stack_resources["postgres"])

    assert pending_marks(pg_admin, ours) == []
    assert set(map(dt.date.fromisoformat, figures["aggregates_refreshed_dts"])) >= set(ours)
    assert figures["aggregates_dts_refreshed"] >= 4 and figures["aggregates_marks_drained"] >= 4
    assert figures["aggregates_oldest_mark_age_before_s"] >= 0 and figures["aggregates_oldest_pending_mark_age_s"] >= 0
    assert "aggregates_refresh_error" not in figures
    assert_aggregates_match(pg_admin, ours, methods)


def test_the_sensor_leaves_a_dt_still_being_written_for_a_later_tick(pg_admin: psycopg.Connection, payments, new_merchant, stack_resources) -> None:
    merchant, method = new_merchant(), new_method()
    d = far_month() + dt.timedelta(days=12)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 1), payment_method=method, latency_ms=5)])
    sink_upsert(pg_admin, [payment(merchant, currency="EUR", status="APPROVED", amount_cents=2, created_at=at(d, 2), payment_method=method)])
    assert [day for _, day in pending_marks(pg_admin, [d])] == [d]
    assert refresher_module.SETTINGS.quiet_s > 0  # the configured default defers

    figures = tick(stack_resources["postgres"], settled=False)  # the mark is a second old: a load may still be writing

    assert str(d) not in figures["aggregates_refreshed_dts"] and figures["aggregates_dts_deferred"] >= 1
    assert [day for _, day in pending_marks(pg_admin, [d])] == [d]
    assert stored(pg_admin, [d], [method]) != recomputed(pg_admin, [d], [method])

    figures = tick(stack_resources["postgres"])  # once quiet
    assert str(d) in figures["aggregates_refreshed_dts"] and pending_marks(pg_admin, [d]) == []
    assert_aggregates_match(pg_admin, [d], [method])


def test_a_refresh_leaves_the_marks_added_while_it_ran(pg_admin: psycopg.Connection, pg_settings, payments, new_merchant, stack_resources) -> None:
    merchant, method = new_merchant(), new_method()
    d = far_month() + dt.timedelta(days=10)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 1), payment_method=method, latency_ms=5)])
    sink_upsert(pg_admin, [payment(merchant, currency="EUR", status="APPROVED", amount_cents=2, created_at=at(d, 2), payment_method=method)])
    [(first_mark, _)] = pending_marks(pg_admin, [d])

    # Hold the dt's aggregate rows: the sensor's refresh drains the mark, then waits on them.
    blocker = pg_connect.connect("owner")
    outcome: dict[str, Any] = {}

    def run_tick() -> None:
        try:
            outcome["figures"] = tick(stack_resources["postgres"])
        except BaseException as exc:  # re-raised in the test thread
            outcome["error"] = exc

    try:
        blocker.execute("SELECT 1 FROM public.report_status_daily WHERE dt = %s FOR UPDATE", [d])
        blocker_pid = blocker.info.backend_pid
        thread = threading.Thread(target=run_tick)
        thread.start()
        deadline_poll(
            lambda: pg_admin.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [blocker_pid]).fetchall(),
            "the refresh of the dt to wait on its aggregate rows",
        )
        # A change committed while the refresh runs (after its drain): its mark must survive.
        sink_upsert(pg_admin, [payment(merchant, currency="USD", status="APPROVED", amount_cents=3, created_at=at(d, 3), payment_method=method)])
        [(second_mark, _)] = [m for m in pending_marks(pg_admin, [d]) if m[0] != first_mark]
        blocker.rollback()
        thread.join(60)
        assert not thread.is_alive() and "error" not in outcome, outcome
    finally:
        blocker.close()

    assert pending_marks(pg_admin, [d]) == [(second_mark, d)]  # the first drained, the second kept
    tick(stack_resources["postgres"])
    assert pending_marks(pg_admin, [d]) == []
    assert_aggregates_match(pg_admin, [d], [method])


def test_a_tick_stops_starting_batches_when_its_budget_is_spent(pg_admin: psycopg.Connection, payments, new_merchant, pg_settings) -> None:
    merchant = new_merchant()
    months = [far_month() for _ in range(3)]
    days = [m + dt.timedelta(days=1) for m in months]
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 1)) for d in days], refresh=False)
    with pg_connect.connect("pipeline", autocommit=True) as conn:
        # A budget that the first batch (always run) overspends: the other months wait.
        report = drain_marks(conn, budget_s=1e-9, max_dts=7)
    assert report.batches_done == 1 and report.batches_left >= 2
    assert len({d for _, d in pending_marks(pg_admin, days)}) >= 2
    assert report.pending_marks_after >= 2 and report.oldest_mark_age_after_s is not None


def test_refresher_tick_records_an_unreachable_postgres_and_does_not_fail(stack_resources) -> None:
    pg = stack_resources["postgres"]
    with socket_nobody_listens_on() as port:
        figures = tick(PostgresResource(host="127.0.0.1", port=port, user=pg.user, password=pg.password, dbname=pg.dbname))
    assert "aggregates_refresh_error" in figures and pg.password not in figures["aggregates_refresh_error"]


class socket_nobody_listens_on:
    """A local TCP port bound but never listening: connections to it are refused."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# --- as_of ------------------------------------------------------------------------------------


def test_as_of_is_older_than_a_pending_change_and_moves_past_it_after_the_drain(
    live_client, pg_admin: psycopg.Connection, payments, new_merchant, stack_resources
) -> None:
    merchant, method = new_merchant(), new_method()
    month = far_month()
    d = month + dt.timedelta(days=12)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=10, created_at=at(d, 1), payment_method=method, latency_ms=50)])
    one_day = {"date": d.isoformat(), "merchant": merchant}
    ranges = [  # each reads d: a range over it, and latency from later in d's month (month to date)
        ("/reports/refund-rate", {"from": d.isoformat(), "to": (d + dt.timedelta(days=3)).isoformat(), "merchant": merchant}),
        ("/reports/declines", {"from": (d - dt.timedelta(days=3)).isoformat(), "to": d.isoformat(), "merchant": merchant}),
        ("/reports/latency", {"from": (d + dt.timedelta(days=1)).isoformat(), "to": (d + dt.timedelta(days=2)).isoformat()}),
    ]
    later_month = (month + dt.timedelta(days=45)).replace(day=3)  # reads nothing of d's month
    elsewhere = ("/reports/declines", {"from": later_month.isoformat(), "to": later_month.isoformat(), "merchant": merchant})

    def get(url: str, params: dict) -> tuple[dt.datetime, dict]:
        r = live_client.get(url, params=params)
        assert r.status_code == 200, r.text
        return split_as_of(r.json())

    # A change nobody has refreshed yet; marked_at is its transaction's start.
    with pg_admin.transaction():
        change_began = pg_admin.execute("SELECT now()").fetchone()[0]
        sink_upsert(pg_admin, [payment(merchant, currency="EUR", status="APPROVED", amount_cents=5, created_at=at(d, 2), payment_method=method)])

    as_of, body = get("/reports/daily-recon", one_day)
    assert as_of <= change_began and body["totals"] == [{"currency": "EUR", "count": 1, "amount_cents": 10}]  # stale, and says so
    for url, params in ranges:
        assert get(url, params)[0] <= change_began, url
    assert get(*elsewhere)[0] > change_began

    tick(stack_resources["postgres"])

    as_of, body = get("/reports/daily-recon", one_day)
    assert as_of > change_began and body["totals"] == [{"currency": "EUR", "count": 2, "amount_cents": 15}]
    for url, params in ranges:
        assert get(url, params)[0] > change_began, url

    # The lake: the time it was read.
    before = dt.datetime.now(UTC)
    lake_as_of, _ = get("/reports/daily-recon", {**one_day, "source": "lake"})
    assert before <= lake_as_of <= dt.datetime.now(UTC)


# --- concurrent refreshes ---------------------------------------------------------------------


def test_concurrent_refreshes_neither_fail_nor_double_count(pg_admin: psycopg.Connection, pg_settings, payments, new_merchant) -> None:
    merchant, method = new_merchant(), new_method()
    month = far_month()
    d1, d2 = month + dt.timedelta(days=2), month + dt.timedelta(days=20)  # one month: one month-to-date
    d3 = (month + dt.timedelta(days=40)).replace(day=5)
    days = [d1, d2, d3]
    rng = random.Random(3)

    def row(i: int) -> dict[str, Any]:
        return payment(
            merchant, payment_id=f"{merchant}_{i}", currency="EUR", status="APPROVED", amount_cents=i + 1,
            created_at=at(days[i % 3], i % 24, rng.randrange(60)), payment_method=method, latency_ms=rng.randrange(1, 3000),
        )

    payments([row(i) for i in range(60)], refresh=False)
    # Refunds a day later land one or two days on.
    touched = sorted({d + dt.timedelta(days=k) for d in days for k in range(3)})
    stop, errors = threading.Event(), []

    def repeatedly(refresh: Callable[[psycopg.Connection], Any]) -> Callable[[], None]:
        def loop() -> None:
            try:
                with pg_connect.connect("pipeline", autocommit=True) as conn:
                    while not stop.is_set():
                        refresh(conn)
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        return loop

    refreshers = [
        lambda c: refresh_report_aggregates(c, [d1], include_marked=False),  # two asset runs of one dt
        lambda c: refresh_report_aggregates(c, [d1], include_marked=False),
        lambda c: refresh_report_aggregates(c, [d2], include_marked=False),  # another dt of the same month
        lambda c: refresh_report_aggregates(c, [d3]),  # an asset run that drains every mark
        lambda c: drain_marks(c, budget_s=5, max_dts=7),  # the sensor
    ]
    threads = [threading.Thread(target=repeatedly(r)) for r in refreshers]
    for t in threads:
        t.start()
    try:
        for i in range(60, 120):  # changes while they run: new payments, moves, in-place updates
            if i % 4 == 3:
                old = row(i - 57)
                sink_upsert(pg_admin, [dict(old, status="REFUNDED", created_at=old["created_at"] + dt.timedelta(days=1, hours=1),
                                            dt=(old["created_at"] + dt.timedelta(days=1, hours=1)).date(), is_approved=False, is_refunded=True)])
            else:
                sink_upsert(pg_admin, [row(i), row(i + 1000)])
        # The refreshers keep running until they have drained the last change's marks (a mark
        # drained by a refresh that has not committed yet still shows as pending).
        deadline_poll(lambda: errors or not pending_marks(pg_admin, touched), "the refreshers to drain every mark")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    # What the concurrent refreshes left, with no refresh of ours after them.
    assert_aggregates_match(pg_admin, touched, [method])
    count = pg_admin.execute(
        "SELECT sum(payment_count) FROM public.report_status_daily WHERE merchant_id = %s", [merchant]
    ).fetchone()[0]
    assert count == pg_admin.execute("SELECT count(*) FROM public.curated_payments WHERE merchant_id = %s", [merchant]).fetchone()[0]
