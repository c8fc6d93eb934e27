"""The four reports against the real Postgres: hand-built rows, expected numbers worked out by
hand (or by plain Python over the same rows), one rule per test.

Rows are written as the sink writes them (upsert on payment_id, the no-regression trigger
deciding) and the aggregates of their dts refreshed as the Postgres asset does. Merchants are
unique per test; reports over every merchant (latency, merchant omitted) use a random day in a
far year and unique payment methods, so other tests' rows never mix in."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from fastapi.testclient import TestClient

from .conftest import payment, split_as_of

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
DAY = dt.date(2026, 11, 24)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def far_day() -> dt.date:
    """A day no other test or pipeline run uses (years 2031-2099)."""
    return dt.date(2031, 1, 1) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(68 * 365))


def new_method() -> str:
    return f"t_{uuid.uuid4().hex[:20]}"


# --- refund arriving days later -----------------------------------------------------------------


def test_refund_arriving_days_later_moves_the_payment_to_the_refund_dt(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    paid_on, refunded_on = DAY, DAY + dt.timedelta(days=3)
    pid = f"{merchant}_p1"
    payments([payment(merchant, payment_id=pid, currency="EUR", status="APPROVED", amount_cents=5000, created_at=at(paid_on, 10))])
    before = live_client.get("/reports/daily-recon", params={"date": paid_on.isoformat(), "merchant": merchant}).json()
    assert before["by_status"] == [{"currency": "EUR", "status": "APPROVED", "count": 1, "amount_cents": 5000}]

    # The refund is a new record of the same payment, created three days later: the sink upserts
    # it, and the asset refreshes the dts of *its* hour only (the refund's dt).
    payments([payment(merchant, payment_id=pid, currency="EUR", status="REFUNDED", amount_cents=5000, created_at=at(refunded_on, 9))])

    old_day = live_client.get("/reports/daily-recon", params={"date": paid_on.isoformat(), "merchant": merchant}).json()
    assert old_day["by_status"] == [] and old_day["totals"] == []  # the payment left its first dt
    new_day = live_client.get("/reports/daily-recon", params={"date": refunded_on.isoformat(), "merchant": merchant}).json()
    assert new_day["by_status"] == [{"currency": "EUR", "status": "REFUNDED", "count": 1, "amount_cents": 5000}]

    whole = live_client.get(
        "/reports/refund-rate", params={"from": paid_on.isoformat(), "to": refunded_on.isoformat(), "merchant": merchant}
    ).json()
    assert (whole["captured_count"], whole["refunded_count"], whole["refund_rate"]) == (1, 1, 1.0)
    # The range of the original payment alone no longer holds it: nothing captured, null rates.
    first = live_client.get(
        "/reports/refund-rate", params={"from": paid_on.isoformat(), "to": paid_on.isoformat(), "merchant": merchant}
    ).json()
    assert (first["captured_count"], first["refund_rate"], first["chargeback_rate"], first["by_currency"]) == (0, None, None, [])


def test_replayed_older_state_does_not_regress_the_report(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    pid = f"{merchant}_p1"
    approved = payment(merchant, payment_id=pid, currency="USD", status="APPROVED", amount_cents=700, created_at=at(DAY, 8))
    refunded = payment(merchant, payment_id=pid, currency="USD", status="REFUNDED", amount_cents=700, created_at=at(DAY + dt.timedelta(days=1), 8))
    payments([approved])
    payments([refunded])
    payments([approved])  # a replay of the older record: the trigger keeps REFUNDED
    body = live_client.get(
        "/reports/refund-rate", params={"from": DAY.isoformat(), "to": (DAY + dt.timedelta(days=1)).isoformat(), "merchant": merchant}
    ).json()
    assert (body["captured_count"], body["refunded_count"]) == (1, 1)
    assert live_client.get("/reports/daily-recon", params={"date": DAY.isoformat(), "merchant": merchant}).json()["by_status"] == []


# --- refund-rate ------------------------------------------------------------------------------


def test_refund_rate_per_currency_is_never_summed_across_currencies(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    d = DAY
    rows = [
        # EUR: captured 1000 + 3000 + 6000 = 10000, refunded 3000, chargeback 6000.
        payment(merchant, currency="EUR", status="APPROVED", amount_cents=1000, created_at=at(d, 1)),
        payment(merchant, currency="EUR", status="REFUNDED", amount_cents=3000, created_at=at(d, 2)),
        payment(merchant, currency="EUR", status="CHARGEBACK", amount_cents=6000, created_at=at(d, 3)),
        # JPY: captured 100000 + 50000, refunded 50000.
        payment(merchant, currency="JPY", status="APPROVED", amount_cents=100_000, created_at=at(d, 4)),
        payment(merchant, currency="JPY", status="REFUNDED", amount_cents=50_000, created_at=at(d + dt.timedelta(days=1), 4)),
        # Not captured: excluded from every count and amount.
        payment(merchant, currency="EUR", status="DECLINED", amount_cents=9_999, created_at=at(d, 5)),
        payment(merchant, currency="EUR", status="PENDING", amount_cents=9_999, created_at=at(d, 6)),
        payment(merchant, currency="GBP", status="FAILED", amount_cents=9_999, created_at=at(d, 7)),
        payment(merchant, currency="GBP", status="CANCELLED", amount_cents=9_999, created_at=at(d, 8)),
        # Outside the range.
        payment(merchant, currency="EUR", status="REFUNDED", amount_cents=1, created_at=at(d + dt.timedelta(days=2), 0)),
    ]
    payments(rows)
    body = live_client.get(
        "/reports/refund-rate", params={"from": d.isoformat(), "to": (d + dt.timedelta(days=1)).isoformat(), "merchant": merchant}
    ).json()
    assert split_as_of(body)[1] == {
        "from": d.isoformat(),
        "to": (d + dt.timedelta(days=1)).isoformat(),
        "merchant_id": merchant,
        "captured_count": 5,
        "refunded_count": 2,
        "chargeback_count": 1,
        "refund_rate": 2 / 5,
        "chargeback_rate": 1 / 5,
        "by_currency": [
            {
                "currency": "EUR", "captured_count": 3, "captured_amount_cents": 10_000,
                "refunded_count": 1, "refunded_amount_cents": 3000, "chargeback_count": 1, "chargeback_amount_cents": 6000,
                "refund_amount_rate": 0.3, "chargeback_amount_rate": 0.6,
            },
            {
                "currency": "JPY", "captured_count": 2, "captured_amount_cents": 150_000,
                "refunded_count": 1, "refunded_amount_cents": 50_000, "chargeback_count": 0, "chargeback_amount_cents": 0,
                "refund_amount_rate": 50_000 / 150_000, "chargeback_amount_rate": 0.0,
            },
        ],
    }


def test_nothing_captured_gives_null_rates_not_an_error(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    payments(
        [
            payment(merchant, currency="USD", status="DECLINED", amount_cents=100, created_at=at(DAY, 1)),
            payment(merchant, currency="USD", status="PENDING", amount_cents=100, created_at=at(DAY, 2)),
        ]
    )
    r = live_client.get("/reports/refund-rate", params={"from": DAY.isoformat(), "to": DAY.isoformat(), "merchant": merchant})
    assert r.status_code == 200
    body = r.json()
    assert (body["captured_count"], body["refunded_count"], body["chargeback_count"]) == (0, 0, 0)
    assert body["refund_rate"] is None and body["chargeback_rate"] is None and body["by_currency"] == []


def test_captured_amount_zero_gives_null_amount_rate(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    payments([payment(merchant, currency="USD", status="APPROVED", amount_cents=0, created_at=at(DAY, 1))])
    body = live_client.get("/reports/refund-rate", params={"from": DAY.isoformat(), "to": DAY.isoformat(), "merchant": merchant}).json()
    assert body["refund_rate"] == 0.0
    assert body["by_currency"][0]["refund_amount_rate"] is None


# --- declines ---------------------------------------------------------------------------------


def test_declines_per_reason_with_unknown_for_missing_reasons(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    d = DAY
    rows = [
        payment(merchant, currency="EUR", status="DECLINED", amount_cents=100, created_at=at(d, 1), decline_reason="do_not_honor"),
        payment(merchant, currency="USD", status="DECLINED", amount_cents=200, created_at=at(d, 2), decline_reason="do_not_honor"),
        payment(merchant, currency="EUR", status="DECLINED", amount_cents=300, created_at=at(d, 3), decline_reason=None),
        payment(merchant, currency="EUR", status="DECLINED", amount_cents=400, created_at=at(d, 4), decline_reason=""),
        payment(merchant, currency="EUR", status="DECLINED", amount_cents=500, created_at=at(d, 5), decline_reason="suspected_fraud"),
        # Not declined: in the denominator only, whatever their decline_reason says.
        payment(merchant, currency="EUR", status="APPROVED", amount_cents=1000, created_at=at(d, 6)),
        payment(merchant, currency="EUR", status="FAILED", amount_cents=1000, created_at=at(d, 7), decline_reason="stray"),
        payment(merchant, currency="JPY", status="REFUNDED", amount_cents=1000, created_at=at(d, 8)),
    ]
    payments(rows)
    body = live_client.get("/reports/declines", params={"from": d.isoformat(), "to": d.isoformat(), "merchant": merchant}).json()
    assert split_as_of(body)[1] == {
        "from": d.isoformat(),
        "to": d.isoformat(),
        "merchant_id": merchant,
        "payment_count": 8,
        "declined_count": 5,
        "decline_rate": 5 / 8,
        "declined_amounts": [{"currency": "EUR", "amount_cents": 1300}, {"currency": "USD", "amount_cents": 200}],
        "by_reason": [
            {"decline_reason": "do_not_honor", "count": 2,
             "amounts": [{"currency": "EUR", "amount_cents": 100}, {"currency": "USD", "amount_cents": 200}]},
            {"decline_reason": "unknown", "count": 2, "amounts": [{"currency": "EUR", "amount_cents": 700}]},
            {"decline_reason": "suspected_fraud", "count": 1, "amounts": [{"currency": "EUR", "amount_cents": 500}]},
        ],
        "by_currency": [
            {"currency": "EUR", "payment_count": 6, "amount_cents": 3300, "declined_count": 4,
             "declined_amount_cents": 1300, "decline_rate": 4 / 6, "decline_amount_rate": 1300 / 3300},
            {"currency": "JPY", "payment_count": 1, "amount_cents": 1000, "declined_count": 0,
             "declined_amount_cents": 0, "decline_rate": 0.0, "decline_amount_rate": 0.0},
            {"currency": "USD", "payment_count": 1, "amount_cents": 200, "declined_count": 1,
             "declined_amount_cents": 200, "decline_rate": 1.0, "decline_amount_rate": 1.0},
        ],
    }


def test_empty_range_is_zero_counts_not_404(live_client: TestClient, new_merchant) -> None:
    merchant = new_merchant()
    params = {"from": "2026-01-01", "to": "2026-12-31", "merchant": merchant}
    declines = live_client.get("/reports/declines", params=params)
    assert declines.status_code == 200
    assert split_as_of(declines.json())[1] == {
        "from": "2026-01-01", "to": "2026-12-31", "merchant_id": merchant, "payment_count": 0,
        "declined_count": 0, "decline_rate": None, "declined_amounts": [], "by_reason": [], "by_currency": [],
    }
    refunds = live_client.get("/reports/refund-rate", params=params)
    assert refunds.status_code == 200 and refunds.json()["captured_count"] == 0


# --- every merchant ---------------------------------------------------------------------------


def test_merchant_omitted_covers_every_merchant(live_client: TestClient, payments, new_merchant) -> None:
    d = far_day()
    a, b = new_merchant(), new_merchant()
    payments(
        [
            payment(a, currency="EUR", status="APPROVED", amount_cents=100, created_at=at(d, 1)),
            payment(b, currency="EUR", status="APPROVED", amount_cents=250, created_at=at(d, 2)),
            payment(b, currency="USD", status="DECLINED", amount_cents=50, created_at=at(d, 3), decline_reason=None),
        ]
    )
    recon = live_client.get("/reports/daily-recon", params={"date": d.isoformat()}).json()
    assert recon["merchant_id"] is None
    assert recon["totals"] == [{"currency": "EUR", "count": 2, "amount_cents": 350}, {"currency": "USD", "count": 1, "amount_cents": 50}]
    declines = live_client.get("/reports/declines", params={"from": d.isoformat(), "to": d.isoformat()}).json()
    assert (declines["payment_count"], declines["declined_count"]) == (3, 1)
    assert declines["by_reason"] == [{"decline_reason": "unknown", "count": 1, "amounts": [{"currency": "USD", "amount_cents": 50}]}]
    refunds = live_client.get("/reports/refund-rate", params={"from": d.isoformat(), "to": d.isoformat()}).json()
    assert (refunds["captured_count"], refunds["refund_rate"]) == (2, 0.0)


# --- latency ----------------------------------------------------------------------------------


def percentile_cont(values: list[float], p: float) -> float:
    """Independent reference: linear interpolation between the ranks floor/ceil of (n-1)p."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo = int(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def test_latency_skips_null_latencies_and_reports_exact_stats_below_128ms(live_client: TestClient, payments, new_merchant) -> None:
    merchant, method, other = new_merchant(), new_method(), new_method()
    d = far_day()
    latencies = [5, 17, 17, 40, 90, 127]
    rows = [payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, i), payment_method=method, latency_ms=v)
            for i, v in enumerate(latencies)]
    # Null latencies: not counted anywhere.
    rows += [payment(merchant, currency="EUR", status="DECLINED", amount_cents=1, created_at=at(d, 10 + i), payment_method=method) for i in range(3)]
    rows += [payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 20), payment_method=other, latency_ms=3)]
    payments(rows)

    body = live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat(), "payment_method": method}).json()
    assert body["payment_method"] == method
    assert body["methods"] == [
        {
            "payment_method": method, "count": 6, "mean_ms": round(sum(latencies) / 6, 3),
            "p50_ms": percentile_cont(latencies, 0.5), "p95_ms": round(percentile_cont(latencies, 0.95), 3),
            "p99_ms": round(percentile_cont(latencies, 0.99), 3), "max_ms": 127,
        }
    ]
    both = live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat()}).json()
    assert {m["payment_method"]: m["count"] for m in both["methods"]} == {method: 6, other: 1}


