"""Which merchant a request may read, from its API key (api.auth) and the `merchant` parameter.

Reports depend on `MerchantScope`: a merchant id, or None for "every merchant", already checked
against the key (403 otherwise). Omitting `merchant` means every merchant, which only keys
scoped to all merchants may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth import Authenticated, MerchantForbidden
from api.params import query

# Any printable text without whitespace or control characters (NUL cannot even be sent to
# Postgres as text); merchant ids are opaque to the API.
MERCHANT_PATTERN = r"^[^\s\x00-\x1f\x7f]+$"
MERCHANT_MAX_LENGTH = 128


async def merchant_scope(
    key: Authenticated,
    merchant: Annotated[
        str | None,
        query(
            "Merchant whose payments the report covers. Omitted: every merchant, for keys scoped to "
            "all merchants only (other keys get 403).",
            f"a merchant id, 1 to {MERCHANT_MAX_LENGTH} characters, no whitespace",
            min_length=1,
            max_length=MERCHANT_MAX_LENGTH,
            pattern=MERCHANT_PATTERN,
            examples=["m_0001"],
        ),
    ] = None,
) -> str | None:
    if not key.may_read(merchant):
        raise MerchantForbidden(merchant)
    return merchant


MerchantScope = Annotated[str | None, Depends(merchant_scope)]
