"""report_aggregates_refresher: keeps the report aggregates up to date with curated_payments
whoever changed it, with nobody rerunning a partition.

Every change to curated_payments marks its dt (migration 0005). Each tick drains the marks
(wallet_lake.serving.aggregates.drain_marks: the dts of the oldest marks first, one month per
transaction, only the marks each transaction saw) within a time budget below the sensor timeout,
and records what it did as an AssetObservation of postgres/curated_payments: dts refreshed, marks
drained, and the age of the oldest mark before and after, which is how stale a report can be.
The Postgres asset still refreshes its own hour's dts as soon as the sink has them; this sensor
covers the rest: a Postgres step that failed or never ran, rows the sink loaded late, by-hand
changes. Refreshes of one month serialize on an advisory lock; the sensor skips a month another
refresh holds and takes it on a later tick."""

from __future__ import annotations

import dagster as dg
import psycopg

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS
from wallet_lake.resources import PostgresResource
from wallet_lake.serving.aggregates import RefresherSettings, drain_marks

SENSOR_NAME = "report_aggregates_refresher"
TABLE_ASSET = dg.AssetKey(TABLE_CURATED_PAYMENTS)
# Read when the code location loads: Dagster needs the interval at definition time.
SETTINGS = RefresherSettings.from_env()


def _seconds(value: float | None) -> float:
    return 0.0 if value is None else round(value, 1)


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=SETTINGS.interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Refreshes the report aggregates of every dt a change to curated_payments marked, oldest first, "
        f"within {SETTINGS.budget_s:g} s per tick (WL_AGGREGATES_REFRESH_BUDGET_S); records the oldest pending mark's age."
    ),
)
def report_aggregates_refresher(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    try:
        with postgres.connect() as conn:
            conn.autocommit = True  # each batch commits on its own
            report = drain_marks(conn, budget_s=SETTINGS.budget_s, max_dts=SETTINGS.max_dts_per_batch,
                                 quiet_s=SETTINGS.quiet_s, max_defer_s=SETTINGS.max_defer_s)
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        # Postgres down or restarting (or the connection lost mid-tick): the marks wait in Postgres; the next tick tries again.
        message = str(exc).strip()[:500]
        context.log.error(f"report aggregates not refreshed, Postgres unavailable (next try in {SETTINGS.interval_s} s): {message}")
        return dg.SensorResult(
            asset_events=[dg.AssetObservation(asset_key=TABLE_ASSET, metadata={"aggregates_refresh_error": message})]
        )
    refreshed = sorted(report.dts_refreshed)
    metadata = {
        "aggregates_dts_refreshed": len(refreshed),
        "aggregates_marks_drained": report.marks_drained,
        "aggregates_dts_deferred": len(report.dts_deferred),
        "aggregates_pending_marks": report.pending_marks_after,
        "aggregates_oldest_mark_age_before_s": _seconds(report.oldest_mark_age_before_s),
        "aggregates_oldest_pending_mark_age_s": _seconds(report.oldest_mark_age_after_s),
        "aggregates_batches_busy": report.batches_busy,
        "aggregates_batches_left": report.batches_left,
        "aggregates_refresh_seconds": round(report.seconds, 2),
        "aggregates_refreshed_dts": dg.MetadataValue.json([str(d) for d in refreshed[:100]]),
    }
    context.log.info(
        f"refreshed {len(refreshed)} dt(s), drained {report.marks_drained} mark(s) in {report.seconds:.1f} s; "
        + (f"{len(report.dts_deferred)} dt(s) still being written left for later; " if report.dts_deferred else "")
        + f"{report.pending_marks_after} pending, oldest {_seconds(report.oldest_mark_age_after_s)} s old"
        + (f"; {report.batches_left} batch(es) left for the next tick" if report.batches_left else "")
    )
    if report.failures:
        # The other dts were refreshed; these fail every tick until their data is fixed.
        raise RuntimeError(
            f"report aggregates refresh failed for {len(report.failures)} batch(es) of dts (their marks stay, reports on "
            f"them keep an old as_of): {report.failures}. Fix the rows of those dts in curated_payments (or the aggregates' "
            f"definitions), then the next tick refreshes them. This tick refreshed {len(refreshed)} other dt(s)."
        )
    return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=TABLE_ASSET, metadata=metadata)])