def test_latency_of_a_method_without_data_is_count_zero(live_client: TestClient) -> None:
    d, method = far_day(), new_method()
    body = live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat(), "payment_method": method}).json()
    assert body["methods"] == [
        {"payment_method": method, "count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ]


def test_latency_without_payment_method_is_unknown(live_client: TestClient, payments, new_merchant) -> None:
    d = far_day()
    merchant = new_merchant()
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 1), payment_method=None, latency_ms=250)])
    body = live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat(), "payment_method": "unknown"}).json()
    assert [(m["payment_method"], m["count"], m["max_ms"]) for m in body["methods"]] == [("unknown", 1, 250)]


def test_latency_percentiles_within_the_documented_bound_of_exact_ones(live_client: TestClient, payments, new_merchant, pg_admin) -> None:
    """Thousands of lognormal latencies over several days: the API's percentiles against
    Postgres' own percentile_cont over the raw rows, within the documented bound."""
    from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR

    merchant, method = new_merchant(), new_method()
    start = far_day()
    rng = random.Random(7)
    rows, values = [], []
    for i in range(3000):
        v = int(min(max(rng.lognormvariate(6.8, 0.9), 1), 120_000))
        values.append(v)
        created = at(start + dt.timedelta(days=i % 5), (i // 5) % 24, (i // 120) % 60)
        rows.append(payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=created, payment_method=method, latency_ms=v))
    payments(rows)
    end = start + dt.timedelta(days=4)
    body = live_client.get("/reports/latency", params={"from": start.isoformat(), "to": end.isoformat(), "payment_method": method}).json()
    got = body["methods"][0]
    exact = pg_admin.execute(
        "SELECT count(*), avg(authorized_to_complete_ms), max(authorized_to_complete_ms),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY authorized_to_complete_ms),"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY authorized_to_complete_ms),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY authorized_to_complete_ms)"
        " FROM curated_payments WHERE merchant_id = %s AND authorized_to_complete_ms IS NOT NULL",
        [merchant],
    ).fetchone()
    assert got["count"] == exact[0] == 3000
    assert got["mean_ms"] == pytest.approx(float(exact[1]), abs=0.001)
    assert got["max_ms"] == exact[2] == max(values)
    xs = sorted(values)
    for label, p, pg_value in (("p50_ms", 0.5, exact[3]), ("p95_ms", 0.95, exact[4]), ("p99_ms", 0.99, exact[5])):
        h = (len(xs) - 1) * p
        upper = xs[min(int(h) + 1, len(xs) - 1)]  # the larger of the two order statistics
        assert abs(got[label] - pg_value) <= LATENCY_RELATIVE_ERROR * upper + 0.001, (label, got[label], pg_value)
        assert pg_value == pytest.approx(percentile_cont(values, p))


