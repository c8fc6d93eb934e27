"""Pieces shared by the report answers: per-currency amounts and rates that are null, not an
error, when their denominator is zero; and how fresh an answer is (`as_of`).

Each report's shape builds its answer as plain dicts and lists and validates it once
(`Model.model_validate`): pydantic then builds the nested models in its compiled core, with the
same checks (ge=0 and the types), in about a third of the time that building each line's model
in Python took (docs/benchmarks.md, session 28)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

AMOUNT_DOC = (
    "Sum of amount_cents, in minor units of `currency`; never summed across currencies. An exact integer "
    "of up to 38 digits (one amount may be up to 2^63-1): parse it as a big integer where numbers are doubles."
)
CURRENCY_DOC = "ISO-4217 code, upper case."
AS_OF_DOC = (
    "How fresh the answer is: it reflects every change to the payments committed before this instant (UTC). "
    "source=postgres: the time of the read, or, while a change to a dt the answer reads (for latency, from the first "
    "day of `from`'s month) is not in the report aggregates yet, when that change began; the aggregates refresher "
    "takes such changes within about a minute. source=lake: the time the lake was read (it holds the curated "
    "landing hours published so far)."
)
# Every report answer carries it (api/reports/source.py says how each engine computes it).
AsOf = Annotated[dt.datetime, Field(description=AS_OF_DOC, examples=["2026-11-24T13:05:17.204Z"])]


class CurrencyAmount(BaseModel):
    currency: str = Field(description=CURRENCY_DOC, examples=["EUR"])
    amount_cents: int = Field(ge=0, description=AMOUNT_DOC)


def rate(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


class RangeAnswer(BaseModel):
    """Dates and scope every range report echoes back."""

    date_from: dt.date = Field(serialization_alias="from", description="First dt of the range (inclusive).")
    date_to: dt.date = Field(serialization_alias="to", description="Last dt of the range (inclusive).")
    merchant_id: str | None = Field(description="Merchant reported; null means every merchant.")
    as_of: AsOf
