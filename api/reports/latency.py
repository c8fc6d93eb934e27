"""latency: authorization-to-completion time per payment method, from the histogram aggregates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from api.reports.common import AsOf
from api.reports.kept_histograms import LATENCY_TERMS, LATENCY_TERMS_ONE_METHOD, version_of
from api.reports.latency_histograms import Histograms, histograms, percentiles
from api.reports.source import Fetch
from api.reports.sql import LATENCY, LATENCY_BUCKET, LATENCY_ONE_METHOD, LATENCY_TERM, LATENCY_TOTAL, ReportQuery
from wallet_lake.contracts.reports import LATENCY_EXACT_BELOW_MS, LATENCY_RELATIVE_ERROR, UNKNOWN

_ERROR_PCT = f"{LATENCY_RELATIVE_ERROR * 100:.2f}%"
DESCRIPTION = (
    "Over the payments whose surviving record's dt is in [`from`, `to`] (inclusive) and whose "
    "authorized_to_complete_ms is not null (all merchants), per payment_method (only `payment_method` when "
    f"given; a missing method is reported as `{UNKNOWN}`): count, mean, p50, p95, p99 and max, in milliseconds. "
    "Percentiles are continuous (percentile_cont: linear interpolation between the two nearest ranks), computed "
    f"from per-day histograms: exact below {LATENCY_EXACT_BELOW_MS} ms, otherwise within {_ERROR_PCT} of the "
    "larger of the two values interpolated between (`percentile_max_relative_error`). count, mean and max are "
    "exact. A method without data answers count 0 and null statistics; without `payment_method`, an empty "
    "range answers an empty list."
)


class MethodLatency(BaseModel):
    payment_method: str = Field(description=f"Payment method; `{UNKNOWN}` when the payment had none.", examples=["card"])
    count: int = Field(ge=0, description="Payments with a non-null authorized_to_complete_ms.")
    mean_ms: float | None = Field(description="Arithmetic mean (exact); null when count is 0.")
    p50_ms: float | None = Field(description="Continuous 50th percentile (median); null when count is 0.")
    p95_ms: float | None = Field(description="Continuous 95th percentile; null when count is 0.")
    p99_ms: float | None = Field(description="Continuous 99th percentile; null when count is 0.")
    max_ms: int | None = Field(description="Maximum (exact); null when count is 0.")


class Latency(BaseModel):
    date_from: dt.date = Field(serialization_alias="from", description="First dt of the range (inclusive).")
    date_to: dt.date = Field(serialization_alias="to", description="Last dt of the range (inclusive).")
    payment_method: str | None = Field(description="The method asked for; null means every method.")
    as_of: AsOf
    percentile_max_relative_error: float = Field(
        description=f"Bound on a percentile's error relative to the larger of its two interpolated order statistics ({_ERROR_PCT}); 0 error below {LATENCY_EXACT_BELOW_MS} ms."
    )
    methods: list[MethodLatency] = Field(description="Per payment method, sorted by method.")


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def shape(
    date_from: dt.date, date_to: dt.date, payment_method: str | None, rows: Iterable[Mapping[str, Any]], *, as_of: dt.datetime
) -> Latency:
    """The answer from per-method rows (payment_method, payment_count, sum_ms, max_ms, p50_ms,
    p95_ms, p99_ms). Built as plain data and validated once (api/reports/common.py says why)."""
    methods: dict[str, dict[str, Any]] = {
        r["payment_method"]: {
            "payment_method": r["payment_method"],
            "count": int(r["payment_count"]),
            "mean_ms": _ms(int(r["sum_ms"]) / int(r["payment_count"])),
            "p50_ms": _ms(r["p50_ms"]),
            "p95_ms": _ms(r["p95_ms"]),
            "p99_ms": _ms(r["p99_ms"]),
            "max_ms": int(r["max_ms"]),
        }
        for r in rows
    }
    if payment_method is not None and payment_method not in methods:
        methods[payment_method] = {
            "payment_method": payment_method, "count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None,
        }
    return Latency.model_validate({
        "date_from": date_from, "date_to": date_to, "payment_method": payment_method, "as_of": as_of,
        "percentile_max_relative_error": LATENCY_RELATIVE_ERROR,
        "methods": [methods[m] for m in sorted(methods)],
    })


def per_method(totals: Iterable[Mapping[str, Any]], terms: Sequence[tuple[int, Histograms]]) -> list[dict[str, Any]]:
    """Each method's totals with its percentiles over the signed `terms` (each a dt's histograms);
    a method whose range holds no histogram values is left out. Pure."""
    totals = list(totals)
    return with_percentiles(totals, percentiles([t["payment_method"] for t in totals], terms))


def with_percentiles(totals: Sequence[Mapping[str, Any]], picked: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Each method's totals with its percentiles from `picked` ({method: {p50, p95, p99}}); a
    method without percentiles (no histogram values in the range) is left out. Pure."""
    return [
        {**t, **{f"{label}_ms": v for label, v in picked[t["payment_method"]].items()}}
        for t in totals if t["payment_method"] in picked
    ]


