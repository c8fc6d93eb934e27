"""Bad values never break a day (issue 11, section 5): the contract admits an amount_cents up to
int64 max, and a dt holding such amounts (several in one status line, so every bigint sum would
overflow) still answers every report with 200 and the exact sums, from Postgres (aggregates
refreshed as the Postgres asset does) and from the lake (source=lake, DuckDB over Parquet).
Expected values are summed here in Python, from the rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import pytest

from .conftest import payment
from .test_lake import far_day, write_lake

UTC = dt.timezone.utc
MAX_INT64 = 2**63 - 1

pytestmark = pytest.mark.integration


def _rows(merchants: list[str], method: str, day: dt.date) -> list[dict]:
    at = dt.datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    m1, m2 = merchants
    spec = [  # (merchant, currency, status, amount, decline_reason)
        (m1, "EUR", "APPROVED", MAX_INT64, None),
        (m1, "EUR", "APPROVED", MAX_INT64, None),
        (m1, "EUR", "APPROVED", 1_234, None),
        (m1, "EUR", "REFUNDED", MAX_INT64, None),
        (m1, "EUR", "REFUNDED", 99, None),
        (m1, "EUR", "CHARGEBACK", MAX_INT64, None),
        (m1, "EUR", "DECLINED", MAX_INT64, "do_not_honor"),
        (m1, "EUR", "DECLINED", MAX_INT64, "do_not_honor"),
        (m1, "EUR", "DECLINED", 5, None),
        (m1, "USD", "APPROVED", 700, None),
        (m1, "USD", "PENDING", 55, None),
        (m2, "EUR", "APPROVED", MAX_INT64, None),
        (m2, "JPY", "DECLINED", 3, "expired_card"),
    ]
    return [
        payment(m, currency=cur, status=status, amount_cents=amount, created_at=at + dt.timedelta(minutes=i),
                decline_reason=reason, payment_method=method, latency_ms=100 + i)
        for i, (m, cur, status, amount, reason) in enumerate(spec)
    ]


def expected_daily_recon(rows: list[dict], merchant: str | None) -> dict:
    by_status: dict = defaultdict(lambda: [0, 0])
    totals: dict = defaultdict(lambda: [0, 0])
    for r in rows:
        if merchant is None or r["merchant_id"] == merchant:
            for acc in (by_status[(r["currency"], r["status"])], totals[r["currency"]]):
                acc[0] += 1
                acc[1] += r["amount_cents"]
    return {
        "by_status": [{"currency": c, "status": s, "count": n, "amount_cents": a} for (c, s), (n, a) in sorted(by_status.items())],
        "totals": [{"currency": c, "count": n, "amount_cents": a} for c, (n, a) in sorted(totals.items())],
    }


def expected_refunds(rows: list[dict], merchant: str | None) -> list[dict]:
    per: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        if (merchant is None or r["merchant_id"] == merchant) and r["status"] in ("APPROVED", "REFUNDED", "CHARGEBACK"):
            acc = per[r["currency"]][r["status"]]
            acc[0] += 1
            acc[1] += r["amount_cents"]
    out = []
    for c in sorted(per):
        s = per[c]
        out.append({
            "currency": c,
            "captured_count": sum(n for n, _ in s.values()), "captured_amount_cents": sum(a for _, a in s.values()),
            "refunded_count": s["REFUNDED"][0], "refunded_amount_cents": s["REFUNDED"][1],
            "chargeback_count": s["CHARGEBACK"][0], "chargeback_amount_cents": s["CHARGEBACK"][1],
        })
    return out


def expected_declines(rows: list[dict], merchant: str | None) -> dict:
    declined = [r for r in rows if (merchant is None or r["merchant_id"] == merchant) and r["status"] == "DECLINED"]
    amounts: dict = defaultdict(int)
    reasons: dict = defaultdict(lambda: [0, defaultdict(int)])
    for r in declined:
        amounts[r["currency"]] += r["amount_cents"]
        reason = r["decline_reason"] or "unknown"
        reasons[reason][0] += 1
        reasons[reason][1][r["currency"]] += r["amount_cents"]
    return {
        "declined_amounts": [{"currency": c, "amount_cents": a} for c, a in sorted(amounts.items())],
        "by_reason": sorted(
            ({"decline_reason": k, "count": n, "amounts": [{"currency": c, "amount_cents": a} for c, a in sorted(per.items())]}
             for k, (n, per) in reasons.items()),
            key=lambda x: (-x["count"], x["decline_reason"]),
        ),
    }


def test_int64_max_amounts_sum_exactly_in_every_report_from_postgres_and_the_lake(live_client, payments, new_merchant) -> None:
    from wallet_lake.lake.store import open_lake_from_env

    merchants = [new_merchant(), new_merchant()]
    method = f"t_{uuid.uuid4().hex[:12]}"
    day = far_day()
    rows = _rows(merchants, method, day)
    # Sums far beyond int64 are what this is about.
    assert sum(r["amount_cents"] for r in rows if r["merchant_id"] == merchants[0] and r["status"] == "DECLINED") > MAX_INT64
    payments(rows)  # upsert + refresh of the dt's aggregates, as the Postgres asset does
    store = open_lake_from_env()
    keys = write_lake(store, [rows], uuid.uuid4().hex[:8])
    try:
        d = day.isoformat()
        for source in ("postgres", "lake"):
            for merchant in (merchants[0], None):  # one merchant, and every merchant (a far day: only ours)
                scope = {"merchant": merchant} if merchant else {}
                recon = live_client.get("/reports/daily-recon", params={"date": d, "source": source, **scope})
                assert recon.status_code == 200, (source, recon.text)
                body = recon.json()
                assert {k: body[k] for k in ("by_status", "totals")} == expected_daily_recon(rows, merchant), source

                refunds = live_client.get("/reports/refund-rate", params={"from": d, "to": d, "source": source, **scope})
                assert refunds.status_code == 200, (source, refunds.text)
                got = [{k: c[k] for k in ("currency", "captured_count", "captured_amount_cents", "refunded_count",
                                          "refunded_amount_cents", "chargeback_count", "chargeback_amount_cents")}
                       for c in refunds.json()["by_currency"]]
                assert got == expected_refunds(rows, merchant), source

                declines = live_client.get("/reports/declines", params={"from": d, "to": d, "source": source, **scope})
                assert declines.status_code == 200, (source, declines.text)
                body = declines.json()
                assert {k: body[k] for k in ("declined_amounts", "by_reason")} == expected_declines(rows, merchant), source

            latency = live_client.get("/reports/latency", params={"from": d, "to": d, "payment_method": method, "source": source})
            assert latency.status_code == 200, (source, latency.text)
            assert [m["count"] for m in latency.json()["methods"]] == [len(rows)]
        # The JSON carries the exact integer, not a float's approximation of it.
        raw = live_client.get("/reports/daily-recon", params={"date": d, "merchant": merchants[0]}).text
        assert f"\"amount_cents\":{2 * MAX_INT64 + 1_234}" in raw  # m1, EUR, APPROVED
    finally:
        store.delete(keys)
