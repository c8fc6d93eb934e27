"""Which merchant a request may read, from its API key (api.auth) and the `merchant` parameter.

Reports depend on `MerchantScope`: a merchant id, or None for "every merchant", already checked
against the key (403 otherwise). Omitting `merchant` means every merchant, which only keys
scoped to all merchants may ask for. Reports about the platform as a whole (pipeline-recon)
depend on `AllMerchantsKey`: keys scoped to all merchants only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth import ApiKey, Authenticated, MerchantForbidden
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


class AllMerchantsKeyRequired(Exception):
    """A valid key scoped to some merchants asking for a platform-wide report: 403."""


async def all_merchants_key(key: Authenticated) -> ApiKey:
    # Platform-wide figures (the pipeline ledger counts every merchant's payments per landing
    # hour) would tell a merchant-scoped key the volume of the others: all-merchant keys only.
    if not key.all_merchants:
        raise AllMerchantsKeyRequired()
    return key


AllMerchantsKey = Annotated[ApiKey, Depends(all_merchants_key)]
