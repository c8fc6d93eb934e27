"""/reports: thin handlers; SQL lives in api/reports/sql.py, shaping in api/reports/<report>.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter
from pydantic import BeforeValidator

from api.access import MerchantScope
from api.db import DatabaseDep
from api.params import query
from api.problems import problem_responses
from api.reports import daily_recon

router = APIRouter(prefix="/reports", tags=["reports"])

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: object) -> object:
    # pydantic alone would also take unix timestamps ("1732406400") and other forms; reports
    # take exactly YYYY-MM-DD so that a date means the same thing to every client.
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise ValueError("expected a date as YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a calendar date") from None
    return value


ReportDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    query("UTC day to report (the dt of created_at).", "YYYY-MM-DD, a calendar date", examples=["2026-11-24"]),
]


@router.get(
    "/daily-recon",
    response_model=daily_recon.DailyRecon,
    summary="Daily reconciliation of one merchant",
    description=(
        "For one merchant and one UTC day: payment count and amount per (currency, status), and "
        "per-currency totals over all statuses. Amounts are in minor units and never summed across "
        "currencies. A day without payments answers 200 with empty lists."
    ),
    responses=problem_responses(400, 422, 500, 503),
)
def get_daily_recon(
    date: ReportDate,
    merchant_id: MerchantScope,
    db: DatabaseDep,
) -> daily_recon.DailyRecon:
    # Sync handler: FastAPI runs it in its threadpool, which suits the blocking psycopg pool.
    with db.connection() as conn:
        return daily_recon.run(conn, report_date=date, merchant_id=merchant_id)
