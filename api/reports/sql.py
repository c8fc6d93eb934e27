"""SQL text of every report, defined once, for Postgres and the lake alike.

Reports read the report relations of wallet_lake.contracts.report_relations (report_status_daily,
report_status_daily_all, report_latency_daily): tables on Postgres, CTEs over the latest-record
view on the lake (wallet_lake.lake.query), so the same text runs on both. Values are bound by the
driver through `%(name)s` placeholders, never formatted into the text (the lake layer translates
placeholders for DuckDB; pyathena takes them as they are). Keep to SQL that Postgres, DuckDB and
Trino read alike (FILTER, window functions, CAST, no `::`); ordering and shaping happen in
Python (api/reports/<report>.py), where they cannot differ between engines.

Sums of amounts are DECIMAL(38,0) (the aggregates' type, numeric(38,0) in Postgres): exact
integers on every engine for any number of int64 amounts, so one extreme amount cannot overflow
a report; the runners turn them into Python ints (JSON numbers, exact). Counts stay integers.

Variants with and without a merchant (or payment_method) are separate statements rather than
`(%(m)s IS NULL OR merchant_id = %(m)s)`, so that each gets its own plan and the all-merchant
variant reads the small all-merchant table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wallet_lake import sql_placeholders
from wallet_lake.contracts.reports import CAPTURED_STATUSES, DECLINED


@dataclass(frozen=True)
class ReportQuery:
    name: str
    sql: str

    @property
    def params(self) -> frozenset[str]:
        """Names of the placeholders the statement binds."""
        return sql_placeholders.names(self.sql)

    def bind(self, **params: Any) -> dict[str, Any]:
        """The parameter dict for execute(), checked against the placeholders: a missing or
        extra name is a programming error, caught here rather than as a driver KeyError."""
        if set(params) != self.params:
            raise TypeError(f"{self.name}: expected parameters {sorted(self.params)}, got {sorted(params)}")
        return params


_MERCHANT = "merchant_id = %(merchant_id)s AND "


def _status_query(name: str, select: str, where: str, group_by: str, *, per_merchant: bool) -> ReportQuery:
    relation = "report_status_daily" if per_merchant else "report_status_daily_all"
    return ReportQuery(
        name=name,
        sql=f"SELECT {select}\nFROM {relation}\nWHERE {_MERCHANT if per_merchant else ''}{where}\nGROUP BY {group_by}",
    )


# daily-recon: count and amount per (currency, status) of one dt. Amounts are summed within a
# currency only; per-currency totals are derived from these rows.
_RECON = ("currency, status, sum(payment_count) AS payment_count, CAST(sum(amount_cents) AS DECIMAL(38, 0)) AS amount_cents",
          "dt = %(report_date)s", "currency, status")
DAILY_RECON = _status_query("daily-recon", *_RECON, per_merchant=True)
DAILY_RECON_ALL = _status_query("daily-recon/all-merchants", *_RECON, per_merchant=False)

# refund-rate: captured payments (CAPTURED_STATUSES) per (currency, status) over a dt range.
_CAPTURED_LIST = ", ".join(f"'{s}'" for s in CAPTURED_STATUSES)
_REFUNDS = ("currency, status, sum(payment_count) AS payment_count, CAST(sum(amount_cents) AS DECIMAL(38, 0)) AS amount_cents",
            f"dt BETWEEN %(date_from)s AND %(date_to)s AND status IN ({_CAPTURED_LIST})", "currency, status")
REFUND_RATE = _status_query("refund-rate", *_REFUNDS, per_merchant=True)
REFUND_RATE_ALL = _status_query("refund-rate/all-merchants", *_REFUNDS, per_merchant=False)

# declines: every payment of the range per currency, split by decline reason for DECLINED ones
# (decline_reason NULL in the result = not declined; those rows give the decline_rate denominator).
_DECLINES = (
    f"CASE WHEN status = '{DECLINED}' THEN decline_reason END AS decline_reason, currency, "
    "sum(payment_count) AS payment_count, CAST(sum(amount_cents) AS DECIMAL(38, 0)) AS amount_cents",
    "dt BETWEEN %(date_from)s AND %(date_to)s",
    f"CASE WHEN status = '{DECLINED}' THEN decline_reason END, currency",
)
DECLINES = _status_query("declines", *_DECLINES, per_merchant=True)
DECLINES_ALL = _status_query("declines/all-merchants", *_DECLINES, per_merchant=False)


# latency: per payment_method over a dt range: count, sum and max exactly (the totals), and p50,
# p95, p99 from the range's histogram, computed in Python (api/reports/latency_histograms.py,
# error bound in wallet_lake.contracts.reports) from the histogram rows this statement returns.
#
# The range's histogram is a signed sum of month-to-date histograms (the terms): for each month
# the range touches, + the last day with data up to `to` (counting from the month's first day),
# and - the last day with data before `from` in from's month (`month_from` is that month's first
# day). A month whose days in the range hold no data then cancels to zero.
#
# One statement, rows of two kinds (`row_kind`): 'total' (payment_method, payment_count, sum_ms,
# max_ms over [from, to]) and 'bucket' (a term's histogram row: term_dt, term_sign and the
# report_latency_mtd columns), so totals and histograms come from one snapshot of the lake.
# Postgres serves the report from histograms each API worker keeps per dt instead, reading only
# the totals and the terms (api/reports/kept_histograms.py, LATENCY_TERMS built here).
LATENCY_TOTAL, LATENCY_BUCKET, LATENCY_TERM = "total", "bucket", "term"
# Terms of a range of at most 366 days: one per month touched (13 at most) and one subtracted.
# The LIMIT also tells planners how few they are; LATERAL makes each one an index lookup.
_MAX_TERMS = 14
ONE_METHOD_FILTER = " AND payment_method = %(payment_method)s"


def latency_ctes(method_filter: str) -> str:
    """The WITH list every latency statement starts from: `days` with data, the signed `terms`,
    and the exact `totals` per method (CAST ... AS BIGINT: Postgres sums bigints as numeric)."""
    return f"""
