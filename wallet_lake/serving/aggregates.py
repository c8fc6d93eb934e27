"""Report aggregates on Postgres: the report relations (contracts/report_relations.py) kept as
tables (migration 0002) that the reports API reads instead of scanning curated_payments.

`refresh_report_aggregates` recomputes the changed (dt, hour)s' partials from curated_payments
and their dts' daily rows from the partials (migration 0009). Every change to curated_payments
marks its (dt, hour) in report_aggregate_dirty_dts (migrations 0005, 0009); the refresher sensor
drains the marks (`drain_marks`), and a report's `as_of` comes from the marks still pending
(`AS_OF_SQL`, per dt).
On the lake (wallet_lake.lake.query) the same SELECTs are CTEs over the latest-record view."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wallet_lake.contracts.report_relations import (
    LATENCY_DAILY_COLUMNS,
    LATENCY_DAILY_FROM_HOURLY_SQL,
    LATENCY_HOURLY_COLUMNS,
    LATENCY_HOURLY_SQL,
    LATENCY_MTD_COLUMNS,
    LATENCY_MTD_SQL,
    LATENCY_TOTALS_DAILY_COLUMNS,
    LATENCY_TOTALS_DAILY_SQL,
    STATUS_DAILY_ALL_COLUMNS,
    STATUS_DAILY_ALL_SQL,
    STATUS_DAILY_COLUMNS,
    STATUS_DAILY_FROM_HOURLY_SQL,
    STATUS_HOURLY_COLUMNS,
    STATUS_HOURLY_SQL,
)
from wallet_lake.settings import AggregatesRefreshSettings, default, load

# --- Postgres refresh -------------------------------------------------------------------------
# Advisory-lock namespace of aggregate refreshes ('wlrm'); the second key is the ordinal of the
# first day of the month. Per month, not per dt: a refresh rewrites the month-to-date rows from
# its first dt to the month's end out of every day of the month, so two refreshes of different
# dts of one month would insert the same month-to-date keys (a unique violation) or write one
# from the other's stale days.
_LOCK_NAMESPACE = 0x776C726D

# The (dt, hour)s to recompute, as two parallel arrays: the changed hours' curated rows are read
# through the (dt, hour) index, never the rest of their dts.
_HOURS = "unnest(%(hour_dts)s::date[], %(hours)s::integer[]) AS h(dt, hour)"
_CHANGED_HOURS = (
    f"(SELECT c.* FROM public.curated_payments AS c JOIN {_HOURS} ON c.dt = h.dt AND c.hour = h.hour) AS changed"
)

_REFRESH_STATEMENTS: tuple[str, ...] = (
    # The changed hours' partials (migration 0009), then their dts' daily rows from the partials.
    f"DELETE FROM public.report_status_hourly AS p USING {_HOURS} WHERE p.dt = h.dt AND p.hour = h.hour",
    f"INSERT INTO public.report_status_hourly ({', '.join(STATUS_HOURLY_COLUMNS)})\n"
    + STATUS_HOURLY_SQL.format(source=_CHANGED_HOURS),
    "DELETE FROM public.report_status_daily WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_status_daily ({', '.join(STATUS_DAILY_COLUMNS)})\n"
    + STATUS_DAILY_FROM_HOURLY_SQL.format(
        hourly="(SELECT * FROM public.report_status_hourly WHERE dt = ANY(%(dts)s)) AS hourly"
    ),
    "DELETE FROM public.report_status_daily_all WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_status_daily_all ({', '.join(STATUS_DAILY_ALL_COLUMNS)})\n"
    + STATUS_DAILY_ALL_SQL.format(
        status_source="(SELECT * FROM public.report_status_daily WHERE dt = ANY(%(dts)s)) AS changed"
    ),
    f"DELETE FROM public.report_latency_hourly AS p USING {_HOURS} WHERE p.dt = h.dt AND p.hour = h.hour",
    f"INSERT INTO public.report_latency_hourly ({', '.join(LATENCY_HOURLY_COLUMNS)})\n"
    + LATENCY_HOURLY_SQL.format(source=_CHANGED_HOURS),
    "DELETE FROM public.report_latency_daily WHERE dt = ANY(%(dts)s)",
    f"INSERT INTO public.report_latency_daily ({', '.join(LATENCY_DAILY_COLUMNS)})\n"
    + LATENCY_DAILY_FROM_HOURLY_SQL.format(
        hourly="(SELECT * FROM public.report_latency_hourly WHERE dt = ANY(%(dts)s)) AS hourly"
    ),
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

# Marks left by the triggers (migrations 0002, 0005, 0009): every change to curated_payments
# marks its (dt, hour)s (hour NULL: the whole dt). A refresh takes its months' advisory locks
# first, then deletes exactly the marks of those dts (or months) its DELETE sees, and recomputes
# them in later statements of the same transaction, which see every change committed before that
# DELETE; a mark committed afterwards stays for the next refresh. Locks before marks: whoever
# rolls a dt up from its hourly partials holds every pending mark of that dt, so no refresh rolls
# a dt up while another holds (and has not yet recomputed) some of its hours, or its whole-dt
# mark (the partials of a dt marked whole may be missing, e.g. right after migration 0009). SKIP
# LOCKED stays as a guard; under the month lock no other refresh holds these marks.
_MARKED_MONTHS = "SELECT DISTINCT date_trunc('month', dt)::date FROM public.report_aggregate_dirty_dts"
_DRAIN_MARKS_OF_MONTHS = """
DELETE FROM public.report_aggregate_dirty_dts
WHERE id IN (SELECT id FROM public.report_aggregate_dirty_dts
             WHERE date_trunc('month', dt)::date = ANY(%(months)s) FOR UPDATE SKIP LOCKED)
