"""Report aggregates (wallet_lake.serving.aggregates): refreshed per dt, only the dts asked for
(plus the ones a moved or deleted payment left), equal to an independent recomputation, safe to
run concurrently; and the latency buckets, the same in Postgres, DuckDB and Python."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections import Counter, defaultdict

import psycopg
import pytest

from wallet_lake.serving import pg_connect
from hypothesis import given
from hypothesis import strategies as st

from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR, latency_bucket, latency_bucket_width, latency_width_sql
from wallet_lake.serving.aggregates import refresh_report_aggregates

from .conftest import payment

UTC = dt.timezone.utc


def far_day() -> dt.date:
    return dt.date(2031, 1, 1) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(68 * 365))


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# --- buckets (pure) ---------------------------------------------------------------------------

SAMPLE_VALUES = sorted(
    {*range(-3, 300), *(2**e + d for e in range(7, 45) for d in (-1, 0, 1)), 9_000, 123_456_789, 2**42 + 12345, 2**50}
)


@given(st.integers(min_value=0, max_value=2**42))
def test_bucket_holds_the_value_within_the_bound(ms: int) -> None:
    lo, w = latency_bucket(ms)
    assert lo <= ms < lo + w
    midpoint = lo + (w - 1) / 2
    assert abs(midpoint - ms) <= max(0.0, LATENCY_RELATIVE_ERROR * ms)
    if ms < 128:
        assert (lo, w) == (ms, 1)


def test_buckets_are_monotone_and_disjoint() -> None:
    seen = [latency_bucket(v) for v in range(0, 70_000)]
    for (lo1, w1), (lo2, _w2) in zip(seen, seen[1:]):
        assert lo2 == lo1 or lo2 == lo1 + w1


def test_bucket_width_in_duckdb_equals_python() -> None:
    import duckdb

    con = duckdb.connect()
    got = con.execute(
        f"SELECT ms, {latency_width_sql('ms')} FROM (SELECT unnest($values::BIGINT[]) AS ms)", {"values": SAMPLE_VALUES}
    ).fetchall()
    assert {int(v): int(w) for v, w in got} == {v: latency_bucket_width(v) for v in SAMPLE_VALUES}


# --- Postgres ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_bucket_width_in_postgres_equals_python(pg_admin: psycopg.Connection) -> None:
    got = pg_admin.execute(
        f"SELECT ms, {latency_width_sql('ms')} FROM unnest(%s::bigint[]) AS t(ms)", [SAMPLE_VALUES]
    ).fetchall()
    assert dict(got) == {v: latency_bucket_width(v) for v in SAMPLE_VALUES}


def _status_rows(conn, merchant: str) -> dict[tuple, tuple[int, int]]:
    rows = conn.execute(
        "SELECT dt, currency, status, decline_reason, payment_count, amount_cents FROM report_status_daily WHERE merchant_id = %s",
        [merchant],
    ).fetchall()
    return {r[:4]: (r[4], r[5]) for r in rows}


def _expected_status(rows: list[dict]) -> dict[tuple, tuple[int, int]]:
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        reason = (r["decline_reason"] or "unknown") if r["status"] == "DECLINED" else ""
        key = (r["dt"], r["currency"], r["status"], reason)
        out[key][0] += 1
        out[key][1] += r["amount_cents"]
    return {k: tuple(v) for k, v in out.items()}


def _latency_rows(conn, method: str) -> dict[tuple, list[int]]:
    hist = conn.execute(
        "SELECT dt, bucket_lo, bucket_width, payment_count, sum_ms, min_ms, max_ms FROM report_latency_daily WHERE payment_method = %s",
        [method],
    ).fetchall()
    return {(h[0], h[1], h[2]): list(h[3:]) for h in hist}


def _expected_latency(rows: list[dict]) -> dict[tuple, list[int]]:
    expected: dict[tuple, list[int]] = {}
    for r in rows:
        v = r["authorized_to_complete_ms"]
        if v is None:
            continue
        lo, w = latency_bucket(v)
        e = expected.setdefault((r["dt"], lo, w), [0, 0, v, v])
        e[0] += 1
        e[1] += v
        e[2] = min(e[2], v)
        e[3] = max(e[3], v)
    return expected


@pytest.mark.integration
def test_aggregates_equal_an_independent_recomputation(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant, method = new_merchant(), f"t_{uuid.uuid4().hex[:12]}"
    d = far_day()
    rng = random.Random(11)
    rows = []
    for i in range(400):
        status = rng.choice(["APPROVED", "APPROVED", "DECLINED", "PENDING", "REFUNDED", "CHARGEBACK", "FAILED", "CANCELLED"])
        reason = rng.choice([None, "", "do_not_honor", "expired_card"]) if status == "DECLINED" else None
        latency = rng.choice([None, rng.randrange(0, 20_000)])
        rows.append(
            payment(
                merchant, currency=rng.choice(["EUR", "USD", "JPY"]), status=status, amount_cents=rng.randrange(0, 10**7),
                created_at=at(d + dt.timedelta(days=i % 3), i % 24), decline_reason=reason, payment_method=method, latency_ms=latency,
            )
        )
    payments(rows)
    assert _status_rows(pg_admin, merchant) == _expected_status(rows)

    assert _latency_rows(pg_admin, method) == _expected_latency(rows)


@pytest.mark.integration
def test_refresh_recomputes_only_the_given_dts(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    d1 = far_day()
    d2 = d1 + dt.timedelta(days=1)
    rows = [
        payment(merchant, currency="EUR", status="APPROVED", amount_cents=100, created_at=at(d1, 1)),
        payment(merchant, currency="EUR", status="APPROVED", amount_cents=200, created_at=at(d2, 1)),
    ]
    payments(rows, refresh=False)
    assert _status_rows(pg_admin, merchant) == {}  # not refreshed yet: the reports cannot see them

    assert refresh_report_aggregates(pg_admin, [d1], include_marked=False) == [d1]
    assert _status_rows(pg_admin, merchant) == {(d1, "EUR", "APPROVED", ""): (1, 100)}

    # A change on d1 is not picked up by a refresh of d2: no recompute of anything else.
    pg_admin.execute("UPDATE curated_payments SET amount_cents = 150 WHERE merchant_id = %s AND dt = %s", [merchant, d1])
    refresh_report_aggregates(pg_admin, [d2], include_marked=False)
    assert _status_rows(pg_admin, merchant) == {(d1, "EUR", "APPROVED", ""): (1, 100), (d2, "EUR", "APPROVED", ""): (1, 200)}
    refresh_report_aggregates(pg_admin, [d1], include_marked=False)
    assert _status_rows(pg_admin, merchant)[(d1, "EUR", "APPROVED", "")] == (1, 150)


@pytest.mark.integration
def test_a_payment_leaving_a_dt_marks_it_for_the_next_refresh(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    d1 = far_day()
    d3 = d1 + dt.timedelta(days=2)
    pid = f"{merchant}_p"
    payments([payment(merchant, payment_id=pid, currency="USD", status="APPROVED", amount_cents=10, created_at=at(d1, 5))])
    payments([payment(merchant, payment_id=pid, currency="USD", status="CHARGEBACK", amount_cents=10, created_at=at(d3, 5))], refresh=False)
    marked = {r[0] for r in pg_admin.execute("SELECT dt FROM report_aggregate_dirty_dts").fetchall()}
    assert {d1, d3} <= marked  # the dt it left and the dt it joined (migration 0005)
    refreshed = refresh_report_aggregates(pg_admin, [d3])
    assert d1 in refreshed and d3 in refreshed
    assert _status_rows(pg_admin, merchant) == {(d3, "USD", "CHARGEBACK", ""): (1, 10)}


@pytest.mark.integration
def test_deleted_rows_mark_their_dts(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    d = far_day()
    payments([payment(merchant, currency="USD", status="APPROVED", amount_cents=10, created_at=at(d, 5))])
    pg_admin.execute("DELETE FROM curated_payments WHERE merchant_id = %s", [merchant])
    assert d in refresh_report_aggregates(pg_admin, [])
    assert _status_rows(pg_admin, merchant) == {}


@pytest.mark.integration
def test_concurrent_refreshes_of_the_same_dts_serialize(pg_settings, pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    days = [far_day() for _ in range(3)]
    rows = [payment(merchant, currency="EUR", status="APPROVED", amount_cents=i, created_at=at(d, i % 24)) for i, d in enumerate(days * 20)]
    payments(rows, refresh=False)
    errors: list[BaseException] = []

    def refresh(order: list[dt.date]) -> None:
        try:
            with pg_connect.connect("pipeline", autocommit=True) as conn:
                for _ in range(5):
                    refresh_report_aggregates(conn, order, include_marked=False)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(o,)) for o in (days, days[::-1], days[1:] + days[:1], days)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    got = _status_rows(pg_admin, merchant)
    assert {k[0]: v[0] for k, v in got.items()} == Counter(r["dt"] for r in rows)


# --- per-hour refresh (migration 0009) --------------------------------------------------------

def _merchant_rows(conn, merchant: str) -> list[dict]:
    """The merchant's rows as Postgres holds them now (what an independent recompute reads)."""
    cur = conn.execute(
        "SELECT dt, currency, status, decline_reason, amount_cents, authorized_to_complete_ms FROM curated_payments WHERE merchant_id = %s",
        [merchant],
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


@pytest.mark.integration
def test_marks_name_the_hours_a_change_touched(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    merchant = new_merchant()
    d = far_day()
    pid = f"{merchant}_p"
    payments([payment(merchant, payment_id=pid, currency="USD", status="PENDING", amount_cents=10, created_at=at(d, 3))])
    # The payment's newer record is from hour 7: it leaves hour 3 of d and joins hour 7.
    payments([payment(merchant, payment_id=pid, currency="USD", status="APPROVED", amount_cents=10, created_at=at(d, 7))], refresh=False)
    marked = set(pg_admin.execute("SELECT dt, hour FROM report_aggregate_dirty_dts WHERE dt = %s", [d]).fetchall())
    assert marked == {(d, 3), (d, 7)}
    assert refresh_report_aggregates(pg_admin, include_marked=False, hours=[(d, 7)]) == [d]
    # Both marks went with the refresh, hour 3 included: the payment no longer counts there.
    assert pg_admin.execute("SELECT count(*) FROM report_aggregate_dirty_dts WHERE dt = %s", [d]).fetchone()[0] == 0
    assert _status_rows(pg_admin, merchant) == {(d, "USD", "APPROVED", ""): (1, 10)}
    assert pg_admin.execute("SELECT hour, payment_count FROM report_status_hourly WHERE merchant_id = %s", [merchant]).fetchall() == [(7, 1)]


@pytest.mark.integration
def test_refreshing_changed_hours_equals_an_independent_recomputation(pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    """Loads that touch a few hours of a day (new payments, updates, payments moving to another
    hour or day), each followed by a refresh of only the hours the load wrote: the daily
    aggregates equal a recompute of every row Postgres holds."""
    merchant, method = new_merchant(), f"t_{uuid.uuid4().hex[:12]}"
    d = far_day()
    rng = random.Random(14)
    live: dict[str, dict] = {}

    def row(pid: str, day: dt.date, hour: int) -> dict:
        status = rng.choice(["APPROVED", "DECLINED", "PENDING", "REFUNDED", "CHARGEBACK"])
        return payment(merchant, payment_id=pid, currency=rng.choice(["EUR", "USD"]), status=status,
                       amount_cents=rng.randrange(0, 10**6), created_at=at(day, hour) + dt.timedelta(seconds=rng.randrange(3600)),
                       decline_reason=rng.choice([None, "do_not_honor"]) if status == "DECLINED" else None,
                       payment_method=method, latency_ms=rng.choice([None, rng.randrange(0, 5_000)]))

    first = [row(f"{merchant}_{i}", d, i % 24) for i in range(240)]
    payments(first)  # whole-dt refresh, as the fixture does
    live.update({r["payment_id"]: r for r in first})
    for load in range(4):
        hour = 2 + 5 * load
        batch = [row(f"{merchant}_n{load}_{i}", d, hour) for i in range(30)]  # new payments of the hour
        for pid in rng.sample(sorted(live), 10):  # newer records of older payments, same or next day
            old = live[pid]
            later = old["created_at"] + dt.timedelta(hours=rng.choice([0, 1, 5, 26]), seconds=1)
            batch.append(row(pid, later.date(), later.hour))
        payments(batch, refresh=False)
        live.update({r["payment_id"]: r for r in batch})
        # Only the hours the load wrote; the hours the moved payments left come from the marks.
        refresh_report_aggregates(pg_admin, hours={(r["dt"], r["hour"]) for r in batch})
        now = _merchant_rows(pg_admin, merchant)
        assert len(now) == len(live)
        assert _status_rows(pg_admin, merchant) == _expected_status(now)
        assert _latency_rows(pg_admin, method) == _expected_latency(now)
