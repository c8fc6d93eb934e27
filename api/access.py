"""Which merchant a request may read: the seam where API keys will plug in.

Today the caller names the merchant in the `merchant` query parameter and is trusted. When API
keys arrive, `merchant_scope` is the one place to change: resolve the key (e.g. a header
dependency), then either derive the merchant from it or check the requested one is allowed and
raise 401/403 otherwise. Reports depend on `MerchantScope` and need no change."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.params import query

# Any printable text without whitespace or control characters (NUL cannot even be sent to
# Postgres as text); merchant ids are opaque to the API.
MERCHANT_PATTERN = r"^[^\s\x00-\x1f\x7f]+$"
MERCHANT_MAX_LENGTH = 128


def merchant_scope(
    merchant: Annotated[
        str,
        query(
            "Merchant whose payments the report covers.",
            f"a merchant id, 1 to {MERCHANT_MAX_LENGTH} characters, no whitespace",
            min_length=1,
            max_length=MERCHANT_MAX_LENGTH,
            pattern=MERCHANT_PATTERN,
            examples=["m_0001"],
        ),
    ],
) -> str:
    return merchant


MerchantScope = Annotated[str, Depends(merchant_scope)]
