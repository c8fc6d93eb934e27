"""curated_payments: Parquet under curated/payments/dt=/merchant_id=, made by the Spark rules."""

from datetime import datetime, timezone

import dagster as dg
from dagster_pyspark import PySparkResource

from wallet_lake.lake.curation_run import curate_landing_hour
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import LakeResource

ACCOUNTING_CHECK = "every_raw_line_accounted"


@dg.asset(
    key="curated_payments",
    deps=["raw_payments"],
    partitions_def=hourly_landing,
    # A backfill of many hours runs as one Spark application, not one JVM per hour.
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="curated",
    kinds={"spark", "parquet", "s3"},
    check_specs=[
        dg.AssetCheckSpec(
            ACCOUNTING_CHECK,
            asset="curated_payments",
            blocking=True,
            description="For every landing hour: raw lines = curated rows + quarantined rows + duplicates removed.",
        )
    ],
    description="Deduplicated, validated payments (one row per payment_id per landing hour); bad lines quarantined with reasons.",
)
def curated_payments(context: dg.AssetExecutionContext, lake: LakeResource, pyspark: PySparkResource) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    store = lake.store()
    processed_at = datetime.now(timezone.utc).replace(microsecond=0)
    per_hour = []
    for hour in partition_hours(context):
        stats = curate_landing_hour(spark, store, hour, processed_at, log=context.log)
        context.log.info(
            f"{stats.landing_hour}: raw {stats.raw_lines} = curated {stats.curated_rows} + quarantined "
            f"{stats.quarantined_rows} + duplicates {stats.duplicates_removed} ({stats.curated_files} files)"
        )
        per_hour.append(stats)
    total = lambda attr: sum(getattr(s, attr) for s in per_hour)  # noqa: E731
    unaccounted = [s.landing_hour for s in per_hour if not s.accounted]
    reasons: dict[str, int] = {}
    for s in per_hour:
        for r, n in s.quarantine_reasons.items():
            reasons[r] = reasons.get(r, 0) + n
    return dg.MaterializeResult(
        metadata={
            "raw_lines": total("raw_lines"),
            "curated_rows": total("curated_rows"),
            "quarantined_rows": total("quarantined_rows"),
            "duplicates_removed": total("duplicates_removed"),
            "curated_files": total("curated_files"),
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "per_hour": dg.MetadataValue.json(
                {s.landing_hour: {"raw": s.raw_lines, "curated": s.curated_rows, "quarantined": s.quarantined_rows, "duplicates": s.duplicates_removed} for s in per_hour}
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=ACCOUNTING_CHECK,
                passed=not unaccounted,
                metadata={"hours_checked": len(per_hour), "unaccounted_hours": dg.MetadataValue.json(unaccounted)},
            )
        ],
    )
