"""declines: why payments were declined, and how many of all payments were."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from api.reports.common import AMOUNT_DOC, CURRENCY_DOC, CurrencyAmount, RangeAnswer, rate
from api.reports.source import Fetch
from api.reports.sql import DECLINES, DECLINES_ALL, ReportQuery
from wallet_lake.contracts.reports import DECLINED, UNKNOWN

DESCRIPTION = (
    "Over the payments whose surviving record's dt is in [`from`, `to`] (inclusive), for one merchant (or every "
    f"merchant when `merchant` is omitted, for all-merchant keys): the payments whose current status is {DECLINED}, "
    f"per decline_reason (a missing or empty reason is reported as `{UNKNOWN}`), with their count and amounts per "
    "currency; their total; and `decline_rate` = declined count / count of all payments in the range (every "
    "status), null when the range holds no payment; and per currency the same by count and by amount "
    "(`by_currency`). Amounts are never summed across currencies. An empty range answers zero counts."
)


class ReasonLine(BaseModel):
    decline_reason: str = Field(description=f"The processor's decline reason; `{UNKNOWN}` when missing.")
    count: int = Field(ge=0, description="Declined payments with this reason.")
    amounts: list[CurrencyAmount] = Field(description="Their amounts per currency, sorted by currency.")


class CurrencyDeclines(BaseModel):
    currency: str = Field(description=CURRENCY_DOC, examples=["EUR"])
    payment_count: int = Field(ge=0, description="All payments in this currency, every status.")
    amount_cents: int = Field(ge=0, description=AMOUNT_DOC + " All payments, every status.")
    declined_count: int = Field(ge=0, description="Payments in this currency now DECLINED.")
    declined_amount_cents: int = Field(ge=0, description=AMOUNT_DOC + " DECLINED payments.")
    decline_rate: float | None = Field(description="declined_count / payment_count of this currency.")
    decline_amount_rate: float | None = Field(description="declined_amount_cents / amount_cents; null when the latter is 0.")


class Declines(RangeAnswer):
    payment_count: int = Field(ge=0, description="All payments in the range, every status (the rate's denominator).")
    declined_count: int = Field(ge=0, description=f"Payments now {DECLINED}.")
    decline_rate: float | None = Field(description="declined_count / payment_count; null when payment_count is 0.")
    declined_amounts: list[CurrencyAmount] = Field(description="Amounts of declined payments per currency, sorted by currency.")
    by_reason: list[ReasonLine] = Field(description="Per decline reason, most frequent first (ties by reason).")
    by_currency: list[CurrencyDeclines] = Field(description="Per currency with payments in the range, sorted by currency.")


def _amounts(per_currency: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"currency": c, "amount_cents": per_currency[c]} for c in sorted(per_currency)]


def shape(
    date_from: dt.date, date_to: dt.date, merchant_id: str | None, rows: Iterable[Mapping[str, Any]], *, as_of: dt.datetime
) -> Declines:
    """Built as plain data and validated once (api/reports/common.py says why)."""
    total = 0
    reasons: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    declined_amounts: dict[str, int] = {}
    # currency -> [payments, amount, declined, declined amount]
    currencies: dict[str, list[int]] = {}
    for r in rows:
        n, amount = int(r["payment_count"]), int(r["amount_cents"])
        total += n
        per_currency = currencies.setdefault(r["currency"], [0, 0, 0, 0])
        per_currency[0] += n
        per_currency[1] += amount
        reason = r["decline_reason"]
        if reason is None:  # not declined: counts in the denominator only
            continue
        per_currency[2] += n
        per_currency[3] += amount
        counts[reason] = counts.get(reason, 0) + n
        per = reasons.setdefault(reason, {})
        per[r["currency"]] = per.get(r["currency"], 0) + amount
        declined_amounts[r["currency"]] = declined_amounts.get(r["currency"], 0) + amount
    declined = sum(counts.values())
    by_currency = [
        {"currency": c, "payment_count": n, "amount_cents": a, "declined_count": dn, "declined_amount_cents": da,
         "decline_rate": rate(dn, n), "decline_amount_rate": rate(da, a)}
        for c, (n, a, dn, da) in sorted(currencies.items())
    ]
    by_reason = [
        {"decline_reason": reason, "count": counts[reason], "amounts": _amounts(reasons[reason])}
        for reason in sorted(counts, key=lambda k: (-counts[k], k))
    ]
    return Declines.model_validate({
        "date_from": date_from, "date_to": date_to, "merchant_id": merchant_id, "as_of": as_of,
        "payment_count": total, "declined_count": declined, "decline_rate": rate(declined, total),
        "declined_amounts": _amounts(declined_amounts), "by_reason": by_reason, "by_currency": by_currency,
    })


def query_for(date_from: dt.date, date_to: dt.date, merchant_id: str | None) -> tuple[ReportQuery, dict[str, Any]]:
    """The statement and parameters of the report (the benchmark times them bare)."""
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to}
    if merchant_id is None:
        return DECLINES_ALL, params
    return DECLINES, {**params, "merchant_id": merchant_id}


async def run(fetch: Fetch, *, date_from: dt.date, date_to: dt.date, merchant_id: str | None) -> Declines:
    query, params = query_for(date_from, date_to, merchant_id)
    as_of, rows = await fetch(query, params, first_dt=date_from, last_dt=date_to)
    return shape(date_from, date_to, merchant_id, rows, as_of=as_of)