def query_for(date_from: dt.date, date_to: dt.date, payment_method: str | None, *, terms_only: bool = False) -> tuple[ReportQuery, dict[str, Any]]:
    """The statement and parameters of the report: the whole of it (sql.LATENCY), or its totals
    and terms for histograms kept in the API (kept_histograms.LATENCY_TERMS, Postgres)."""
    # month_from: the first day of from's month, where the month-to-date histograms start.
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to, "month_from": date_from.replace(day=1)}
    whole, terms = (LATENCY, LATENCY_TERMS) if payment_method is None else (LATENCY_ONE_METHOD, LATENCY_TERMS_ONE_METHOD)
    if payment_method is not None:
        params["payment_method"] = payment_method
    return (terms if terms_only else whole), params


# Reads of the terms before the whole statement is run instead: each further one follows a
# refresh that moved a term's dt between the terms' read and its histogram's.
_KEPT_ATTEMPTS = 3


async def run(fetch: Fetch, *, date_from: dt.date, date_to: dt.date, payment_method: str | None) -> Latency:
    # The month-to-date rows it reads are built from every day of from's month up to `to`.
    first_dt = date_from.replace(day=1)
    kept = getattr(fetch, "kept_percentiles", None)
    for _ in range(_KEPT_ATTEMPTS if kept is not None else 0):
        query, params = query_for(date_from, date_to, payment_method, terms_only=True)
        as_of, rows = await fetch(query, params, first_dt=first_dt, last_dt=date_to)
        # Every term, not one per dt: a month of the range without data after `from` has the
        # same dt added and subtracted, and the two terms must cancel. Sorted: the percentiles
        # do not depend on the order, and the kept ones are found by it.
        terms = tuple(sorted((int(r["term_sign"]), r["term_dt"], version_of(r["term_version"]))
                             for r in rows if r["row_kind"] == LATENCY_TERM))
        totals = [r for r in rows if r["row_kind"] == LATENCY_TOTAL]
        picked = await kept(tuple(sorted(t["payment_method"] for t in totals)), terms)
        if picked is None:
            continue
        return shape(date_from, date_to, payment_method, with_percentiles(totals, picked), as_of=as_of)
    query, params = query_for(date_from, date_to, payment_method)
    as_of, rows = await fetch(query, params, first_dt=first_dt, last_dt=date_to)
    buckets: dict[tuple[dt.date, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["row_kind"] == LATENCY_BUCKET:
            buckets[(r["term_dt"], int(r["term_sign"]))].append(r)
    totals = [r for r in rows if r["row_kind"] == LATENCY_TOTAL]
    return shape(date_from, date_to, payment_method,
                 per_method(totals, [(sign, histograms(day_rows)) for (_, sign), day_rows in buckets.items()]), as_of=as_of)
