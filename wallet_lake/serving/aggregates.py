"""Report aggregates: what the reports API reads instead of scanning curated_payments.

Five relations, each defined once here as a SELECT over a relation of curated rows (or over
one of the others):

- report_status_daily: count and amount per (dt, merchant_id, currency, status, decline_reason);
- report_status_daily_all: the same summed over merchants;
- report_latency_daily: a histogram of authorized_to_complete_ms per (dt, payment_method);
- report_latency_totals_daily: count, sum and max per (dt, payment_method);
- report_latency_mtd: the histogram accumulated from the 1st of the month through each dt, so
  that a range's histogram is a signed sum of at most three days (one per month touched, minus
  the day before the range) rather than one per day: 31 days of 10M payments read ~5k rows, not
  ~50k. Refreshing a dt recomputes its month from that dt on (at most a month), never history.

On Postgres they are tables (migration 0002), refreshed per dt by `refresh_report_aggregates`.
On the lake (wallet_lake.lake.query) the same SELECTs are CTEs over the latest-record view, so
the report SQL reads the same relation names on both engines. Keep to SQL that Postgres, DuckDB
and Trino (Athena) read alike: positional GROUP BY, mod(), CASE, no casts with `::`.

Latency percentiles and their error bound
-----------------------------------------
A value v (ms) falls in the bucket [lo, lo + w) with w = 1 for v < 128 and, for
2^e <= v < 2^(e+1) (e >= 7), w = 2^e / 32, lo = v - mod(v, w) (32 buckets per power of two).
Each bucket keeps count, sum, min and max. A percentile is computed as percentile_cont would
over the raw values (linear interpolation between the order statistics at ranks floor and ceil
of (n-1)p), with every value replaced by its bucket's midpoint lo + (w-1)/2 clamped into the
bucket's [min, max]. That representative is within (w-1)/2 < v/64 of any value of the bucket,
and the map is monotone, so each order statistic is off by less than 1/64 (1.56%) of itself and
the interpolated percentile by less than 1.56% of the larger of its two order statistics. Below
128 ms, and in any bucket that holds a single distinct value, it is exact. Count, mean and max
are exact. (64 buckets per power of two would halve the bound and double the rows a latency
report reads: 4.1 ms instead of 2.3 ms for a 31-day report over 10M payments.)"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Iterable

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES

# Decline reason of DECLINED payments that have none (or an empty one); and the filler of the
# decline_reason key for every other status.
UNKNOWN = "unknown"
NOT_DECLINED = ""
DECLINED = "DECLINED"
if DECLINED not in ACCEPTED_STATUSES:  # the contract owns the statuses; fail loudly if it moves
    raise RuntimeError(f"{DECLINED!r} is not in contracts.lifecycle.ACCEPTED_STATUSES")

# --- latency histogram buckets -----------------------------------------------------------------
LATENCY_EXACT_BELOW_MS = 128  # 1 ms buckets below this: exact
LATENCY_SUB_BUCKETS = 32  # buckets per power of two above it
LATENCY_TOP_EXPONENT = 42  # 2^42 ms is 139 years; beyond, buckets stop growing (bound degrades)
# Bound on |percentile from the histogram - exact percentile| relative to the larger of the two
# order statistics it interpolates between (see the module docstring).
LATENCY_RELATIVE_ERROR = 1 / (2 * LATENCY_SUB_BUCKETS)


def latency_bucket_width(ms: int) -> int:
    """Width of the bucket holding `ms`; the Python twin of latency_width_sql (a test compares)."""
    if ms < LATENCY_EXACT_BELOW_MS:
        return 1
    e = min(ms.bit_length() - 1, LATENCY_TOP_EXPONENT)
    return (1 << e) // LATENCY_SUB_BUCKETS


def latency_bucket(ms: int) -> tuple[int, int]:
    """(bucket_lo, bucket_width) of a latency value."""
    w = latency_bucket_width(ms)
    return ms - ms % w, w


def latency_width_sql(column: str) -> str:
    """The bucket width of `column` as a portable CASE expression (no log2 in Postgres, no UDFs in Athena)."""
    first = LATENCY_EXACT_BELOW_MS.bit_length() - 1  # 7
    branches = [f"WHEN {column} < {LATENCY_EXACT_BELOW_MS} THEN 1"]
    for e in range(first, LATENCY_TOP_EXPONENT):
        branches.append(f"WHEN {column} < {1 << (e + 1)} THEN {(1 << e) // LATENCY_SUB_BUCKETS}")
    return f"CASE {' '.join(branches)} ELSE {(1 << LATENCY_TOP_EXPONENT) // LATENCY_SUB_BUCKETS} END"


# --- relation definitions ---------------------------------------------------------------------
# `{source}` is a relation of curated rows (a table name, a view, or a parenthesized subquery
# with an alias); `{daily}` a report_latency_daily-shaped relation (in LATENCY_MTD_SQL, a SELECT,
# inlined as subqueries so that Postgres plans with the table's statistics). They are filled
# from constants in code, never from request values.

STATUS_DAILY_COLUMNS = ("dt", "merchant_id", "currency", "status", "decline_reason", "payment_count", "amount_cents")
STATUS_DAILY_SQL = f"""
SELECT dt,
       merchant_id,
       currency,
       status,
       CASE WHEN status = '{DECLINED}' THEN coalesce(nullif(decline_reason, ''), '{UNKNOWN}')
            ELSE '{NOT_DECLINED}' END AS decline_reason,
       count(*)          AS payment_count,
       sum(amount_cents) AS amount_cents