WITH days AS (
    SELECT DISTINCT dt FROM report_latency_totals_daily WHERE dt BETWEEN %(month_from)s AND %(date_to)s
), terms AS (
    SELECT * FROM (
        SELECT max(dt) AS dt, 1 AS sign FROM days GROUP BY date_trunc('month', dt)
        UNION ALL
        SELECT max(dt) AS dt, -1 AS sign FROM days WHERE dt < %(date_from)s
    ) AS t
    LIMIT {_MAX_TERMS}
), totals AS (
    SELECT payment_method, CAST(sum(payment_count) AS BIGINT) AS payment_count, CAST(sum(sum_ms) AS BIGINT) AS sum_ms,
           CAST(max(max_ms) AS BIGINT) AS max_ms
    FROM report_latency_totals_daily
    WHERE dt BETWEEN %(date_from)s AND %(date_to)s{method_filter}
    GROUP BY payment_method
)""".strip()


def _latency_query(name: str, method_filter: str) -> ReportQuery:
    sql = f"""
{latency_ctes(method_filter)}
SELECT '{LATENCY_TOTAL}' AS row_kind, payment_method, payment_count, sum_ms, max_ms,
       CAST(NULL AS DATE) AS term_dt, CAST(NULL AS INTEGER) AS term_sign,
       CAST(NULL AS BIGINT) AS bucket_lo, CAST(NULL AS BIGINT) AS bucket_width, CAST(NULL AS BIGINT) AS min_ms
FROM totals
UNION ALL
SELECT '{LATENCY_BUCKET}', m.payment_method, CAST(m.payment_count AS BIGINT), CAST(NULL AS BIGINT), CAST(m.max_ms AS BIGINT),
       t.dt, t.sign, CAST(m.bucket_lo AS BIGINT), CAST(m.bucket_width AS BIGINT), CAST(m.min_ms AS BIGINT)
FROM terms AS t
CROSS JOIN LATERAL (
    SELECT * FROM report_latency_mtd WHERE dt = t.dt{method_filter}
) AS m
""".strip()
    return ReportQuery(name=name, sql=sql)


LATENCY = _latency_query("latency", "")
LATENCY_ONE_METHOD = _latency_query("latency/one-method", ONE_METHOD_FILTER)

REPORT_QUERIES: dict[str, ReportQuery] = {
    q.name: q
    for q in (
        DAILY_RECON, DAILY_RECON_ALL, REFUND_RATE, REFUND_RATE_ALL,
        DECLINES, DECLINES_ALL, LATENCY, LATENCY_ONE_METHOD,
    )
}
