"""Payment statuses and their lifecycle order: the one definition every stage imports.

The order decides which record survives when two events of one payment share a created_at
(dedupe in Spark, the Postgres no-regression trigger, the lake's latest view)."""

from __future__ import annotations

PENDING = "PENDING"
APPROVED = "APPROVED"
DECLINED = "DECLINED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
REFUNDED = "REFUNDED"
CHARGEBACK = "CHARGEBACK"

# Rank in the payment lifecycle: a higher rank is a later state. Terminal outcomes of an
# authorization share a rank; refunds and chargebacks come after them.
LIFECYCLE_RANK: dict[str, int] = {
    PENDING: 0,
    APPROVED: 1,
    DECLINED: 1,
    FAILED: 1,
    CANCELLED: 1,
    REFUNDED: 2,
    CHARGEBACK: 3,
}

ACCEPTED_STATUSES: tuple[str, ...] = tuple(LIFECYCLE_RANK)

# Statuses that mean money was captured (reports: refund-rate).
CAPTURED_STATUSES: tuple[str, ...] = (APPROVED, REFUNDED, CHARGEBACK)


def lifecycle_rank(status: str) -> int:
    """Rank of an accepted status; unknown statuses are a contract violation, not rank 0."""
    try:
        return LIFECYCLE_RANK[status]
    except KeyError:
        raise ValueError(f"unknown payment status {status!r}; accepted: {', '.join(ACCEPTED_STATUSES)}") from None
