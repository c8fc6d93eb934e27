"""Report parameters: declared forms (OpenAPI and problem bodies say the same) and the checks
that span parameters (from <= to, at most MAX_RANGE_DAYS days)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

from api.params import query
from wallet_lake.contracts.reports import UNKNOWN

MAX_RANGE_DAYS = 366
PAYMENT_METHOD_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def iso_date(value: object) -> object:
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


_DATE_FORM = "YYYY-MM-DD, a calendar date"

ReportDate = Annotated[
    dt.date,
    BeforeValidator(iso_date),
    query("UTC day to report (the dt of created_at).", _DATE_FORM, examples=["2026-11-24"]),
]
LandingDate = Annotated[
    dt.date,
    BeforeValidator(iso_date),
    query("UTC day whose 24 landing hours (raw/payments/dt=YYYY/MM/DD/HH/) are listed.", _DATE_FORM, examples=["2026-11-24"]),
]
DateFrom = Annotated[
    dt.date,
    BeforeValidator(iso_date),
    query("First UTC day of the range (dt of created_at), inclusive.", _DATE_FORM, alias="from", examples=["2026-11-01"]),
]
DateTo = Annotated[
    dt.date,
    BeforeValidator(iso_date),
    query(
        f"Last UTC day of the range, inclusive; not before `from`, at most {MAX_RANGE_DAYS} days after it counting both ends.",
        f"{_DATE_FORM}, from <= to, at most {MAX_RANGE_DAYS} days in the range",
        alias="to",
        examples=["2026-11-30"],
    ),
]


def _range_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", "to"), "msg": message, "type": "value_error"}])


@dataclass(frozen=True)
class DateRange:
    date_from: dt.date
    date_to: dt.date

    def checked(self, lake_max_days: int | None = None) -> DateRange:
        """The range, once from <= to and it spans at most MAX_RANGE_DAYS days (at most
        lake_max_days for source=lake, when given); 422 otherwise.

        Handlers call this first thing rather than the dependency checking it: FastAPI
        validates a route's own parameters only after its dependencies ran, so a dependency
        raising here would hide a malformed parameter given in the same request."""
        if self.date_to < self.date_from:
            raise _range_error("must not be before `from`")
        days = (self.date_to - self.date_from).days + 1
        if days > MAX_RANGE_DAYS:
            raise _range_error(f"the range holds {days} days; at most {MAX_RANGE_DAYS} are allowed")
        if lake_max_days is not None and days > lake_max_days:
            raise _range_error(
                f"the range holds {days} days; source=lake allows at most {lake_max_days} (source=postgres: {MAX_RANGE_DAYS})"
            )
        return self


async def date_range(date_from: DateFrom, date_to: DateTo) -> DateRange:
    return DateRange(date_from, date_to)


Range = Annotated[DateRange, Depends(date_range)]

PaymentMethod = Annotated[
    str | None,
    query(
        f"Only this payment method (`{UNKNOWN}` = payments without one). Omitted: every method.",
        "lower-case letters, digits and _, starting with a letter, at most 32 characters",
        pattern=PAYMENT_METHOD_PATTERN,
        max_length=32,
        examples=["card"],
    ),
]

SourceParam = Annotated[
    Literal["postgres", "lake"],
    query(
        "Where the report runs: `postgres` (pre-aggregated serving tables, fast) or `lake` (the curated Parquet "
        "through DuckDB locally or Athena in production, over the latest record per payment; for heavy or ad hoc use). "
        "source=lake is bounded: ranges of at most WL_API_LAKE_MAX_RANGE_DAYS days (default 31), and a scan of at most "
        "WL_API_LAKE_MAX_SCAN_BYTES of Parquet from the first day on (422 past either).",
        "postgres or lake",
    ),
]
