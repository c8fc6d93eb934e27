"""daily-recon: a merchant's payments of one UTC day, per currency and status, for reconciling
against the processor's settlement files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.reports.sql import DAILY_RECON
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES

_AMOUNT_DOC = "Sum of amount_cents, in minor units of `currency`; never summed across currencies."


class StatusLine(BaseModel):
    currency: str = Field(description="ISO-4217 code, upper case.", examples=["EUR"])
    status: str = Field(
        description=f"Payment status, one of: {', '.join(ACCEPTED_STATUSES)}.", examples=["APPROVED"]
    )
    count: int = Field(ge=0, description="Number of payments in this currency and status.")
    amount_cents: int = Field(ge=0, description=_AMOUNT_DOC)


class CurrencyTotal(BaseModel):
    currency: str = Field(description="ISO-4217 code, upper case.", examples=["EUR"])
    count: int = Field(ge=0, description="Number of payments in this currency, all statuses.")
    amount_cents: int = Field(ge=0, description=_AMOUNT_DOC + " All statuses.")


class DailyRecon(BaseModel):
    """One merchant's payments on one UTC day (the dt of created_at). An empty day has empty lists."""

    date: dt.date = Field(description="UTC day reported (dt of created_at).")
    merchant_id: str = Field(description="Merchant reported.")
    by_status: list[StatusLine] = Field(description="Per (currency, status), sorted by currency then status.")
    totals: list[CurrencyTotal] = Field(description="Per currency over all statuses, sorted by currency.")


def shape(report_date: dt.date, merchant_id: str, rows: Iterable[Mapping[str, Any]]) -> DailyRecon:
    """Build the answer from DAILY_RECON rows of any engine (mappings with the SQL's column names).

    Sorting is done here, by code point, so the order does not depend on a database collation."""
    lines = sorted(
        (
            StatusLine(
                currency=r["currency"],
                status=r["status"],
                count=int(r["payment_count"]),
                # Postgres sum(bigint) is numeric (Decimal here): int() keeps it exact.
                amount_cents=int(r["amount_cents"]),
            )
            for r in rows
        ),
        key=lambda line: (line.currency, line.status),
    )
    totals: dict[str, CurrencyTotal] = {}
    for line in lines:
        t = totals.setdefault(line.currency, CurrencyTotal(currency=line.currency, count=0, amount_cents=0))
        t.count += line.count
        t.amount_cents += line.amount_cents
    return DailyRecon(
        date=report_date,
        merchant_id=merchant_id,
        by_status=lines,
        totals=[totals[c] for c in sorted(totals)],
    )


def run(conn: psycopg.Connection, *, report_date: dt.date, merchant_id: str) -> DailyRecon:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(DAILY_RECON.sql, DAILY_RECON.bind(report_date=report_date, merchant_id=merchant_id))
        return shape(report_date, merchant_id, cur.fetchall())
