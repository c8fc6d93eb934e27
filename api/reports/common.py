"""Pieces shared by the report answers: per-currency amounts and rates that are null, not an
error, when their denominator is zero."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

AMOUNT_DOC = "Sum of amount_cents, in minor units of `currency`; never summed across currencies."
CURRENCY_DOC = "ISO-4217 code, upper case."


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