RETURNING dt, hour
""".strip()
_DRAIN_MARKS_OF_DTS = """
DELETE FROM public.report_aggregate_dirty_dts
WHERE id IN (SELECT id FROM public.report_aggregate_dirty_dts WHERE dt = ANY(%(dts)s) FOR UPDATE SKIP LOCKED)
RETURNING dt, hour
""".strip()

HOURS_PER_DAY = 24


def changed_hours(whole_dts: Iterable[dt.date], hours: Iterable[tuple[dt.date, int | None]]) -> tuple[list[dt.date], list[tuple[dt.date, int]]]:
    """(dts, (dt, hour)s) to recompute: every hour of each whole dt and of each (dt, None), plus
    the (dt, hour)s given; both sorted, without repeats. Pure."""
    whole = set(whole_dts)
    some: set[tuple[dt.date, int]] = set()
    for day, hour in hours:
        if hour is None:
            whole.add(day)
        elif 0 <= hour < HOURS_PER_DAY:
            some.add((day, hour))
        else:
            raise ValueError(f"hour {hour} of {day} is not an hour of a day (0-23)")
    some.update((day, hour) for day in whole for hour in range(HOURS_PER_DAY))
    pairs = sorted(some)
    return sorted({day for day, _ in pairs}), pairs


def _month_lock_keys(days: Iterable[dt.date]) -> list[int]:
    """Second keys of the advisory locks covering `days`, in the order they are taken."""
    return sorted({day.replace(day=1).toordinal() for day in days})


def _rewrite(conn, ordered: list[dt.date], pairs: list[tuple[dt.date, int]]) -> None:
    """Delete + insert the partials of `pairs` and the daily aggregates of `ordered` (sorted dts,
    those of `pairs`, whose months' locks are held)."""
    # The month-to-date window sorts ~60k rows a month: keep the sort in memory.
    conn.execute("SET LOCAL work_mem = '64MB'")
    params = {"dts": ordered, "hour_dts": [day for day, _ in pairs], "hours": [hour for _, hour in pairs]}
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


def refresh_report_aggregates(conn, dts: Iterable[dt.date] = (), *, hours: Iterable[tuple[dt.date, int]] = (),
                              include_marked: bool = True) -> list[dt.date]:
    """Recompute the report aggregates of exactly the given dts (every hour) and (dt, hour)s
    (plus, by default, everything the triggers marked), by delete + insert in one transaction;
    and the month-to-date latency rows from each month's first refreshed dt to the month's end.
    Every mark of the dts refreshed is drained with them. Returns the dts refreshed, sorted.

    Call it after loading rows, with the (dt, hour)s of the rows loaded (the Postgres asset: those
    of the landing hour's curated rows); the refresher sensor drains the rest (drain_marks).
    Concurrent refreshes of one month serialize on an advisory lock (waiting for it), taken in
    month order so they cannot deadlock. `conn` is a psycopg connection; in an open transaction
    this becomes a savepoint and the locks last until the caller commits."""
    whole, some = set(dts), set(hours)
    wanted = whole | {day for day, _ in some}
    with conn.transaction():
        months = {day.replace(day=1) for day in wanted}
        if include_marked:  # the months with marks now; marks of other months made later wait
            months.update(row[0] for row in conn.execute(_MARKED_MONTHS).fetchall())
        if not months:
            return []
        for key in _month_lock_keys(months):
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, key))
        if include_marked:
            drained = conn.execute(_DRAIN_MARKS_OF_MONTHS, {"months": sorted(months)}).fetchall()
        else:
            drained = conn.execute(_DRAIN_MARKS_OF_DTS, {"dts": sorted(wanted)}).fetchall()
        ordered, pairs = changed_hours(whole, [*some, *((day, hour) for day, hour in drained)])
        if ordered:
            _rewrite(conn, ordered, pairs)
    return ordered


