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
        got = percentiles(["card"], [(1, histograms(rows_of(values)))])["card"]
        for label, p in PS.items():
            assert got[label] == pytest.approx(exact(values, p)[0], abs=1e-9), (n, label)


@pytest.mark.parametrize("seed", range(20))
def test_above_128_ms_the_percentiles_are_within_the_bound(seed):
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(6.8, 1.5)) for _ in range(rng.randrange(1, 3000))]
    got = percentiles(["card"], [(1, histograms(rows_of(values)))])["card"]
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
    through_to = histograms(rows_of(before + inside))
    through_before = histograms(rows_of(before))
    got = percentiles(["card"], [(1, through_to), (-1, through_before)])["card"]
    assert got == percentiles(["card"], [(1, histograms(rows_of(inside)))])["card"]
    for label, p in PS.items():
        assert got[label] == pytest.approx(exact(inside, p)[0], abs=1e-9)


def test_two_months_add_up():
    rng = random.Random(3)
    first, second = ([rng.randrange(0, 5000) for _ in range(400)] for _ in range(2))
    both = percentiles(["card"], [(1, histograms(rows_of(first))), (1, histograms(rows_of(second)))])
    assert both == percentiles(["card"], [(1, histograms(rows_of(first + second)))])


def test_no_values_no_percentiles_and_methods_apart():
    rows = rows_of([5, 5, 7], "card") + rows_of([900], "wallet")
    day = histograms(rows)
    assert day.methods == ("card", "wallet")
    assert percentiles(["card"], []) == {}
    assert percentiles(["card", "wallet"], [(1, day), (-1, day)]) == {}  # cancelled out
    assert percentiles(["wallet", "bnpl"], [(1, day)]) == {"wallet": {"p50": 900.0, "p95": 900.0, "p99": 900.0}}
    assert percentiles(["card", "wallet"], [(1, histograms([]))]) == {}
    card = day.method == day.methods.index("card")
    assert Counter(int(c) for c in day.count[card]) == Counter({2: 1, 1: 1})


def test_a_latency_near_the_int64_limit_does_not_overflow():
    huge = 2**62 + 12345
    got = percentiles(["card"], [(1, histograms(rows_of([huge, huge])))])["card"]
    assert got["p50"] == pytest.approx(float(huge), rel=LATENCY_RELATIVE_ERROR)


def one_method_at_a_time(method: str, terms: list[tuple[int, list[dict]]]) -> dict[str, float] | None:
    """The rule of the module docstring for one method, in plain Python integers over the rows
    themselves: what every method at once must equal."""
    buckets: dict[int, list[int]] = {}  # lo -> [count, min, max, width]
    for sign, rows in terms:
        for r in rows:
            if r["payment_method"] != method:
                continue
            b = buckets.setdefault(r["bucket_lo"], [0, r["min_ms"], r["max_ms"], r["bucket_width"]])
            b[0] += sign * r["payment_count"]
            b[1], b[2] = min(b[1], r["min_ms"]), max(b[2], r["max_ms"])
    held = [(lo, b) for lo, b in sorted(buckets.items()) if b[0] > 0]
    n = sum(b[0] for _, b in held)
    if n == 0:
        return None

    def rep2(rank: int) -> int:
        seen = 0
        for lo, (count, mn, mx, width) in held:
            seen += count
            if seen > rank:
                return min(max(2 * lo + width - 1, 2 * mn), 2 * mx)
        raise AssertionError(rank)

    out = {}
    for label, p in PS.items():
        h = (n - 1) * p
        low = rep2(h // 100)
        high = rep2(h // 100 + 1) if h % 100 else low
        out[label] = (low * 100 + (h % 100) * (high - low)) / 200.0
    return out


@pytest.mark.parametrize("seed", range(25))
def test_every_method_at_once_equals_each_method_alone(seed):
    # Methods with different buckets, a method missing from some terms, a subtracted term, a
    # method asked for that has no rows, and latencies past 2^55 ms in some draws.
    rng = random.Random(seed)
    methods = ["bank_transfer", "bnpl", "card", "unknown", "wallet"]
    big = seed % 5 == 0

    def values() -> dict[str, list[int]]:
        return {m: [int(rng.lognormvariate(6, 2)) + (2**60 if big and rng.random() < 0.3 else 0) for _ in range(rng.randrange(1, 300))]
                for m in rng.sample(methods, rng.randrange(0, len(methods) + 1))}

    def rows(day: dict[str, list[int]]) -> list[dict]:
        return [r for m, vs in day.items() for r in rows_of(vs, m)]

    # Month to date through `to`, less month to date through the day before `from` (a subset of
    # it), plus another month's last day.
    before, inside, other_month = values(), values(), values()
    through_to = {m: before.get(m, []) + inside.get(m, []) for m in {*before, *inside}}
    terms = [(1, rows(through_to)), (-1, rows(before)), (1, rows(other_month))]
    asked = methods + ["not_a_method"]
    got = percentiles(asked, [(sign, histograms(rows)) for sign, rows in terms])
    for m in asked:
        assert got.get(m) == one_method_at_a_time(m, terms), m
