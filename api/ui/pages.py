"""What each reports page shows, built from the report answers the JSON routes give (pure: no
I/O, no SQL; api/ui/routes.py runs the reports and renders these with the templates).

A page's table is a report table (api/reports/tables.py) or a series of them, one per UTC day
with the day in front; its CSV download (`format=csv` on the page) has exactly those columns.
Charts are plain data (labels, series) drawn by Chart.js in the browser (static/charts.js)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from api.reports import tables
from api.reports.daily_recon import DailyRecon
from api.reports.declines import Declines
from api.reports.latency import Latency
from api.reports.latency_histograms import PERCENTILES
from api.reports.refund_rate import RefundRate
from api.reports.tables import Column, Table

# A series page runs its report once per day; this bounds the queries one page view costs
# (the JSON routes take up to 366 days in one answer).
MAX_SERIES_DAYS = 92


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    """One line chart: x = `labels` (UTC days), one line per series; `unit` is "rate" (fractions,
    drawn as percent) or "ms"."""

    id: str
    title: str
    unit: str
    labels: list[str]
    series: list[Series] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "id": self.id, "title": self.title, "unit": self.unit, "labels": self.labels,
            "series": [{"label": s.label, "values": s.values} for s in self.series],
        }


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


DATE = Column("date", "Date (UTC)", "date")


# --- daily reconciliation ---------------------------------------------------------------------

RECON_CHANGE = (
    *tables.DAILY_RECON,
    Column("previous_count", "Payments, day before", "count"),
    Column("previous_amount_cents", "Amount day before (minor units)", "amount"),
    Column("count_change", "Change in payments", "change"),
    Column("amount_cents_change", "Change in amount (minor units)", "change"),
)
TOTALS_CHANGE = (RECON_CHANGE[0], *RECON_CHANGE[2:])


def _with_change(keys: Sequence[tuple], today: dict[tuple, tuple[int, int]], before: dict[tuple, tuple[int, int]]) -> list[tuple]:
    rows = []
    for k in keys:
        count, amount = today.get(k, (0, 0))
        prev_count, prev_amount = before.get(k, (0, 0))
        rows.append((*k, count, amount, prev_count, prev_amount, count - prev_count, amount - prev_amount))
    return rows


def recon_with_change(day: DailyRecon, previous: DailyRecon) -> tuple[Table, Table]:
    """The day's table per (currency, status) and per currency (all statuses), each with the day
    before and the change. A line present on one day only counts 0 on the other; amounts are
    compared within their currency only."""
    today = {(s.currency, s.status): (s.count, s.amount_cents) for s in day.by_status}
    before = {(s.currency, s.status): (s.count, s.amount_cents) for s in previous.by_status}
    by_status = Table(RECON_CHANGE, _with_change(sorted(today.keys() | before.keys()), today, before))
    totals_today = {(t.currency,): (t.count, t.amount_cents) for t in day.totals}
    totals_before = {(t.currency,): (t.count, t.amount_cents) for t in previous.totals}
    totals = Table(TOTALS_CHANGE, _with_change(sorted(totals_today.keys() | totals_before.keys()), totals_today, totals_before))
    return by_status, totals


# --- refund, chargeback and decline rates -----------------------------------------------------

RATES = (
    DATE,
    *tables.REFUND_RATE,
    Column("payment_count", "Payments (all statuses)", "count"),
    Column("amount_cents", "Amount, all statuses (minor units)", "amount"),
    Column("declined_count", "Declined", "count"),
    Column("declined_amount_cents", "Declined amount (minor units)", "amount"),
    Column("decline_amount_rate", "Decline rate (by amount)", "rate"),
)
_DECLINE_FIELDS = [c.name for c in RATES[len(tables.REFUND_RATE) + 1:]]
_RATE_LINES = (("refund_amount_rate", "refund rate"), ("chargeback_amount_rate", "chargeback rate"),
               ("decline_amount_rate", "decline rate"))


def rates_series(per_day: Iterable[tuple[dt.date, RefundRate, Declines]]) -> tuple[Table, list[Chart]]:
    """Per UTC day and currency: the refund-rate report's row and the declines report's figures of
    that currency (rates by amount: per currency, as the reports define them). One chart per
    currency, one line per rate; a day without payments in a currency has no point (null)."""
    rows = []
    points: dict[str, dict[str, dict[str, float | None]]] = {}
    labels = []
    for day, refunds, declined in per_day:
        labels.append(day.isoformat())
        captured = {c.currency: c for c in refunds.by_currency}
        payments = {c.currency: c for c in declined.by_currency}
        for currency in sorted(captured.keys() | payments.keys()):
            r, d = captured.get(currency), payments.get(currency)
            refund_part = (
                tuple(getattr(r, c.name) for c in tables.REFUND_RATE)
                if r is not None
                else (currency, 0, 0, 0, 0, 0, 0, None, None)
            )
            decline_part = tuple(getattr(d, f) for f in _DECLINE_FIELDS) if d is not None else (0, 0, 0, 0, None)
            row = (day, *refund_part, *decline_part)
            rows.append(row)
            named = dict(zip((c.name for c in RATES), row))
            points.setdefault(currency, {})[day.isoformat()] = {name: named[name] for name, _ in _RATE_LINES}
    charts = [
        Chart(
            id=f"rates-{currency}", title=f"{currency}: rates by amount", unit="rate", labels=labels,
            series=[Series(label, [points[currency].get(day, {}).get(name) for day in labels]) for name, label in _RATE_LINES],
        )
        for currency in sorted(points)
    ]
    return Table(RATES, rows), charts


# --- latency ----------------------------------------------------------------------------------

LATENCY_SERIES = (DATE, *tables.LATENCY)
_PERCENTILES = tuple((f"{label}_ms", label) for label, _ in PERCENTILES)  # (answer field, chart label)


def latency_series(per_day: Iterable[tuple[dt.date, Latency]]) -> tuple[Table, list[Chart]]:
    """Per UTC day and payment method: the latency report's row. One chart per method with its
    p50, p95 and p99 over the days (null where the method had no payment that day)."""
    rows = []
    labels = []
    points: dict[str, dict[str, dict[str, float | None]]] = {}
    for day, answer in per_day:
        labels.append(day.isoformat())
        for row in tables.latency(answer).rows:
            rows.append((day, *row))
            named = dict(zip((c.name for c in tables.LATENCY), row))
            points.setdefault(named["payment_method"], {})[day.isoformat()] = {k: named[k] for k, _ in _PERCENTILES}
    charts = [
        Chart(
            id=f"latency-{method}", title=f"{method}: authorization to completion", unit="ms", labels=labels,
            series=[Series(label, [points[method].get(day, {}).get(k) for day in labels]) for k, label in _PERCENTILES],
        )
        for method in sorted(points)
    ]
    return Table(LATENCY_SERIES, rows), charts


# --- pipeline ledger --------------------------------------------------------------------------


def run_url(dagster_ui_url: str, run_id: str) -> str:
    """The run's page in the Dagster UI."""
    return f"{dagster_ui_url.rstrip('/')}/runs/{run_id}"
