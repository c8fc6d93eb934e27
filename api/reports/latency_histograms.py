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
contracts/reports.py states. Pure: numpy over every method's buckets at once (one pass, not one
per method); the picks in int64, or as Python integers from 2^55 ms on (a latency near 2^63 ms
cannot overflow them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
# The columns a histogram row carries (report_latency_mtd's, less dt).
ROW_COLUMNS = ("payment_method", "bucket_lo", "bucket_width", "payment_count", "min_ms", "max_ms")


@dataclass(frozen=True)
class Histograms:
    """Every payment method's month-to-date histogram of one dt: parallel arrays of its rows,
    ordered by (method, bucket_lo); `method` holds each row's index into `methods`."""

    methods: tuple[str, ...]
    method: np.ndarray
    lo: np.ndarray
    width: np.ndarray
    count: np.ndarray
    min_ms: np.ndarray
    max_ms: np.ndarray


def histograms(rows: Iterable[Mapping[str, Any]]) -> Histograms:
    """The histograms of report_latency_mtd-shaped rows (ROW_COLUMNS) of one dt."""
    buckets = sorted(
        (r["payment_method"], int(r["bucket_lo"]), int(r["bucket_width"]), int(r["payment_count"]), int(r["min_ms"]), int(r["max_ms"]))
        for r in rows
    )
    methods = tuple(sorted({b[0] for b in buckets}))
    index = {m: i for i, m in enumerate(methods)}
    a = np.array([(index[b[0]], *b[1:]) for b in buckets], dtype=np.int64).reshape(-1, 6)
    return Histograms(methods, *(np.ascontiguousarray(a[:, i]) for i in range(6)))


_PS = np.array([p for _, p in PERCENTILES], dtype=np.int64)
# Below this, twice a latency times 100 stays inside int64; above it the picks are taken as
# Python integers (a latency near 2^63 ms cannot overflow them).
_INT64_SAFE = 2**55


def percentiles(methods: Sequence[str], terms: Sequence[tuple[int, Histograms]]) -> dict[str, dict[str, float]]:
    """{method: {p50, p95, p99 in ms}} of the histogram sum(sign * histograms) over `terms`, for
    each of `methods` whose sum holds values (the others are left out). Every method at once:
    the buckets of all terms on one grid of bucket_lo values, a row per method."""
    wanted = {m: i for i, m in enumerate(methods)}
    parts = []
    for sign, day in terms:
        row = np.array([wanted.get(m, -1) for m in day.methods], dtype=np.int64)[day.method]
        keep = row >= 0
        take = (lambda a: a) if keep.all() else (lambda a: a[keep])
        parts.append((sign, take(row), take(day.lo), take(day.width), take(day.count), take(day.min_ms), take(day.max_ms)))
    if not parts:
        return {}
    grid = np.unique(np.concatenate([p[2] for p in parts]))
    k = len(grid)
    size = len(methods) * k
    count = np.zeros(size, np.int64)
    mn = np.full(size, np.iinfo(np.int64).max, np.int64)
    mx = np.full(size, np.iinfo(np.int64).min, np.int64)
    width = np.ones(size, np.int64)
    for sign, row, lo, w, c, lo_ms, hi_ms in parts:
        at = row * k + np.searchsorted(grid, lo)  # a term's (method, bucket) pairs are distinct: plain indexing adds once
        count[at] += sign * c
        mn[at] = np.minimum(mn[at], lo_ms)
        mx[at] = np.maximum(mx[at], hi_ms)
        width[at] = w
    held = np.where(count > 0, count, 0)  # buckets left with no values drop out
    upto = np.cumsum(held)  # every method's row in turn
    n = held.reshape(len(methods), k).sum(axis=1) if k else np.zeros(len(methods), np.int64)
    present = np.flatnonzero(n > 0)
    if len(present) == 0:
        return {}
    n = n[present]
    before = upto[(present + 1) * k - 1] - n  # values in the rows ahead of each method's
    h = (n[:, None] - 1) * _PS[None, :]
    frac = h % 100
    ranks = np.stack([h // 100, h // 100 + (frac > 0)], axis=-1)  # the two ranks interpolated between
    # The value at rank j: the bucket of the first cumulative count past j, in the method's row.
    at = np.searchsorted(upto, (before[:, None, None] + ranks).ravel(), side="right").reshape(ranks.shape)
    picked = (grid[at % k], width[at], mn[at], mx[at])
    if max(int(grid[-1]), int(mx[at].max())) >= _INT64_SAFE:
        picked = tuple(a.astype(object) for a in picked)
        frac = frac.astype(object)
    lo, w, lo_ms, hi_ms = picked
    rep2 = np.minimum(np.maximum(2 * lo + w - 1, 2 * lo_ms), 2 * hi_ms)  # representatives, doubled
    low, high = rep2[..., 0], rep2[..., 1]
    values = (low * 100 + frac * (high - low)) / 200.0
    return {
        methods[m]: {label: float(values[i, j]) for j, (label, _) in enumerate(PERCENTILES)}
        for i, m in enumerate(present.tolist())
    }
