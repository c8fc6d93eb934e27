"""What a run killed mid-upload announced goes when the run is marked failed, not at its hours'
next run.

A curated step announces its files in the hours' manifests (`pending`) before uploading them.
A run that fails in Python removes them itself (defs/curated/assets.py); a run whose worker is
SIGKILLed cannot, and its files stay under the hours' prefixes, where a lister such as Athena
counts their rows twice, until a later run of those hours sweeps them under its leases. Run
monitoring marks such a run failed; this sensor then deletes the pending entries of that run,
and only of that run: it holds no lease, so another run may be writing the same hours, and
entries are matched to the Dagster run by its curation run id (manifests.curated_by_dagster_run).
It also deletes the hours' superseded files (a run killed between its swap and its delete).

A writer still finishing for the dead run (a curation worker request, a Glue job) fails its
conditional swap on the changed manifest and removes its own files (lake/wap.py). A sweep that
fails (S3 unavailable) is logged and left to the hours' next run or the 6-hour sweep: readers go
through the manifests, so nothing they read is wrong meanwhile."""

from __future__ import annotations

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.contracts.landing import hour_from_partition_key
from wallet_lake.lake import manifests
from wallet_lake.partitions import run_partition_keys
from wallet_lake.resources import LakeResource

SENSOR_NAME = "dead_run_sweep"
CURATED_STEP = dg.AssetKey(CURATED_PAYMENTS).to_python_identifier()


def curated_step_started(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether the run started its curated step (only then can it have announced files)."""
    return any(
        r.dagster_event is not None and r.dagster_event.step_key == CURATED_STEP
        for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    )


def sweep_dead_run(instance: dg.DagsterInstance, run: dg.DagsterRun, lake: LakeResource, log) -> list[manifests.SweepResult]:
    """Delete what `run` (finished, not successful) announced in its hours and never published."""
    keys = run_partition_keys(run.tags)
    if not keys or not curated_step_started(instance, run.run_id):
        return []
    hours = [hour_from_partition_key(k) for k in keys]
    return manifests.sweep_hours(
        lake.store(), hours, abandoned_after=manifests.ABANDONED_UNDER_LEASE, log=log,
        only_runs=lambda curation_run_id: manifests.curated_by_dagster_run(curation_run_id, run.run_id),
    )


def _sweep(context: dg.RunStatusSensorContext, lake: LakeResource) -> None:
    run = context.dagster_run
    try:
        results = sweep_dead_run(context.instance, run, lake, context.log)
    except Exception as e:  # noqa: BLE001 (see the module doc: the next run of the hours sweeps)
        context.log.warning(f"could not sweep what run {run.run_id} announced ({type(e).__name__}: {e}); its hours' next run will")
        return
    deleted = sum(len(r.deleted) for r in results)
    if deleted:
        context.log.info(f"run {run.run_id} ({run.status.value}): swept {deleted} files it announced and never published")


@dg.run_failure_sensor(
    name=SENSOR_NAME,
    monitor_all_code_locations=True,  # `dagster asset materialize` runs carry no code location
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes the curated files a failed run announced and never published (a run worker killed mid-upload).",
)
def dead_run_sweep(context: dg.RunFailureSensorContext, lake: LakeResource) -> None:
    _sweep(context, lake)


@dg.run_status_sensor(
    name=f"{SENSOR_NAME}_canceled",
    run_status=dg.DagsterRunStatus.CANCELED,
    monitor_all_code_locations=True,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="As dead_run_sweep, for canceled runs (a run terminated while its worker was uploading).",
)
def dead_run_sweep_canceled(context: dg.RunStatusSensorContext, lake: LakeResource) -> None:
    _sweep(context, lake)
