"""curated_payments: Parquet under curated/payments/dt=/merchant_id=, made by the Spark rules.

One run curates all its landing hours (a backfill under BackfillPolicy.single_run is one Spark
application and one pass of jobs), on the warm curation worker, in this process (dagster-pyspark)
or as one AWS Glue job run (PipesGlueClient), as the curation_launcher resource says. Hours failing a blocking check are
not published (lake/wap.py); the checks report them. The work lives in lake/ (curation_run,
catalog), defs/curated/launcher.py (Glue) and serving/ledger.py; this is the wiring."""


from datetime import datetime, timezone

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, RAW_PAYMENTS
from wallet_lake.defs.curated import results
from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.lake import catalog, manifests
from wallet_lake.lake.store import S3LakeStore
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import LakeResource, PostgresResource
from wallet_lake.serving import ledger


class CuratedPaymentsConfig(dg.Config):
    quarantine_warn_rate: float = Field(default=0.02, description="WARN check when an hour quarantines more than this share of its lines.")
    register_partitions: bool = Field(default=True, description="Register new (dt, merchant_id) partitions in the Glue catalog (S3 lakes).")


@dg.asset(
    key=dg.AssetKey(CURATED_PAYMENTS),
    deps=[dg.AssetKey(RAW_PAYMENTS)],
    partitions_def=hourly_landing,
    # A backfill of many hours runs as one Spark application, not one JVM per hour.
    backfill_policy=dg.BackfillPolicy.single_run(),
    # One Spark curation at a time on the instance (`dagster instance concurrency set
    # wallet_lake_curation 1`); runs of the same hour are kept apart by @holds_landing_hours.
    pool="wallet_lake_curation",
    group_name="curated",
    kinds={"spark", "parquet", "s3", "glue"},
    check_specs=results.check_specs(),
    description="Deduplicated, validated payments (one row per payment_id per landing hour); bad lines quarantined with reasons.",
)
@holds_landing_hours
def curated_payments(
    context: dg.AssetExecutionContext,
    config: CuratedPaymentsConfig,
    lake: LakeResource,
    lazy_pyspark: LazyPySparkResource,
    curation_launcher: CurationLauncher,
    postgres: PostgresResource,
) -> dg.MaterializeResult:
    hours = partition_hours(context)
    processed_at = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = manifests.dagster_run_curation_id(processed_at, context.run_id)
    mode = curation_launcher.resolved_mode()
    store = lake.store()

    def sweep_under_lease() -> list[manifests.SweepResult]:
        # This run holds the hours' leases, so no other run writes them: pending files go now, not
        # after manifests.ABANDONED_AFTER (a lister such as Athena would count their rows twice).
        return manifests.sweep_hours(store, hours, abandoned_after=manifests.ABANDONED_UNDER_LEASE, log=context.log)

    swept = sweep_under_lease()  # what a run killed mid-upload announced
    try:
        if mode == "glue":
            figures, extra = curation_launcher.run_on_glue(context, lake, hours, run_id=run_id, processed_at=processed_at)
        else:
            figures, extra = curation_launcher.run_local(
                context, lake, lambda: lazy_pyspark.spark_session, hours, run_id=run_id, processed_at=processed_at)
    except BaseException:
        # Still under the leases: what this run announced before it failed (its curation worker
        # killed mid-upload) goes now, not at the hours' next run. The run's own error is what
        # the operator needs, so a failed sweep only warns.
        try:
            sweep_under_lease()
        except Exception as e:  # noqa: BLE001
            context.log.warning(f"could not sweep what this run announced ({type(e).__name__}: {e}); its hours' next run will")
        raise
    extra["dead_run_keys_swept"] = sum(len(r.deleted) for r in swept)
    with postgres.connect() as conn:  # the pipeline ledger: figures of the hours now in the lake
        ledger.record_published_curations(conn, figures, run_id=context.run_id)
    if config.register_partitions and isinstance(store, S3LakeStore):
        published = [datetime.fromisoformat(h["landing_hour"]) for h in figures if h.get("published")]
        extra["partitions_registered"] = catalog.register_published_hours(
            lake.client("glue"), curation_launcher.database(), store, published, log=context.log
        )
    return results.materialize_result(figures, launcher=mode, quarantine_warn_rate=config.quarantine_warn_rate, extra=extra)
