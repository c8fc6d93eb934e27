"""The asset check `pipeline_reconciled` of postgres/curated_payments: the pipeline ledger of the
run's landing hours (wallet_lake/serving/ledger.py: the figures, the rule, the SQL; the same as GET
/reports/pipeline-recon), read after the step verified its rows and refreshed the aggregates.

The check is partitioned by landing hour: a single-hour run (sensor, schedule) records its hour's
result; a single-run range backfill records one result for all its hours, so every hour's figures
are also in the materialization metadata (`pipeline_recon`)."""

from __future__ import annotations

import dagster as dg

from wallet_lake.partitions import partition_hours
from wallet_lake.resources import PostgresResource
from wallet_lake.serving import ledger
from wallet_lake.serving.aggregates import refresh_report_aggregates

RECON_CHECK = "pipeline_reconciled"
RECON_DESCRIPTION = (
    "The pipeline ledger of each landing hour reconciles: raw lines = curated + quarantined + duplicates removed, "
    "published = loaded = curated (all of the curation the lake holds), counted in the report aggregates = loaded; "
    "a stage that never ran fails it. The same figures as GET /reports/pipeline-recon."
)
# Refreshes after the step's own, while only `counted` differs: a dt can still hold a mark made
# before the rows were verified by a transaction in flight during the refresh (the sink loading
# another hour into the same dt); a refresh after it commits takes it.
RECON_REFRESHES = 2


class RunRecon:
    """The check result and the materialization metadata of the run's hours."""

    def __init__(self, hours: list[ledger.HourRecon]) -> None:
        per_hour = {h.landing_hour.isoformat(): h.as_dict() for h in hours}
        self.failed = {k: v for k, v in per_hour.items() if not v["reconciled"]}
        self.metadata = {"hours_reconciled": len(hours) - len(self.failed), "pipeline_recon": dg.MetadataValue.json(per_hour)}
        # One hour: its figures as numbers too (plotted per partition in the UI).
        single = {f: hours[0].figures[f] for f in ledger.FIGURES if hours[0].figures[f] is not None} if len(hours) == 1 else {}
        self.check = dg.AssetCheckResult(
            check_name=RECON_CHECK,
            passed=not self.failed,
            metadata={
                "hours_checked": len(hours),
                "first_differences": dg.MetadataValue.json({k: v["first_difference"] for k, v in self.failed.items()}),
                "failed_hours": dg.MetadataValue.json(self.failed),
                **single,
            },
        )


def reconcile_run(context: dg.AssetExecutionContext, postgres: PostgresResource, dts: set) -> RunRecon:
    """The ledger of the run's hours; while the only difference is `counted`, refresh `dts` (the
    hours' dts, and every marked one) again, at most RECON_REFRESHES times."""
    hours = partition_hours(context)
    for attempt in range(RECON_REFRESHES + 1):
        with postgres.connect() as conn:
            recon = RunRecon(ledger.read_recon(conn, hours))
        behind = [h for h, r in recon.failed.items() if r["first_difference"] == ledger.COUNTED]
        if not behind or len(behind) < len(recon.failed) or attempt == RECON_REFRESHES:
            break
        context.log.info(f"{len(behind)} hour(s) not yet counted in the report aggregates; refreshing their dts again")
        with postgres.connect() as conn:
            refresh_report_aggregates(conn, dts)
    for hour, r in recon.failed.items():
        context.log.error(f"landing hour {hour} not reconciled, first difference {r['first_difference']}: {r['detail']}")
    return recon
