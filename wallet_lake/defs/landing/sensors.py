"""S3 arrival sensor: one run per landing hour whose objects changed, once the hour has closed.

The decisions (what is new, which hours are ready, which prefixes to list, the cursor) are in
wallet_lake/lake/arrivals.py; this module lists the lake, asks the partitions definition whether
an hour exists, and turns ready hours into run requests. Hours still open (their partition does
not exist yet) wait in the cursor instead of failing the tick. A changed hour whose run is
still queued (no step begun) is not asked for again: that run lists the hour after this tick.

The tick's clock is Dagster's partition clock (`dg.partition_loading_context`), so the instant
that decides whether an hour is ready is the one the partitions definition is evaluated at; a
test sets both with `dg.partition_loading_context(effective_dt=...)`."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from wallet_lake.contracts.landing import partition_key_for_hour
from wallet_lake.defs.jobs import hourly_payments_job
from wallet_lake.defs.landing.history import curated_since, run_not_begun
from wallet_lake.lake import arrivals
from wallet_lake.lake.arrivals import ArrivalSettings
from wallet_lake.lake.store import LakeStore
from wallet_lake.partitions import hourly_landing
from wallet_lake.resources import LakeResource


def tick_clock() -> datetime:
    with dg.partition_loading_context() as ctx:
        return ctx.effective_dt.astimezone(timezone.utc)


def partition_exists(hour: datetime, at: datetime) -> bool:
    """Whether the hour is a partition of hourly_landing at instant `at`."""
    with dg.partition_loading_context(effective_dt=at):
        return hourly_landing.has_partition_key(partition_key_for_hour(hour))


def evaluate_arrivals(context: dg.SensorEvaluationContext, store: LakeStore, now: datetime, settings: ArrivalSettings) -> dg.SensorResult:
    """One tick: list the plan's prefixes, compare with the cursor, ask for the ready hours."""
    state, note = arrivals.load_cursor(context.cursor)
    if note:
        context.log.warning(note)
    plan = arrivals.plan_listing(state, now, settings)
    listings = {prefix: store.list(prefix) for prefix in plan.prefixes}
    tick = arrivals.evaluate(state, plan, listings, now, settings, partition_exists)
    for warning in tick.warnings:
        context.log.warning(warning)

    requests = []
    for hour in tick.ready:
        # A day seen for the first time (first tick, cursor reset, longer lookback): skip hours
        # already curated by a run that started after their newest object. A change seen against
        # the cursor is always asked for: a slow upload's LastModified can predate a run that did
        # not see it.
        if not hour.known:
            since = curated_since(context.instance, hour.partition_key)
            if since is not None and since > hour.newest:
                context.log.info(f"{hour.partition_key}: already curated by a run started {since.isoformat()}, after its newest object")
                continue
        # An upload that spans two ticks (or a late file just after the hour was asked for)
        # would queue a second run that curates and publishes the hour again (a 1M-event hour:
        # 80-100 s of both cores). The run still queued lists the hour after this tick did.
        queued = run_not_begun(context.instance, hour.partition_key)
        if queued is not None:
            context.log.info(f"{hour.partition_key}: changed; run {queued} is queued and has not listed the hour yet, so it reads these objects too")
            continue
        requests.append(dg.RunRequest(run_key=hour.run_key, partition_key=hour.partition_key))

    waiting = ", ".join(f"{w.partition_key} ({w.objects} objects, from {w.ready_at:%H:%M:%S}Z)" for w in tick.waiting)
    if waiting:
        context.log.info(f"waiting for open or settling hours: {waiting}")
    context.log.info(f"listed {len(plan.prefixes)} prefixes: {', '.join(plan.prefixes)}")
    return dg.SensorResult(
        run_requests=requests,
        cursor=arrivals.dump_cursor(tick.state),
        skip_reason=None if requests else (f"waiting for {waiting}" if waiting else "no new or rewritten landing objects"),
    )


@dg.sensor(
    job=hourly_payments_job,
    # Every pass of the daemon's sensor loop, which starts one every 5 s (dagster's
    # MIN_INTERVAL_LOOP_TIME). At 5 s the interval aliased with the loop: a tick 4.9 s after the
    # last one was skipped and waited for the next pass, so ticks came 5 or 10 s apart (mean
    # 7.9 s over 299 ticks; pickup up to 11 s). A tick lists a few prefixes and costs ~0.4 s.
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the hourly pipeline for landing hours with new or rewritten NDJSON objects, once the hour "
    "has closed and settled (WL_LANDING_SETTLE_SECONDS); late objects of closed hours at once.",
)
def landing_arrivals_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    return evaluate_arrivals(context, lake.store(), tick_clock(), ArrivalSettings.from_env())
