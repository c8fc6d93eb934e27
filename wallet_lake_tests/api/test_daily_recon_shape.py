"""Shaping of daily-recon rows, independent of the engine that produced them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from api.reports.daily_recon import shape

DAY = dt.date(2026, 11, 24)
AS_OF = dt.datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=dt.timezone.utc)


def test_empty_day_is_empty_lists() -> None:
    out = shape(DAY, "m1", [], as_of=AS_OF)
    assert out.model_dump(mode="json") == {
        "date": "2026-11-24", "merchant_id": "m1", "as_of": "2026-11-25T01:02:03.456789Z", "by_status": [], "totals": [],
    }


def test_sorted_by_currency_then_status_and_totals_per_currency() -> None:
    rows = [
        {"currency": "USD", "status": "REFUNDED", "payment_count": 1, "amount_cents": Decimal(300)},
        {"currency": "EUR", "status": "PENDING", "payment_count": 2, "amount_cents": Decimal(150)},
        {"currency": "USD", "status": "APPROVED", "payment_count": 3, "amount_cents": Decimal("9007199254740993")},
        {"currency": "EUR", "status": "APPROVED", "payment_count": 1, "amount_cents": 4200},
    ]
    out = shape(DAY, "m1", rows, as_of=AS_OF).model_dump()
    assert [(line["currency"], line["status"]) for line in out["by_status"]] == [
        ("EUR", "APPROVED"),
        ("EUR", "PENDING"),
        ("USD", "APPROVED"),
        ("USD", "REFUNDED"),
    ]
    # Beyond 2**53: exact integer arithmetic, no float on the way.
    assert out["totals"] == [
        {"currency": "EUR", "count": 3, "amount_cents": 4350},
        {"currency": "USD", "count": 4, "amount_cents": 9007199254741293},
    ]
    assert all(type(line["amount_cents"]) is int for line in out["by_status"])