# --- freshness and the refresher --------------------------------------------------------------
# A report's `as_of`: the aggregates reflect every change committed to curated_payments before
# it. A change's mark carries marked_at = the start of its transaction, before its commit, and
# leaves only when a refresh that read the change commits; so with no mark pending for a dt the
# answer reads, everything committed before the read is in; otherwise everything committed before
# the oldest pending mark is. Read it in the report's own statement (api/reports/answer_cache.py;
# a separate read must come before the report's: a later snapshot only reflects more). LEAST
# ignores NULL: now() (no pending mark) is the transaction's start, which precedes the
# statement's snapshot.
AS_OF_SQL = """
SELECT least(min(marked_at), now()) AS as_of
FROM public.report_aggregate_dirty_dts
WHERE dt BETWEEN %(first_dt)s AND %(last_dt)s
""".strip()

PENDING_MARKS_SQL = """
SELECT dt, count(*) AS marks, min(marked_at) AS oldest, now() AS db_now, max(marked_at) AS newest
FROM public.report_aggregate_dirty_dts
GROUP BY dt
""".strip()

PENDING_SUMMARY_SQL = """
SELECT count(*), extract(epoch FROM now() - min(marked_at))
FROM public.report_aggregate_dirty_dts
""".strip()


@dataclass(frozen=True)
class PendingDt:
    """The marks waiting for one dt: how many, and when the oldest (and newest) was made
    (Postgres' clock)."""

    day: dt.date
    marks: int
    oldest: dt.datetime
    newest: dt.datetime | None = None  # None: as old as `oldest`


def settled_dts(pending: Iterable[PendingDt], now: dt.datetime, *, quiet_s: float, max_defer_s: float) -> tuple[list[PendingDt], list[PendingDt]]:
    """(due, deferred): a dt still being written (a mark newer than `quiet_s`) is deferred, since
    refreshing it now is repeated by the next write (and the load's own Postgres step refreshes
    it once the load is in), unless its oldest mark is `max_defer_s` old: a dt written without
    pause is still refreshed that often. Every dt is due with quiet_s = 0. Pure."""
    due: list[PendingDt] = []
    deferred: list[PendingDt] = []
    for p in pending:
        newest = p.newest or p.oldest
        busy = (now - newest).total_seconds() < quiet_s
        overdue = (now - p.oldest).total_seconds() >= max_defer_s
        (deferred if busy and not overdue else due).append(p)
    return due, deferred


