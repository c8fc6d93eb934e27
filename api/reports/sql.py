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

import re
from dataclasses import dataclass
from typing import Any

from wallet_lake.contracts.reports import CAPTURED_STATUSES, DECLINED

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


# latency: per payment_method over a dt range: count, sum and max exactly (totals), and p50, p95,
# p99 from the range's histogram (percentile_cont's interpolation over bucket representatives;
# error bound in wallet_lake.contracts.reports).
#
# The range's histogram is a signed sum of month-to-date histograms: for each month the range
# touches, + the last day with data up to `to` (counting from the month's first day), and - the
# last day with data before `from` in from's month (`month_from` is that month's first day). A
# month whose days in the range hold no data then cancels to zero.
#
# Arithmetic stays in integers until the last five rows: rep2 is twice a bucket's representative
# (its midpoint, clamped into the bucket's [min, max]), h_p = (n-1)*p in hundredths of a rank.
# `upto` counts the values up to and including a bucket, so the value at 0-based rank j is the
# rep of the first bucket with upto > j; the percentile interpolates between the ranks
# floor(h_p/100) and ceil(h_p/100), as percentile_cont does.
_PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
# Terms of a range of at most 366 days: one per month touched (13 at most) and one subtracted.
# The LIMIT also tells planners how few they are; LATERAL makes each one an index lookup.
_MAX_TERMS = 14
# Integers throughout (CAST ... AS BIGINT: Postgres sums bigints as numeric, slow to compute on).


def _latency_query(name: str, method_filter: str) -> ReportQuery:
    picks = ",\n           ".join(
        f"min(rep2) FILTER (WHERE upto * 100 > {h} - mod({h}, 100)) AS {label}_lo2,\n"
        f"           min(rep2) FILTER (WHERE upto * 100 > {h} - mod({h}, 100)"
        f" + CASE WHEN mod({h}, 100) > 0 THEN 100 ELSE 0 END) AS {label}_hi2,\n"
        f"           max(mod({h}, 100)) AS {label}_frac"
        for label, h in ((label, f"(n - 1) * {p}") for label, p in _PERCENTILES)
    )
    interpolated = ",\n       ".join(
        f"(p.{label}_lo2 * 100 + p.{label}_frac * (p.{label}_hi2 - p.{label}_lo2)) / 200.0 AS {label}_ms"
        for label, _ in _PERCENTILES
    )
    sql = f"""
WITH days AS (
    SELECT DISTINCT dt FROM report_latency_totals_daily WHERE dt BETWEEN %(month_from)s AND %(date_to)s
), terms AS (
    SELECT * FROM (
        SELECT max(dt) AS dt, 1 AS sign FROM days GROUP BY date_trunc('month', dt)
        UNION ALL
        SELECT max(dt) AS dt, -1 AS sign FROM days WHERE dt < %(date_from)s
    ) AS t
    LIMIT {_MAX_TERMS}
), merged AS (
    SELECT m.payment_method, m.bucket_lo, m.bucket_width,
           CAST(sum(t.sign * m.payment_count) AS BIGINT) AS c, min(m.min_ms) AS mn, max(m.max_ms) AS mx
    FROM terms AS t
    CROSS JOIN LATERAL (
        SELECT * FROM report_latency_mtd WHERE dt = t.dt{method_filter}
    ) AS m
    GROUP BY m.payment_method, m.bucket_lo, m.bucket_width
    HAVING sum(t.sign * m.payment_count) > 0
), ranked AS (
    SELECT payment_method,
           LEAST(GREATEST(2 * bucket_lo + bucket_width - 1, 2 * mn), 2 * mx) AS rep2,
           CAST(sum(c) OVER (PARTITION BY payment_method ORDER BY bucket_lo
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS upto,
           CAST(sum(c) OVER (PARTITION BY payment_method) AS BIGINT) AS n
    FROM merged
), picked AS (
    SELECT payment_method,
           {picks}
    FROM ranked
    GROUP BY payment_method
), totals AS (
    SELECT payment_method, sum(payment_count) AS payment_count, CAST(sum(sum_ms) AS BIGINT) AS sum_ms, max(max_ms) AS max_ms
    FROM report_latency_totals_daily
    WHERE dt BETWEEN %(date_from)s AND %(date_to)s{method_filter}
    GROUP BY payment_method
)
SELECT s.payment_method, s.payment_count, s.sum_ms, s.max_ms,
       {interpolated}
FROM totals AS s
JOIN picked AS p ON p.payment_method = s.payment_method
""".strip()
    return ReportQuery(name=name, sql=sql)


LATENCY = _latency_query("latency", "")
LATENCY_ONE_METHOD = _latency_query("latency/one-method", " AND payment_method = %(payment_method)s")

REPORT_QUERIES: dict[str, ReportQuery] = {
    q.name: q
    for q in (
        DAILY_RECON, DAILY_RECON_ALL, REFUND_RATE, REFUND_RATE_ALL,
        DECLINES, DECLINES_ALL, LATENCY, LATENCY_ONE_METHOD,
    )
}