def test_latency_ranges_inside_and_across_months(live_client: TestClient, payments, new_merchant) -> None:
    """Ranges that start mid-month (data before them in the month must not count), end mid-month
    (data after them must not count), or span two or three months: exact count, mean and max,
    percentiles within the bound, against plain Python over the same values."""
    from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR

    merchant, method = new_merchant(), new_method()
    first = far_day().replace(day=1)
    rng = random.Random(3)
    by_day: dict[dt.date, list[int]] = {}
    rows = []
    for offset in range(0, 80):
        if offset % 9 == 4:
            continue  # some days without data, some of them range ends
        day = first + dt.timedelta(days=offset)
        for i in range(12):
            v = int(rng.lognormvariate(7, 1.0)) if i else rng.randrange(0, 128)
            by_day.setdefault(day, []).append(v)
            rows.append(payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(day, i),
                                payment_method=method, latency_ms=v))
    payments(rows)
    month2 = (first + dt.timedelta(days=32)).replace(day=1)
    cases = [
        (first + dt.timedelta(days=10), first + dt.timedelta(days=20)),
        (first, first + dt.timedelta(days=4)),  # ends on a day without data
        (first + dt.timedelta(days=13), month2 - dt.timedelta(days=1)),
        (first + dt.timedelta(days=13), month2 + dt.timedelta(days=3)),
        (month2 - dt.timedelta(days=2), month2 + dt.timedelta(days=40)),
        (first + dt.timedelta(days=4), first + dt.timedelta(days=4)),  # one day without data
        (first - dt.timedelta(days=3), first + dt.timedelta(days=79)),
    ]
    for start, end in cases:
        values = sorted(v for d, vs in by_day.items() if start <= d <= end for v in vs)
        body = live_client.get("/reports/latency", params={"from": start.isoformat(), "to": end.isoformat(), "payment_method": method}).json()
        got = body["methods"][0]
        assert got["count"] == len(values), (start, end)
        if not values:
            assert got["p50_ms"] is None
            continue
        assert got["mean_ms"] == round(sum(values) / len(values), 3) and got["max_ms"] == values[-1]
        for label, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            h = (len(values) - 1) * p
            upper = values[min(int(h) + 1, len(values) - 1)]
            assert abs(got[label] - percentile_cont(values, p)) <= LATENCY_RELATIVE_ERROR * upper + 0.001, (start, end, label)


def test_latency_of_a_range_whose_first_month_has_no_data_after_from(live_client: TestClient, payments, new_merchant) -> None:
    """From's month adds and subtracts the same day (its last with data, before `from`): the two
    terms cancel, and only the next month's values count."""
    merchant, method = new_merchant(), new_method()
    month1 = far_day().replace(day=1)
    month2 = (month1 + dt.timedelta(days=32)).replace(day=1)
    early, later = [6, 7, 50], [5, 6, 7, 100]  # shared buckets: a lone subtracted term would take 6 and 7 away
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(month1 + dt.timedelta(days=1), i),
                      payment_method=method, latency_ms=v) for i, v in enumerate(early)]
             + [payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(month2 + dt.timedelta(days=2), i),
                        payment_method=method, latency_ms=v) for i, v in enumerate(later)])
    params = {"from": (month1 + dt.timedelta(days=19)).isoformat(), "to": (month2 + dt.timedelta(days=9)).isoformat(), "payment_method": method}
    got = live_client.get("/reports/latency", params=params).json()["methods"]
    assert got == [{"payment_method": method, "count": 4, "mean_ms": 29.5, "p50_ms": 6.5, "p95_ms": 86.05, "p99_ms": 97.21, "max_ms": 100}]
