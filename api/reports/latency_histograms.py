"""The latency report's percentiles, from month-to-date histograms: the one place the rule lives,
for Postgres (histograms each API worker keeps per dt, api/reports/kept_histograms.py) and the
lake (the terms' rows read with the report, api/reports/sql.py LATENCY) alike.

A range's histogram is a signed sum of month-to-date histograms (the terms: sql.py says which).
Per payment method, with the buckets in order:
- a bucket's count is the signed sum of its counts in the terms; buckets left with none drop out;
  its min and max are the min and max over the terms' rows of that bucket;
- a bucket's representative is its midpoint, clamped into [min, max], kept doubled (rep2) so that
  the arithmetic stays in integers until the last division;
- the continuous percentile p of n values (percentile_cont) interpolates between the 0-based
  ranks floor(h/100) and ceil(h/100), h = (n-1)*p, and the value at rank j is the representative
  of the first bucket holding more than j values.
Exact below LATENCY_EXACT_BELOW_MS, where buckets are 1 ms wide; otherwise within the bound
contracts/reports.py states. Pure: numpy over the buckets, Python integers for the picks (a
latency near 2^63 ms cannot overflow them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
# The columns a histogram row carries (report_latency_mtd's, less dt).
ROW_COLUMNS = ("payment_method", "bucket_lo", "bucket_width", "payment_count", "min_ms", "max_ms")


@dataclass(frozen=True)
class Histogram:
    """One payment method's month-to-date histogram of one dt: parallel arrays, by bucket_lo."""

    lo: np.ndarray
    width: np.ndarray
    count: np.ndarray
    min_ms: np.ndarray
    max_ms: np.ndarray


def histograms(rows: Iterable[Mapping[str, Any]]) -> dict[str, Histogram]:
    """Per payment method, the histogram of report_latency_mtd-shaped rows (ROW_COLUMNS) of one dt."""
    by_method: dict[str, list[tuple[int, int, int, int, int]]] = defaultdict(list)
    for r in rows:
        by_method[r["payment_method"]].append(
            (int(r["bucket_lo"]), int(r["bucket_width"]), int(r["payment_count"]), int(r["min_ms"]), int(r["max_ms"])))
    out = {}
    for method, buckets in by_method.items():
        a = np.array(sorted(buckets), dtype=np.int64).reshape(-1, 5)
        out[method] = Histogram(*(np.ascontiguousarray(a[:, i]) for i in range(5)))
    return out


def percentiles(terms: Sequence[tuple[int, Histogram]]) -> dict[str, float] | None:
    """p50, p95 and p99 in ms of the histogram sum(sign * histogram) over `terms`; None when it
    holds no values."""
    if not terms:
        return None
    lo = terms[0][1].lo if len(terms) == 1 else np.unique(np.concatenate([h.lo for _, h in terms]))
    count = np.zeros(len(lo), np.int64)
    mn = np.full(len(lo), np.iinfo(np.int64).max, np.int64)
    mx = np.full(len(lo), np.iinfo(np.int64).min, np.int64)
    width = np.ones(len(lo), np.int64)
    for sign, h in terms:
        at = np.searchsorted(lo, h.lo)  # a term's buckets are distinct: plain indexing adds once
        count[at] += sign * h.count
        mn[at] = np.minimum(mn[at], h.min_ms)
        mx[at] = np.maximum(mx[at], h.max_ms)
        width[at] = h.width
    held = np.flatnonzero(count > 0)
    if len(held) == 0:
        return None
    upto = np.cumsum(count[held])
    n = int(upto[-1])

    def rep2(rank: int) -> int:
        i = int(held[np.searchsorted(upto, rank, side="right")])
        return min(max(2 * int(lo[i]) + int(width[i]) - 1, 2 * int(mn[i])), 2 * int(mx[i]))

    out = {}
    for label, p in PERCENTILES:
        h = (n - 1) * p
        frac = h % 100
        low = rep2(h // 100)
        high = rep2(h // 100 + 1) if frac else low
        out[label] = (low * 100 + frac * (high - low)) / 200.0
    return out
