"""daily-recon: a merchant's payments of one UTC day, per currency and status, for reconciling
against the processor's settlement files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from api.reports.common import AMOUNT_DOC, CURRENCY_DOC, AsOf
from api.reports.source import Fetch
from api.reports.sql import DAILY_RECON, DAILY_RECON_ALL, ReportQuery
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, APPROVED, REFUNDED

DESCRIPTION = (
    "For one UTC day (`date`, the dt of each payment's surviving record's created_at) and one merchant "
    "(or every merchant when `merchant` is omitted, for all-merchant keys): the payment count and the sum of "
    "amount_cents per (currency, status), and per currency the totals over all statuses. Each payment counts "
    f"once, in its current status (a payment refunded later counts as {REFUNDED} on the dt of the refund record). "
    "Amounts are in minor units and never summed across currencies. A day without payments answers 200 with "
    "empty lists."
)


class StatusLine(BaseModel):
    currency: str = Field(description=CURRENCY_DOC, examples=["EUR"])
    status: str = Field(
        description=f"Payment status, one of: {', '.join(ACCEPTED_STATUSES)}.", examples=[APPROVED]
    )
    count: int = Field(ge=0, description="Number of payments in this currency and status.")
    amount_cents: int = Field(ge=0, description=AMOUNT_DOC)


class CurrencyTotal(BaseModel):
    currency: str = Field(description=CURRENCY_DOC, examples=["EUR"])
    count: int = Field(ge=0, description="Number of payments in this currency, all statuses.")
    amount_cents: int = Field(ge=0, description=AMOUNT_DOC + " All statuses.")


class DailyRecon(BaseModel):
    """One merchant's payments on one UTC day (the dt of created_at). An empty day has empty lists."""

    date: dt.date = Field(description="UTC day reported (dt of created_at).")
    merchant_id: str | None = Field(description="Merchant reported; null means every merchant.")
    as_of: AsOf
    by_status: list[StatusLine] = Field(description="Per (currency, status), sorted by currency then status.")
    totals: list[CurrencyTotal] = Field(description="Per currency over all statuses, sorted by currency.")


def shape(report_date: dt.date, merchant_id: str | None, rows: Iterable[Mapping[str, Any]], *, as_of: dt.datetime) -> DailyRecon:
    """Build the answer from DAILY_RECON rows of any engine (mappings with the SQL's column names).

    Sorting is done here, by code point, so the order does not depend on a database collation.
    Built as plain data and validated once (api/reports/common.py says why)."""
    # Postgres sum(bigint) is numeric (Decimal here): int() keeps it exact.
    lines = sorted(((r["currency"], r["status"], int(r["payment_count"]), int(r["amount_cents"])) for r in rows),
                   key=lambda line: (line[0], line[1]))
    totals: dict[str, list[int]] = {}
    for currency, _, count, amount in lines:
        t = totals.setdefault(currency, [0, 0])
        t[0] += count
        t[1] += amount
    return DailyRecon.model_validate({
        "date": report_date,
        "merchant_id": merchant_id,
        "as_of": as_of,
        "by_status": [{"currency": c, "status": s, "count": n, "amount_cents": a} for c, s, n, a in lines],
        "totals": [{"currency": c, "count": n, "amount_cents": a} for c, (n, a) in sorted(totals.items())],
    })


def query_for(report_date: dt.date, merchant_id: str | None) -> tuple[ReportQuery, dict[str, Any]]:
    """The statement and parameters of the report (the benchmark times them bare)."""
    if merchant_id is None:
        return DAILY_RECON_ALL, {"report_date": report_date}
    return DAILY_RECON, {"report_date": report_date, "merchant_id": merchant_id}


async def run(fetch: Fetch, *, report_date: dt.date, merchant_id: str | None) -> DailyRecon:
    query, params = query_for(report_date, merchant_id)
    as_of, rows = await fetch(query, params, first_dt=report_date, last_dt=report_date)
    return shape(report_date, merchant_id, rows, as_of=as_of)
