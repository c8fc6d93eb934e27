"""The daily compaction of the curated lake (lake/compaction.py): closed dts rewritten into one
file per merchant behind day manifests, and the movers index rebuilt, so that source=lake reports
read a range's few files and not the whole future of the lake.

A dt is closed once WL_COMPACTION_CLOSED_AFTER_DAYS whole days have passed since it ended: by
then its landing hours have run. A file that lands later (or a rerun) changes the dt's digest;
readers then go back to its hour files until the next run compacts it again, so the answer is
exact at every moment and only its speed depends on this schedule. Each run is idempotent and
does only what changed; concurrent runs cannot corrupt a day (conditional manifest writes)."""

from datetime import datetime, timedelta, timezone

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, CURATED_PAYMENTS_DAILY
from wallet_lake.defs.ops.run_slots import HEAVY_RUN_TAGS
from wallet_lake.lake.compaction import compact_lake
from wallet_lake.resources import LakeResource
from wallet_lake.settings import LakeSettings, load


# Daily: overdue when no run has compacted for a day and two hours (the schedule runs at 02:40).
COMPACTION_FAIL_WINDOW = timedelta(hours=26)


@dg.asset(
    key=dg.AssetKey(CURATED_PAYMENTS_DAILY),
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=COMPACTION_FAIL_WINDOW, warn_window=COMPACTION_FAIL_WINDOW - timedelta(hours=1)),
    deps=[dg.AssetKey(CURATED_PAYMENTS)],
    group_name="curated",
    description="Closed dts of curated_payments compacted to one file per merchant (each payment's latest record "
    "of the dt), behind day manifests, and the movers index: what bounded source=lake reports read.",
)
def curated_payments_daily(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    closed_after = load(LakeSettings).compaction_closed_after_days
    closed_before = datetime.now(timezone.utc).date() - timedelta(days=closed_after)
    result = compact_lake(lake.store(), closed_before=closed_before, log=context.log)
    summary = result.summary()
    return dg.MaterializeResult(metadata={**{k: v for k, v in summary.items() if k != "removed_days"},
                                          "removed_days": len(summary["removed_days"]),
                                          "closed_before": closed_before.isoformat()})


# Named apart from the asset: a job may not share its name with an op (the asset's) in one repository.
curated_payments_daily_job = dg.define_asset_job(
    "compact_curated_daily", selection=[dg.AssetKey(CURATED_PAYMENTS_DAILY)],
    tags=HEAVY_RUN_TAGS,  # one heavy run at a time (defs/ops/run_slots.py)
    description="Compact the closed dts of the curated lake and rebuild the movers index.",
)

# 02:40 UTC: after the :20 run of the day's last hour and its late files.
curated_payments_daily_schedule = dg.ScheduleDefinition(
    job=curated_payments_daily_job, cron_schedule="40 2 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
