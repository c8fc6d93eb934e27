"""The report relations, each defined once as a SELECT over a relation of curated rows (or over
one of the others), for every engine: Postgres tables refreshed per dt by
serving/aggregates.py (migration 0002), CTEs over the latest-record view on the lake
(lake/query.py), so the report SQL (api/reports/sql.py) reads the same relation names on both.

- report_status_daily: count and amount per (dt, merchant_id, currency, status, decline_reason);
- report_status_daily_all: the same summed over merchants;
- report_latency_daily: a histogram of authorized_to_complete_ms per (dt, payment_method);
- report_latency_totals_daily: count, sum and max per (dt, payment_method);
- report_latency_mtd: the histogram accumulated from the 1st of the month through each dt, so
  that a range's histogram is a signed sum of at most three days (one per month touched, minus
  the day before the range) rather than one per day: 31 days of 10M payments read ~5k rows, not
  ~50k. Refreshing a dt recomputes its month from that dt on (at most a month), never history.

The vocabulary and the latency buckets (and their error bound) are contracts/reports.py's. Keep
to SQL that Postgres, DuckDB and Trino (Athena) read alike: positional GROUP BY, mod(), CASE, no
casts with `::`."""

from __future__ import annotations

from wallet_lake.contracts.reports import DECLINED, NOT_DECLINED, UNKNOWN, latency_width_sql

# `{source}` is a relation of curated rows (a table name, a view, or a parenthesized subquery
# with an alias); `{daily}` a report_latency_daily-shaped relation (in LATENCY_MTD_SQL, a SELECT,
# inlined as subqueries so that Postgres plans with the table's statistics). They are filled
# from constants in code, never from request values.

# Amounts are summed as DECIMAL(38,0): exact for any number of int64 amounts (the contract admits
# up to 2^63-1, so two of them already overflow a bigint sum; Trino's sum(bigint) would fail the
# whole dt). 38 digits hold 10^19 maximal amounts. Postgres stores them as numeric(38,0).
_EXACT_AMOUNT = "CAST(amount_cents AS DECIMAL(38, 0))"
STATUS_DAILY_COLUMNS = ("dt", "merchant_id", "currency", "status", "decline_reason", "payment_count", "amount_cents")
_STATUS_SQL = f"""
SELECT {{grain}}
       merchant_id,
       currency,
       status,
       CASE WHEN status = '{DECLINED}' THEN coalesce(nullif(decline_reason, ''), '{UNKNOWN}')
            ELSE '{NOT_DECLINED}' END AS decline_reason,
       count(*)          AS payment_count,
       sum({_EXACT_AMOUNT}) AS amount_cents
FROM {{{{source}}}}
GROUP BY {{group}}
""".strip()
STATUS_DAILY_SQL = _STATUS_SQL.format(grain="dt,", group="1, 2, 3, 4, 5")

STATUS_DAILY_ALL_COLUMNS = ("dt", "currency", "status", "decline_reason", "payment_count", "amount_cents")
# Over report_status_daily-shaped rows: summing the per-merchant aggregate is cheaper than
# aggregating the payments again.
STATUS_DAILY_ALL_SQL = """
SELECT dt,
       currency,
       status,
       decline_reason,
       sum(payment_count) AS payment_count,
       sum(amount_cents)  AS amount_cents
FROM {status_source}
GROUP BY 1, 2, 3, 4
""".strip()

LATENCY_DAILY_COLUMNS = (
    "dt", "payment_method", "bucket_lo", "bucket_width", "payment_count", "sum_ms", "min_ms", "max_ms",
)
_WIDTH = latency_width_sql("ms")
_LATENCY_SQL = f"""
SELECT {{grain}}
       payment_method,
       ms - mod(ms, {_WIDTH}) AS bucket_lo,
       {_WIDTH} AS bucket_width,
       count(*) AS payment_count,
       sum(ms)  AS sum_ms,
       min(ms)  AS min_ms,
       max(ms)  AS max_ms
FROM (
    SELECT {{grain}}
           coalesce(nullif(payment_method, ''), '{UNKNOWN}') AS payment_method,
           authorized_to_complete_ms AS ms
    FROM {{{{source}}}}
    WHERE authorized_to_complete_ms IS NOT NULL
) AS latencies
GROUP BY {{group}}
""".strip()
LATENCY_DAILY_SQL = _LATENCY_SQL.format(grain="dt,", group="1, 2, 3, 4")

