"""What the Dagster instance knows about a landing hour's runs: when it was last curated, by a run
that went through every step and of which objects, and whether a run of it is still waiting to
begin. The landing sensor, the :20 backstop and raw_payments decide from these whether a run
would only repeat one that already did the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, RAW_PAYMENTS
from wallet_lake.defs.jobs import hourly_payments_job
from wallet_lake.partitions import PARTITION_TAG

CURATED_ASSET = dg.AssetKey(CURATED_PAYMENTS)
RAW_ASSET = dg.AssetKey(RAW_PAYMENTS)

# A run in these states has not begun a step: its raw and curated steps list the hour later than
# any listing made now, so they will read every object seen now.
NOT_BEGUN = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def curated_since(instance: dg.DagsterInstance, partition_key: str) -> datetime | None:
    """When the run behind the hour's latest curated_payments materialization started (it listed
    the hour after that), or the materialization's time when the run is gone; None if never."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CURATED_ASSET, asset_partitions=[partition_key]), limit=1
    ).records
    if not records:
        return None
    run = instance.get_run_record_by_id(records[0].run_id) if records[0].run_id else None
    started = run.start_time if run is not None and run.start_time else records[0].timestamp
    return datetime.fromtimestamp(started, timezone.utc)


@dataclass(frozen=True)
class FullCuration:
    """The hour's latest curation, by a run that went through every step: what its raw step
    listed and counted for this hour alone."""

    run_id: str
    objects: int
    bytes: int
    objects_digest: str | None  # arrivals.hour_digest of the listed (key, ETag)s; None from older runs


def last_full_curation(instance: dg.DagsterInstance, partition_key: str) -> FullCuration | None:
    """The hour's latest curation when its run succeeded (a run that failed after curating, in
    the topic or Postgres step, is to be run again) and its raw step counted this hour alone (a
    backfill's raw step counts its hours together: unknown); else None."""
    curated = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CURATED_ASSET, asset_partitions=[partition_key]), limit=1
    ).records
    raw = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_ASSET, asset_partitions=[partition_key]), limit=1
    ).records
    if not curated or not raw or raw[0].run_id != curated[0].run_id:
        return None
    run = instance.get_run_by_id(curated[0].run_id)
    if run is None or run.status != dg.DagsterRunStatus.SUCCESS:
        return None
    meta = raw[0].asset_materialization.metadata if raw[0].asset_materialization else {}
    value = lambda k: getattr(meta.get(k), "value", None)  # noqa: E731 - a metadata value or None
    if value("hours") != 1 or value("objects") is None or value("bytes") is None:
        return None
    digest = value("objects_digest")
    return FullCuration(run.run_id, int(value("objects")), int(value("bytes")), str(digest) if digest else None)


def run_not_begun(instance: dg.DagsterInstance, partition_key: str) -> str | None:
    """The id of a whole-pipeline run of the hour that is queued or starting (no step begun yet),
    or None. Call it after listing: the run then lists after the caller did."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=hourly_payments_job.name, statuses=NOT_BEGUN, tags={PARTITION_TAG: partition_key}),
        limit=5,
    )
    for record in records:
        run = record.dagster_run
        # A run of a subset (say, the Postgres step again) does not curate what landed.
        if run.asset_selection is None or CURATED_ASSET in run.asset_selection:
            return run.run_id
    return None