FROM {{source}}
GROUP BY 1, 2, 3, 4, 5
""".strip()

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
LATENCY_DAILY_SQL = f"""
SELECT dt,
       payment_method,
       ms - mod(ms, {_WIDTH}) AS bucket_lo,
       {_WIDTH} AS bucket_width,
       count(*) AS payment_count,
       sum(ms)  AS sum_ms,
       min(ms)  AS min_ms,
       max(ms)  AS max_ms
FROM (
    SELECT dt,
           coalesce(nullif(payment_method, ''), '{UNKNOWN}') AS payment_method,
           authorized_to_complete_ms AS ms
    FROM {{source}}
    WHERE authorized_to_complete_ms IS NOT NULL
) AS latencies
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


# --- Postgres refresh -------------------------------------------------------------------------
# Advisory-lock namespace of aggregate refreshes ('wlra'); the second key is the dt's ordinal.
_LOCK_NAMESPACE = 0x776C7261
_DTS = "(SELECT * FROM public.curated_payments WHERE dt = ANY(%(dts)s)) AS changed"

_REFRESH_STATEMENTS: tuple[str, ...] = (
    "DELETE FROM public.report_status_daily WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_status_daily ({', '.join(STATUS_DAILY_COLUMNS)})\n"
    + STATUS_DAILY_SQL.format(source=_DTS),
    "DELETE FROM public.report_status_daily_all WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_status_daily_all ({', '.join(STATUS_DAILY_ALL_COLUMNS)})\n"
    + STATUS_DAILY_ALL_SQL.format(
        status_source="(SELECT * FROM public.report_status_daily WHERE dt = ANY(%(dts)s)) AS changed"
    ),
    "DELETE FROM public.report_latency_daily WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_latency_daily ({', '.join(LATENCY_DAILY_COLUMNS)})\n"
    + LATENCY_DAILY_SQL.format(source=_DTS),
    "DELETE FROM public.report_latency_totals_daily WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_latency_totals_daily ({', '.join(LATENCY_TOTALS_DAILY_COLUMNS)})\n"
    + LATENCY_TOTALS_DAILY_SQL.format(
        daily="(SELECT * FROM public.report_latency_daily WHERE dt = ANY(%(dts)s)) AS changed"
    ),
)

