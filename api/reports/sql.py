"""SQL text of every report, defined once.

Plain SQL over public.curated_payments (columns: wallet_lake.contracts.schema) with
`%(name)s` placeholders bound by the driver, never values formatted into the text, so the
same statements can run on Postgres (psycopg) and on a lake fallback (DuckDB, after
translating placeholders). Keep to SQL both engines read alike; ordering and any shaping
happen in Python (api/reports/<report>.py), where they cannot differ between engines.

Reports planned: daily-recon (here), refund-rate, latency, declines; each is added as one
ReportQuery below and one entry in REPORT_QUERIES."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class ReportQuery:
    name: str
    sql: str

    @property
    def params(self) -> frozenset[str]:
        """Names of the placeholders the statement binds."""
        return frozenset(_PLACEHOLDER.findall(self.sql))

    def bind(self, **params: Any) -> dict[str, Any]:
        """The parameter dict for execute(), checked against the placeholders: a missing or
        extra name is a programming error, caught here rather than as a driver KeyError."""
        if set(params) != self.params:
            raise TypeError(f"{self.name}: expected parameters {sorted(self.params)}, got {sorted(params)}")
        return params


# daily-recon: for one merchant and one UTC day (dt), count and amount per (currency, status).
# Amounts are summed within a currency only; per-currency totals are derived from these rows.
DAILY_RECON = ReportQuery(
    name="daily-recon",
    sql="""
SELECT currency,
       status,
       count(*)          AS payment_count,
       sum(amount_cents) AS amount_cents
FROM public.curated_payments
WHERE dt = %(report_date)s
  AND merchant_id = %(merchant_id)s
GROUP BY currency, status
""".strip(),
)

REPORT_QUERIES: dict[str, ReportQuery] = {q.name: q for q in (DAILY_RECON,)}
