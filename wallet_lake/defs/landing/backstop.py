"""The :20 backstop schedule: at 20 minutes past each hour, the hour that just closed is run
unless a run that went through every step already curated exactly what is listed for it
(lake/arrivals.py backstop_skip_reason). It catches an hour the sensor missed (stopped, or a
tick lost); it no longer curates every busy hour a second time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

from wallet_lake.contracts.landing import partition_key_for_hour
from wallet_lake.defs.jobs import hourly_payments_job
from wallet_lake.defs.landing.history import curated_since, last_full_curation, run_not_begun
from wallet_lake.lake import arrivals
from wallet_lake.lake.store import LakeStore, landing_objects
from wallet_lake.resources import LakeResource


def closed_hour(scheduled: datetime) -> datetime:
    """The landing hour that closed before a :20 tick (13:20 -> 12:00 UTC)."""
    return scheduled.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@dg.schedule(
    job=hourly_payments_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At :20, the landing hour that just closed (late files have had 20 minutes), unless a successful "
    "run already curated the objects listed for it now.",
)
def hourly_payments_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource):
    return backstop_tick(context.instance, lake.store(), context.scheduled_execution_time)


def backstop_tick(instance: dg.DagsterInstance, store: LakeStore, scheduled: datetime) -> dg.RunRequest | dg.SkipReason:
    """One tick of the schedule: the closed hour's run, or why it is not needed."""
    hour = closed_hour(scheduled)
    key = partition_key_for_hour(hour)
    listed = landing_objects(store, hour)
    queued = run_not_begun(instance, key)  # after listing: that run lists later still
    if queued is not None:
        return dg.SkipReason(f"{key}: run {queued} of this hour is queued and has not listed it yet")
    last = last_full_curation(instance, key)
    counted = (last.objects, last.bytes) if last is not None else None
    reason = arrivals.backstop_skip_reason(listed, curated_since(instance, key), counted)
    if reason:
        return dg.SkipReason(f"{key}: {reason}")
    return dg.RunRequest(partition_key=key)