# Month to date, for one month from its first refreshed dt on (the days before keep their rows:
# they do not include the refreshed dts).
_MTD_STATEMENTS: tuple[str, ...] = (
    "DELETE FROM public.report_latency_mtd WHERE dt BETWEEN %(refresh_from)s AND %(month_end)s",
    f"INSERT INTO public.report_latency_mtd ({', '.join(LATENCY_MTD_COLUMNS)})\n"
    "SELECT * FROM (\n"
    + LATENCY_MTD_SQL.format(
        daily="SELECT * FROM public.report_latency_daily WHERE dt BETWEEN %(month_start)s AND %(month_end)s"
    )
    # In dt order: a report reads whole days, so each day's rows sit together on disk.
    + "\n) AS month_to_date WHERE dt >= %(refresh_from)s ORDER BY dt, payment_method, bucket_lo",
)


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day.replace(day=1)
    next_month = (start + dt.timedelta(days=32)).replace(day=1)
    return start, next_month - dt.timedelta(days=1)

# Marks left by the triggers of migration 0002; SKIP LOCKED so that two refreshes never wait on
# each other here (each takes the marks the other has not).
_DRAIN_MARKS = """
DELETE FROM public.report_aggregate_dirty_dts
WHERE id IN (SELECT id FROM public.report_aggregate_dirty_dts FOR UPDATE SKIP LOCKED)
RETURNING dt
""".strip()


def refresh_report_aggregates(conn, dts: Iterable[dt.date], *, include_marked: bool = True) -> list[dt.date]:
    """Recompute the report aggregates of exactly the given dts (plus, by default, the dts the
    triggers marked: those a payment left when its surviving record moved to a later dt), by
    delete + insert in one transaction; and the month-to-date latency rows from each month's
    first refreshed dt to the month's end. Returns the dts refreshed, sorted.

    Call it after loading rows, with the dts of the rows loaded (the Postgres asset: the dts of
    the landing hour's curated rows). Concurrent refreshes of the same dt serialize on an
    advisory lock, taken in dt order so they cannot deadlock. `conn` is a psycopg connection; in
    an open transaction this becomes a savepoint and the locks last until the caller commits."""
    wanted = set(dts)
    with conn.transaction():
        if include_marked:
            wanted.update(row[0] for row in conn.execute(_DRAIN_MARKS).fetchall())
        ordered = sorted(wanted)
        if not ordered:
            return []
        for day in ordered:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, day.toordinal()))
        # The month-to-date window sorts ~60k rows a month: keep the sort in memory.
        conn.execute("SET LOCAL work_mem = '64MB'")
        params = {"dts": ordered}
        for statement in _REFRESH_STATEMENTS:
            conn.execute(statement, params)
        first_per_month: dict[dt.date, dt.date] = {}
        for day in ordered:
            first_per_month.setdefault(day.replace(day=1), day)
        for refresh_from in first_per_month.values():
            month_start, month_end = _month_bounds(refresh_from)
            mtd = {"refresh_from": refresh_from, "month_start": month_start, "month_end": month_end}
            for statement in _MTD_STATEMENTS:
                conn.execute(statement, mtd)
    return ordered


def main(argv: list[str] | None = None) -> None:
    """`python -m wallet_lake.serving.aggregates [--dt YYYY-MM-DD ...] [--all]`: refresh by hand
    (after a manual load; the dts marked since, e.g. by migration 0002 for rows loaded before it,
    come along unless --no-marked)."""
    import psycopg

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--dt", action="append", default=[], type=dt.date.fromisoformat, help="a dt to refresh (repeatable)")
    parser.add_argument("--no-marked", action="store_true", help="do not also refresh the dts marked by the triggers")
    parser.add_argument("--all", action="store_true",
                        help="every dt of curated_payments (only after a change of the aggregates' definitions)")
    args = parser.parse_args(argv)
    with psycopg.connect(
        host=os.environ["WL_PG_HOST"], port=int(os.environ.get("WL_PG_PORT", "5432")), user=os.environ["WL_PG_USER"],
        password=os.environ["WL_PG_PASSWORD"], dbname=os.environ["WL_PG_DB"], autocommit=True,
    ) as conn:
        dts = list(args.dt)
        if args.all:
            dts += [r[0] for r in conn.execute("SELECT DISTINCT dt FROM public.curated_payments").fetchall()]
        done = refresh_report_aggregates(conn, dts, include_marked=not args.no_marked)
    print(f"refreshed {len(done)} dt(s)" + (f": {done[0]} .. {done[-1]}" if done else ""))


if __name__ == "__main__":
    main()
