"""The latency percentiles from month-to-date histograms (api/reports/latency_histograms.py),
against percentile_cont computed here from the values themselves: exact below 128 ms, within the
documented bound above it, and the signed sum of terms equal to the histogram of the range."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from api.reports.latency_histograms import histograms, percentiles
from wallet_lake.contracts.reports import LATENCY_EXACT_BELOW_MS, LATENCY_RELATIVE_ERROR, latency_bucket

PS = {"p50": 50, "p95": 95, "p99": 99}


def rows_of(values: list[int], method: str = "card") -> list[dict]:
    """report_latency_mtd-shaped rows of some values, built here from the bucket contract."""
    buckets: dict[tuple[int, int], list[int]] = {}
    for v in values:
        buckets.setdefault(latency_bucket(v), []).append(v)
    return [{"payment_method": method, "bucket_lo": lo, "bucket_width": w, "payment_count": len(vs), "min_ms": min(vs), "max_ms": max(vs)}
            for (lo, w), vs in buckets.items()]


def exact(values: list[int], p: int) -> tuple[float, int, int]:
    """percentile_cont, and the two order statistics it interpolates between."""
    s = sorted(values)
    h = (len(s) - 1) * p / 100
    low, high = s[math.floor(h)], s[math.ceil(h)]
    return low + (h - math.floor(h)) * (high - low), low, high


def test_below_128_ms_the_percentiles_are_exact():
    rng = random.Random(5)
    for n in (1, 2, 3, 10, 101, 1000):
        values = [rng.randrange(0, LATENCY_EXACT_BELOW_MS) for _ in range(n)]
        got = percentiles([(1, histograms(rows_of(values))["card"])])
        for label, p in PS.items():
            assert got[label] == pytest.approx(exact(values, p)[0], abs=1e-9), (n, label)


@pytest.mark.parametrize("seed", range(20))
def test_above_128_ms_the_percentiles_are_within_the_bound(seed):
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(6.8, 1.5)) for _ in range(rng.randrange(1, 3000))]
    got = percentiles([(1, histograms(rows_of(values))["card"])])
    for label, p in PS.items():
        value, low, high = exact(values, p)
        assert abs(got[label] - value) <= LATENCY_RELATIVE_ERROR * max(low, high) + 1e-9, (label, got[label], value)


@pytest.mark.parametrize("seed", range(10))
def test_a_signed_sum_of_month_to_date_terms_is_the_histogram_of_the_range(seed):
    # Month to date through `to`, less month to date through the day before `from`: the values of
    # the range. Representatives are clamped to the terms' min and max, so the same values below
    # 128 ms (1 ms buckets) give the same answer exactly.
    rng = random.Random(seed)
    before = [rng.randrange(0, LATENCY_EXACT_BELOW_MS) for _ in range(rng.randrange(1, 500))]
    inside = [rng.randrange(0, LATENCY_EXACT_BELOW_MS) for _ in range(rng.randrange(1, 500))]
    through_to = histograms(rows_of(before + inside))["card"]
    through_before = histograms(rows_of(before))["card"]
    got = percentiles([(1, through_to), (-1, through_before)])
    assert got == percentiles([(1, histograms(rows_of(inside))["card"])])
    for label, p in PS.items():
        assert got[label] == pytest.approx(exact(inside, p)[0], abs=1e-9)


def test_two_months_add_up():
    rng = random.Random(3)
    first, second = ([rng.randrange(0, 5000) for _ in range(400)] for _ in range(2))
    both = percentiles([(1, histograms(rows_of(first))["card"]), (1, histograms(rows_of(second))["card"])])
    assert both == percentiles([(1, histograms(rows_of(first + second))["card"])])


def test_no_values_no_percentiles_and_methods_apart():
    rows = rows_of([5, 5, 7], "card") + rows_of([900], "wallet")
    days = histograms(rows)
    assert set(days) == {"card", "wallet"}
    assert percentiles([]) is None
    assert percentiles([(1, days["card"]), (-1, days["card"])]) is None  # cancelled out
    assert percentiles([(1, days["wallet"])]) == {"p50": 900.0, "p95": 900.0, "p99": 900.0}
    assert Counter(int(c) for c in days["card"].count) == Counter({2: 1, 1: 1})


def test_a_latency_near_the_int64_limit_does_not_overflow():
    huge = 2**62 + 12345
    got = percentiles([(1, histograms(rows_of([huge, huge]))["card"])])
    assert got["p50"] == pytest.approx(float(huge), rel=LATENCY_RELATIVE_ERROR)
