"""Every report as a table: the columns of its CSV export (`format=csv` or `Accept: text/csv`) and
of the tables on the reports pages (api/ui), defined once here from the report's answer, so the
file a person downloads and the table they look at cannot drift apart.

Values stay as the answer has them: counts and amounts are exact integers (amounts in minor
units of the row's currency, never summed across currencies), rates are fractions (0.25, not
25%), times are UTC. CSV: RFC 4180 (comma, CRLF, a header row), empty cell for null, true/false
for booleans, ISO-8601 with Z for instants. Text cells that a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return: decline reasons and merchant ids come from
the processor's data) are prefixed with an apostrophe (OWASP's CSV injection advice); numbers
never are, so negative day-over-day changes stay numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, Literal

from api.reports.daily_recon import DailyRecon
from api.reports.declines import Declines
from api.reports.latency import Latency
from api.reports.pipeline_recon import PipelineRecon
from api.reports.refund_rate import RefundRate
from wallet_lake.serving.ledger import FIGURES as PIPELINE_FIGURES

# How a page shows a column (api/ui/templates/_table.html); CSV writes every kind as its value.
Kind = Literal["text", "date", "instant", "count", "amount", "change", "rate", "ms", "bool", "runs"]


@dataclass(frozen=True)
class Column:
    name: str  # the CSV header, and the answer's field name where there is one
    label: str  # the page's column heading
    kind: Kind


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.names)
        for row in self.rows:
            writer.writerow(cell_text(c.kind, v) for c, v in zip(self.columns, row))
        return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_text(kind: Kind, value: Any, *, guard: bool = True) -> str:
    """A cell as CSV writes it; `guard`: text a spreadsheet would run as a formula gets a
    leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if kind == "runs":
        return " ".join(value)
    if isinstance(value, str):
        return "'" + value if guard and value.startswith(_FORMULA_START) else value
    return str(value)  # int: exact at any size; float: shortest repr that reads back equal


def _col(name: str, label: str, kind: Kind) -> Column:
    return Column(name, label, kind)


CURRENCY = _col("currency", "Currency", "text")

DAILY_RECON = (
    CURRENCY,
    _col("status", "Status", "text"),
    _col("count", "Payments", "count"),
    _col("amount_cents", "Amount (minor units)", "amount"),
)


def daily_recon(answer: DailyRecon) -> Table:
    """One row per (currency, status) of the day (the answer's by_status)."""
    return Table(DAILY_RECON, [(s.currency, s.status, s.count, s.amount_cents) for s in answer.by_status])


REFUND_RATE = (
    CURRENCY,
    _col("captured_count", "Captured", "count"),
    _col("captured_amount_cents", "Captured amount (minor units)", "amount"),
    _col("refunded_count", "Refunded", "count"),
    _col("refunded_amount_cents", "Refunded amount (minor units)", "amount"),
    _col("chargeback_count", "Chargebacks", "count"),
    _col("chargeback_amount_cents", "Chargeback amount (minor units)", "amount"),
    _col("refund_amount_rate", "Refund rate (by amount)", "rate"),
    _col("chargeback_amount_rate", "Chargeback rate (by amount)", "rate"),
)


def refund_rate(answer: RefundRate) -> Table:
    """One row per currency with captured payments (the answer's by_currency)."""
    return Table(REFUND_RATE, [tuple(getattr(c, col.name) for col in REFUND_RATE) for c in answer.by_currency])


def declines(answer: Declines) -> Table:
    """One row per decline reason (most frequent first): its count, then its amount in each
    currency of the answer as a column `amount_cents_<CURRENCY>` (0 where the reason has none),
    so a spreadsheet can add a column up without mixing currencies or counting a payment twice."""
    currencies = [a.currency for a in answer.declined_amounts]
    columns = (
        _col("decline_reason", "Decline reason", "text"),
        _col("count", "Declined payments", "count"),
        *(_col(f"amount_cents_{c}", f"{c} amount (minor units)", "amount") for c in currencies),
    )
    rows = []
    for line in answer.by_reason:
        amounts = {a.currency: a.amount_cents for a in line.amounts}
        rows.append((line.decline_reason, line.count, *(amounts.get(c, 0) for c in currencies)))
    return Table(columns, rows)


LATENCY = (
    _col("payment_method", "Payment method", "text"),
    _col("count", "Payments", "count"),
    _col("mean_ms", "Mean (ms)", "ms"),
    _col("p50_ms", "p50 (ms)", "ms"),
    _col("p95_ms", "p95 (ms)", "ms"),
    _col("p99_ms", "p99 (ms)", "ms"),
    _col("max_ms", "Max (ms)", "ms"),
)


def latency(answer: Latency) -> Table:
    """One row per payment method (the answer's methods)."""
    return Table(LATENCY, [tuple(getattr(m, col.name) for col in LATENCY) for m in answer.methods])


PIPELINE_RECON = (
    _col("landing_hour", "Landing hour (UTC)", "instant"),
    *(_col(f, f.replace("_", " ").capitalize(), "count") for f in PIPELINE_FIGURES),
    _col("reconciled", "Reconciled", "bool"),
    _col("run_ids", "Dagster runs", "runs"),
    _col("first_difference", "First difference", "text"),
    _col("curation_run_id", "Curation run", "text"),
    _col("detail", "Detail", "text"),
)


def pipeline_recon(answer: PipelineRecon) -> Table:
    """One row per landing hour of the day. `run_ids`: the Dagster runs that recorded the hour's
    stages, each once, in flow order (space-separated in CSV)."""
    rows = []
    for h in answer.hours:
        runs = list(dict.fromkeys(h.runs[s] for s in PIPELINE_FIGURES if s in h.runs))
        rows.append(
            (h.landing_hour, *(getattr(h, f) for f in PIPELINE_FIGURES), h.reconciled, runs, h.first_difference,
             h.curation_run_id, h.detail)
        )
    return Table(PIPELINE_RECON, rows)

