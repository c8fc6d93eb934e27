"""refund-rate: how much of what was captured came back as refunds and chargebacks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from api.reports.common import AMOUNT_DOC, CURRENCY_DOC, RangeAnswer, rate
from api.reports.source import Fetch
from api.reports.sql import REFUND_RATE, REFUND_RATE_ALL, ReportQuery
from wallet_lake.contracts.reports import CAPTURED_STATUSES, CHARGEBACK, REFUNDED

_CAPTURED = ", ".join(CAPTURED_STATUSES)
DESCRIPTION = (
    f"Over the payments whose surviving record's dt is in [`from`, `to`] (inclusive), for one merchant (or "
    f"every merchant when `merchant` is omitted, for all-merchant keys): captured = payments whose current "
    f"status is one of {_CAPTURED}. `refund_rate` = {REFUNDED} count / captured count and `chargeback_rate` = "
    f"{CHARGEBACK} count / captured count; per currency, `refund_amount_rate` = refunded amount / captured amount "
    f"and `chargeback_amount_rate` likewise (amounts are never summed across currencies). A rate is null, not an "
    f"error, when nothing was captured (its denominator is zero). An empty range answers zero counts."
)


class CurrencyRefunds(BaseModel):
    currency: str = Field(description=CURRENCY_DOC, examples=["EUR"])
    captured_count: int = Field(ge=0, description=f"Payments in this currency with status {_CAPTURED}.")
    captured_amount_cents: int = Field(ge=0, description=AMOUNT_DOC + " Captured payments.")
    refunded_count: int = Field(ge=0, description=f"Payments in this currency now {REFUNDED}.")
    refunded_amount_cents: int = Field(ge=0, description=f"{AMOUNT_DOC} {REFUNDED} payments.")
    chargeback_count: int = Field(ge=0, description=f"Payments in this currency now {CHARGEBACK}.")
    chargeback_amount_cents: int = Field(ge=0, description=f"{AMOUNT_DOC} {CHARGEBACK} payments.")
    refund_amount_rate: float | None = Field(description="refunded_amount_cents / captured_amount_cents; null when the latter is 0.")
    chargeback_amount_rate: float | None = Field(description="chargeback_amount_cents / captured_amount_cents; null when the latter is 0.")


class RefundRate(RangeAnswer):
    captured_count: int = Field(ge=0, description=f"Payments with status {_CAPTURED}, all currencies.")
    refunded_count: int = Field(ge=0, description=f"Payments now {REFUNDED}.")
    chargeback_count: int = Field(ge=0, description=f"Payments now {CHARGEBACK}.")
    refund_rate: float | None = Field(description="refunded_count / captured_count; null when nothing was captured.")
    chargeback_rate: float | None = Field(description="chargeback_count / captured_count; null when nothing was captured.")
    by_currency: list[CurrencyRefunds] = Field(description="Per currency with captured payments, sorted by currency.")


def shape(
    date_from: dt.date, date_to: dt.date, merchant_id: str | None, rows: Iterable[Mapping[str, Any]], *, as_of: dt.datetime
) -> RefundRate:
    """Built as plain data and validated once (api/reports/common.py says why)."""
    per: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        per.setdefault(r["currency"], {})[r["status"]] = (int(r["payment_count"]), int(r["amount_cents"]))
    currencies = []
    captured = refunded = chargebacks = 0
    for currency in sorted(per):
        by_status = per[currency]
        count = sum(c for c, _ in by_status.values())
        amount = sum(a for _, a in by_status.values())
        rc, ra = by_status.get(REFUNDED, (0, 0))
        cc, ca = by_status.get(CHARGEBACK, (0, 0))
        captured, refunded, chargebacks = captured + count, refunded + rc, chargebacks + cc
        currencies.append({
            "currency": currency, "captured_count": count, "captured_amount_cents": amount,
            "refunded_count": rc, "refunded_amount_cents": ra, "chargeback_count": cc, "chargeback_amount_cents": ca,
            "refund_amount_rate": rate(ra, amount), "chargeback_amount_rate": rate(ca, amount),
        })
    return RefundRate.model_validate({
        "date_from": date_from, "date_to": date_to, "merchant_id": merchant_id, "as_of": as_of,
        "captured_count": captured, "refunded_count": refunded, "chargeback_count": chargebacks,
        "refund_rate": rate(refunded, captured), "chargeback_rate": rate(chargebacks, captured),
        "by_currency": currencies,
    })


def query_for(date_from: dt.date, date_to: dt.date, merchant_id: str | None) -> tuple[ReportQuery, dict[str, Any]]:
    """The statement and parameters of the report (the benchmark times them bare)."""
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to}
    if merchant_id is None:
        return REFUND_RATE_ALL, params
    return REFUND_RATE, {**params, "merchant_id": merchant_id}


async def run(fetch: Fetch, *, date_from: dt.date, date_to: dt.date, merchant_id: str | None) -> RefundRate:
    query, params = query_for(date_from, date_to, merchant_id)
    as_of, rows = await fetch(query, params, first_dt=date_from, last_dt=date_to)
    return shape(date_from, date_to, merchant_id, rows, as_of=as_of)