# Postgres keeps the two per-payment relations also per (dt, hour) of the curated rows
# (migration 0009): a load changes a few hours of a day, and the refresh recomputes only those
# hours' partials from curated_payments, then the day from its (at most 24) partials. The roll-
# ups are exact: counts and amounts add up, min of mins, max of maxes.
STATUS_HOURLY_COLUMNS = ("dt", "hour", *STATUS_DAILY_COLUMNS[1:])
STATUS_HOURLY_SQL = _STATUS_SQL.format(grain="dt, hour,", group="1, 2, 3, 4, 5, 6")
STATUS_DAILY_FROM_HOURLY_SQL = """
SELECT dt, merchant_id, currency, status, decline_reason,
       sum(payment_count) AS payment_count,
       sum(amount_cents)  AS amount_cents
FROM {hourly}
GROUP BY 1, 2, 3, 4, 5
""".strip()
LATENCY_HOURLY_COLUMNS = ("dt", "hour", *LATENCY_DAILY_COLUMNS[1:])
LATENCY_HOURLY_SQL = _LATENCY_SQL.format(grain="dt, hour,", group="1, 2, 3, 4, 5")
LATENCY_DAILY_FROM_HOURLY_SQL = """
SELECT dt, payment_method, bucket_lo, bucket_width,
       sum(payment_count) AS payment_count,
       sum(sum_ms)        AS sum_ms,
       min(min_ms)        AS min_ms,
       max(max_ms)        AS max_ms
FROM {hourly}
GROUP BY 1, 2, 3, 4
""".strip()

LATENCY_TOTALS_DAILY_COLUMNS = ("dt", "payment_method", "payment_count", "sum_ms", "max_ms")
# Over report_latency_daily-shaped rows.
LATENCY_TOTALS_DAILY_SQL = """
SELECT dt,
       payment_method,
       sum(payment_count) AS payment_count,
       sum(sum_ms)        AS sum_ms,
       max(max_ms)        AS max_ms
FROM {daily}
GROUP BY 1, 2
""".strip()

LATENCY_MTD_COLUMNS = ("dt", "payment_method", "bucket_lo", "bucket_width", "payment_count", "min_ms", "max_ms")
# Over report_latency_daily-shaped rows: for every day with data and every bucket seen in that
# day's month, the running count (and min, max) from the month's first day; buckets not yet
# seen by that day (count 0) are left out. date_trunc('month', ...) only groups and compares, so
# its result type (timestamp in Postgres, date elsewhere) does not matter.
_MONTH_RUNNING = (
    "OVER (PARTITION BY date_trunc('month', g.dt), g.payment_method, g.bucket_lo ORDER BY g.dt"
    " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
)
LATENCY_MTD_SQL = f"""
SELECT dt, payment_method, bucket_lo, bucket_width, payment_count, min_ms, max_ms
FROM (
    SELECT g.dt, g.payment_method, g.bucket_lo, g.bucket_width,
           sum(coalesce(h.payment_count, 0)) {_MONTH_RUNNING} AS payment_count,
           min(h.min_ms) {_MONTH_RUNNING} AS min_ms,
           max(h.max_ms) {_MONTH_RUNNING} AS max_ms
    FROM (
        SELECT d.dt, k.payment_method, k.bucket_lo, k.bucket_width
        FROM (SELECT DISTINCT dt FROM ({{daily}}) AS days) AS d
        JOIN (SELECT DISTINCT date_trunc('month', dt) AS month, payment_method, bucket_lo, bucket_width
              FROM ({{daily}}) AS buckets) AS k
          ON k.month = date_trunc('month', d.dt)
    ) AS g
    LEFT JOIN ({{daily}}) AS h
      ON h.dt = g.dt AND h.payment_method = g.payment_method AND h.bucket_lo = g.bucket_lo
) AS running
WHERE payment_count > 0
""".strip()


def relation_ctes(curated_source: str) -> list[tuple[str, str]]:
    """(name, SELECT) of the report relations over a relation of current-state curated rows, in
    dependency order, for engines that compute them per query (the lake)."""
    return [
        ("report_status_daily", STATUS_DAILY_SQL.format(source=curated_source)),
        ("report_status_daily_all", STATUS_DAILY_ALL_SQL.format(status_source="report_status_daily")),
        ("report_latency_daily", LATENCY_DAILY_SQL.format(source=curated_source)),
        ("report_latency_totals_daily", LATENCY_TOTALS_DAILY_SQL.format(daily="report_latency_daily")),
        ("report_latency_mtd", LATENCY_MTD_SQL.format(daily="SELECT * FROM report_latency_daily")),
    ]