def plan_refresh_batches(pending: Iterable[PendingDt], max_dts: int) -> list[list[dt.date]]:
    """The marked dts in refresh order: batches of one month each (the month-to-date rows are
    rewritten once per batch, from its first dt on), at most `max_dts` sorted dts per batch (so a
    batch's duration stays bounded), the batch holding the oldest mark first (staleness is what
    the refresher bounds). Pure."""
    if max_dts < 1:
        raise ValueError(f"max_dts must be at least 1, not {max_dts}")
    by_month: dict[dt.date, list[PendingDt]] = {}
    for p in pending:
        by_month.setdefault(p.day.replace(day=1), []).append(p)
    batches: list[tuple[dt.datetime, list[dt.date]]] = []
    for days in by_month.values():
        days.sort(key=lambda p: p.day)
        for i in range(0, len(days), max_dts):
            chunk = days[i : i + max_dts]
            batches.append((min(p.oldest for p in chunk), [p.day for p in chunk]))
    batches.sort(key=lambda b: (b[0], b[1][0]))
    return [days for _, days in batches]


def next_batch_fits(elapsed_s: float, longest_batch_s: float, budget_s: float) -> bool:
    """Whether to start another batch after the first of a tick (which always starts, so that
    every tick makes progress): one as long as the longest so far must still end within the
    budget. Pure."""
    return elapsed_s + longest_batch_s <= budget_s


def refresh_marked_batch(conn, dts: list[dt.date]) -> int | None:
    """Refresh one batch of marked dts and drain exactly the marks of those dts its DELETE sees,
    in one transaction; the number of marks drained, or None when another refresh holds one of
    the batch's months (nothing done: its marks stay for a later try). Never waits for a lock,
    so a refresher's tick stays within its budget while the Postgres asset refreshes."""
    ordered = sorted(set(dts))
    with conn.transaction():
        for key in _month_lock_keys(ordered):
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, key)).fetchone()[0]:
                return None
        drained = conn.execute(_DRAIN_MARKS_OF_DTS, {"dts": ordered}).fetchall()
        # A batch dt without marks now was refreshed by another refresh since they were read.
        days, pairs = changed_hours([], drained)
        if days:
            _rewrite(conn, days, pairs)
    return len(drained)


@dataclass
class DrainReport:
    """What one drain did, as numbers for the sensor's observation."""

    dts_refreshed: list[dt.date] = field(default_factory=list)
    dts_deferred: list[dt.date] = field(default_factory=list)  # still being written (settled_dts)
    marks_drained: int = 0
    batches_done: int = 0
    batches_busy: int = 0  # another refresh held the month: left for the next tick
    batches_left: int = 0  # not started: the budget was spent
    seconds: float = 0.0
    oldest_mark_age_before_s: float | None = None  # the staleness the tick started from
    pending_marks_after: int = 0
    oldest_mark_age_after_s: float | None = None
    failures: dict[str, str] = field(default_factory=dict)  # "dt,dt": error, for batches that raised


def drain_marks(conn, *, budget_s: float, max_dts: int, quiet_s: float = 0.0, max_defer_s: float = 0.0,
                clock=time.monotonic) -> DrainReport:
    """Refresh the marked dts, oldest mark first, one batch (transaction) at a time, starting
    batches only while the budget allows (next_batch_fits); dts still being written wait while
    settled_dts defers them (`quiet_s`, `max_defer_s`). `conn` must be in autocommit mode, so
    each batch commits on its own. A batch that fails on its data (not on the connection) is
    recorded in `failures` and the others still run; connection errors propagate."""
    import psycopg

    if not conn.autocommit:
        raise ValueError("drain_marks needs an autocommit connection: each batch is its own transaction")
    started = clock()
    report = DrainReport()
    rows = conn.execute(PENDING_MARKS_SQL).fetchall()
    pending = [PendingDt(d, n, oldest, newest) for d, n, oldest, _, newest in rows]
    if rows:  # ages on Postgres' clock, the one marked_at is on
        report.oldest_mark_age_before_s = max(0.0, (rows[0][3] - min(p.oldest for p in pending)).total_seconds())
        pending, deferred = settled_dts(pending, rows[0][3], quiet_s=quiet_s, max_defer_s=max_defer_s)
        report.dts_deferred = sorted(p.day for p in deferred)
    batches = plan_refresh_batches(pending, max_dts)
    longest = 0.0
    for i, batch in enumerate(batches):
        if i and not next_batch_fits(clock() - started, longest, budget_s):  # the first always runs
            report.batches_left = len(batches) - i
            break
        t = clock()
        try:
            drained = refresh_marked_batch(conn, batch)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # Postgres went away: nothing more to do this tick
        except psycopg.DatabaseError as exc:  # this batch's data: the other dts must not wait on it
            report.failures[",".join(map(str, batch))] = str(exc).strip()[:500]
            continue
        finally:
            longest = max(longest, clock() - t)
        if drained is None:
            report.batches_busy += 1
            continue
        report.batches_done += 1
        report.marks_drained += drained
        report.dts_refreshed += batch
    count, age = conn.execute(PENDING_SUMMARY_SQL).fetchone()
    report.pending_marks_after = count
    report.oldest_mark_age_after_s = None if age is None else max(0.0, float(age))
    report.seconds = clock() - started
    return report


