"""The report vocabulary: the names and buckets every reader of the reports shares (the report
relations of contracts/report_relations.py, the Postgres refresh in serving/aggregates.py, the
lake query layer and the API's report SQL, models and descriptions). Pure: no I/O, no engine.

Statuses the reports name (DECLINED, REFUNDED, CHARGEBACK, the captured ones) are defined by
contracts.lifecycle and named here as the reports use them.

Latency percentiles and their error bound
-----------------------------------------
A value v (ms) falls in the bucket [lo, lo + w) with w = 1 for v < 128 and, for
2^e <= v < 2^(e+1) (e >= 7), w = 2^e / 32, lo = v - mod(v, w) (32 buckets per power of two).
Each bucket keeps count, sum, min and max. A percentile is computed as percentile_cont would
over the raw values (linear interpolation between the order statistics at ranks floor and ceil
of (n-1)p), with every value replaced by its bucket's midpoint lo + (w-1)/2 clamped into the
bucket's [min, max]. That representative is within (w-1)/2 < v/64 of any value of the bucket,
and the map is monotone, so each order statistic is off by less than 1/64 (1.56%) of itself and
the interpolated percentile by less than 1.56% of the larger of its two order statistics. Below
128 ms, and in any bucket that holds a single distinct value, it is exact. Count, mean and max
are exact. (64 buckets per power of two would halve the bound and double the rows a latency
report reads: 4.1 ms instead of 2.3 ms for a 31-day report over 10M payments.)"""

from __future__ import annotations

from wallet_lake.contracts.lifecycle import CAPTURED_STATUSES, CHARGEBACK, DECLINED, REFUNDED

__all__ = [
    "CAPTURED_STATUSES", "CHARGEBACK", "DECLINED", "REFUNDED", "UNKNOWN", "NOT_DECLINED",
    "LATENCY_EXACT_BELOW_MS", "LATENCY_SUB_BUCKETS", "LATENCY_TOP_EXPONENT", "LATENCY_RELATIVE_ERROR",
    "latency_bucket_width", "latency_bucket", "latency_width_sql",
]

# The decline reason reported for a DECLINED payment that has none (or an empty one), and the
# payment method reported for a payment that has none.
UNKNOWN = "unknown"
# The decline_reason key of every status but DECLINED in the status aggregates.
NOT_DECLINED = ""

# --- latency histogram buckets -----------------------------------------------------------------
LATENCY_EXACT_BELOW_MS = 128  # 1 ms buckets below this: exact
LATENCY_SUB_BUCKETS = 32  # buckets per power of two above it
LATENCY_TOP_EXPONENT = 42  # 2^42 ms is 139 years; beyond, buckets stop growing (bound degrades)
# Bound on |percentile from the histogram - exact percentile| relative to the larger of the two
# order statistics it interpolates between (see the module docstring).
LATENCY_RELATIVE_ERROR = 1 / (2 * LATENCY_SUB_BUCKETS)


def latency_bucket_width(ms: int) -> int:
    """Width of the bucket holding `ms`; the Python twin of latency_width_sql (a test compares)."""
    if ms < LATENCY_EXACT_BELOW_MS:
        return 1
    e = min(ms.bit_length() - 1, LATENCY_TOP_EXPONENT)
    return (1 << e) // LATENCY_SUB_BUCKETS


def latency_bucket(ms: int) -> tuple[int, int]:
    """(bucket_lo, bucket_width) of a latency value."""
    w = latency_bucket_width(ms)
    return ms - ms % w, w


def latency_width_sql(column: str) -> str:
    """The bucket width of `column` as a portable CASE expression (no log2 in Postgres, no UDFs in Athena)."""
    first = LATENCY_EXACT_BELOW_MS.bit_length() - 1  # 7
    branches = [f"WHEN {column} < {LATENCY_EXACT_BELOW_MS} THEN 1"]
    for e in range(first, LATENCY_TOP_EXPONENT):
        branches.append(f"WHEN {column} < {1 << (e + 1)} THEN {(1 << e) // LATENCY_SUB_BUCKETS}")
    return f"CASE {' '.join(branches)} ELSE {(1 << LATENCY_TOP_EXPONENT) // LATENCY_SUB_BUCKETS} END"