@dataclass(frozen=True)
class RefresherSettings:
    """The report aggregates refresher's settings (declared once, with bounds and docs:
    wallet_lake/settings.py AggregatesRefreshSettings)."""

    interval_s: int = default(AggregatesRefreshSettings, "aggregates_refresh_interval_s")
    budget_s: float = default(AggregatesRefreshSettings, "aggregates_refresh_budget_s")
    # A batch runs to its end even past the budget: its dts' refresh time (~1.2 s per 110k
    # payments) must stay well below the sensor timeout.
    max_dts_per_batch: int = default(AggregatesRefreshSettings, "aggregates_refresh_batch_dts")
    quiet_s: float = default(AggregatesRefreshSettings, "aggregates_refresh_quiet_s")
    max_defer_s: float = default(AggregatesRefreshSettings, "aggregates_refresh_max_defer_s")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RefresherSettings:
        s = load(AggregatesRefreshSettings, env)
        settings = cls(interval_s=s.aggregates_refresh_interval_s, budget_s=s.aggregates_refresh_budget_s,
                       max_dts_per_batch=s.aggregates_refresh_batch_dts, quiet_s=s.aggregates_refresh_quiet_s,
                       max_defer_s=s.aggregates_refresh_max_defer_s)
        # Dagster abandons a sensor evaluation after this many seconds (its own variable).
        timeout = s.dagster_sensor_grpc_timeout_seconds
        if not settings.budget_s < timeout:
            raise ValueError(
                f"WL_AGGREGATES_REFRESH_BUDGET_S={settings.budget_s:g} must be below the sensor timeout "
                f"DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS={timeout:g} (about half of it leaves room for the last batch)"
            )
        return settings


def main(argv: list[str] | None = None) -> None:
    """`python -m wallet_lake.serving.aggregates [--dt YYYY-MM-DD ...] [--all]`: refresh by hand
    (after a manual load; the dts marked since, e.g. by migration 0002 for rows loaded before it,
    come along unless --no-marked)."""
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--dt", action="append", default=[], type=dt.date.fromisoformat, help="a dt to refresh (repeatable)")
    parser.add_argument("--no-marked", action="store_true", help="do not also refresh the dts marked by the triggers")
    parser.add_argument("--all", action="store_true",
                        help="every dt of curated_payments (only after a change of the aggregates' definitions)")
    args = parser.parse_args(argv)
    from wallet_lake.serving import pg_connect

    # The pipeline's role: it keeps the aggregates and reads curated rows (serving/pg_roles.py).
    with pg_connect.connect("pipeline", autocommit=True) as conn:
        dts = list(args.dt)
        if args.all:
            dts += [r[0] for r in conn.execute("SELECT DISTINCT dt FROM public.curated_payments").fetchall()]
        done = refresh_report_aggregates(conn, dts, include_marked=not args.no_marked)
    print(f"refreshed {len(done)} dt(s)" + (f": {done[0]} .. {done[-1]}" if done else ""))


if __name__ == "__main__":
    main()
