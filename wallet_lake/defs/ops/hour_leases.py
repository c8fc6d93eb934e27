"""One run per landing hour at a time: every step of a landing-hour asset holds the leases of its
run's hours (wallet_lake/ops/hour_leases.py) while it works, whoever launched the run (sensor,
schedule, UI backfill, `dagster asset materialize`, which bypasses the run queue).

The run id is the holder, so the steps of one run (separate processes under the multiprocess
executor) pass the hours to each other: a step that succeeds keeps them for
WL_HOUR_LEASE_HANDOVER_SECONDS when a later step of the run follows, and releases them when none
does; a step that fails releases them (its run fails, or a retry takes them again). A second run
of an hour waits up to WL_HOUR_LEASE_WAIT_SECONDS, then fails naming the run that holds it. A
dead run's hours are free as soon as this Dagster instance reports the run finished (a killed run
worker is marked failed by its code server, or by run monitoring), or at the latest
WL_HOUR_LEASE_TTL_SECONDS after the last heartbeat (a killed `dagster asset materialize`)."""

from __future__ import annotations

import functools
import inspect
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime

import dagster as dg
import psycopg

from wallet_lake.defs.ops.run_failure_alerts import run_url
from wallet_lake.ops.hour_leases import HourLeaseLost, HourLeaseTimeout, LeaseRow, LeaseSettings, acquire, hour_label
from wallet_lake.partitions import partition_hours
from wallet_lake.resources import PostgresResource

_WAIT_LOG_EVERY_S = 60.0


def finished_status(instance: dg.DagsterInstance):
    """The run's final status on this instance (FAILURE, CANCELED, SUCCESS), None otherwise."""

    def status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        return run.status.value if run is not None and run.is_finished else None

    return status


def later_steps_hold_hours(context: dg.AssetExecutionContext) -> bool:
    """Whether an asset downstream of this one runs later in this run (then it needs the hours
    next). The job-scoped asset graph holds only the run's assets; step_keys_to_execute narrows
    it for a re-execution of some steps."""
    steps = context.run.step_keys_to_execute
    graph = context.job_def.asset_layer.asset_graph
    todo, seen = list(graph.get(context.asset_key).child_keys), set()
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if steps is None or key.to_python_identifier() in steps:
            return True
        todo += graph.get(key).child_keys
    return False


@contextmanager
def landing_hours_held(context: dg.AssetExecutionContext, postgres: PostgresResource):
    """Hold the run's landing hours for the duration of the block (see module doc)."""
    settings = LeaseSettings.from_env()
    hours = partition_hours(context)
    step = context.asset_key.to_user_string()
    detail = f"{step}, pid {os.getpid()} on {socket.gethostname()}"
    last_log = [float("-inf")]

    def on_wait(blocking: list[LeaseRow], now: datetime) -> None:
        if time.monotonic() - last_log[0] >= _WAIT_LOG_EVERY_S:
            last_log[0] = time.monotonic()
            context.log.warning(
                f"waiting (up to {settings.wait.total_seconds():.0f}s) for landing hours another run holds: "
                + "; ".join(f"{r.describe(now)}: {run_url(r.holder)}" for r in blocking)
            )

    try:
        lease = acquire(postgres.connect, hours, context.run_id, detail=detail, settings=settings,
                        finished=finished_status(context.instance), on_wait=on_wait)
    except HourLeaseTimeout as e:
        raise dg.Failure(
            description=str(e),
            metadata={"holder_runs": dg.MetadataValue.json({h: run_url(h) for h in e.holders}),
                      "hours_held": dg.MetadataValue.json(sorted({hour_label(r.landing_hour) for r in e.blocking}))},
        ) from e
    for r in lease.takeovers:
        context.log.warning(f"took landing hour {hour_label(r.landing_hour)} from run {r.previous_holder}: {r.takeover_reason}")
    context.log.info(f"{step} holds landing hour lease(s) {hour_label(hours[0])}..{hour_label(hours[-1])} ({len(hours)})")
    lease.start_heartbeat()
    try:
        yield lease
    except BaseException:
        try:
            lease.release()  # the run fails, or a retry of this step takes the hours again
        except psycopg.Error as e:  # never hide the step's own error; the lease expires after the ttl
            context.log.warning(f"could not release landing hour leases ({e}): they expire within {settings.ttl.total_seconds():.0f}s")
        raise
    lease.stop_heartbeat()
    try:
        lease.check()
    except HourLeaseLost as e:
        try:
            lease.release()  # whatever hours it still holds
        except psycopg.Error:
            pass  # they expire within the ttl; the loss is what the step reports
        raise dg.Failure(description=str(e)) from e
    try:
        if later_steps_hold_hours(context):
            lease.extend(settings.handover)
        else:
            context.log.info(f"released landing hour lease(s) of {len(lease.release())} hour(s): the run's last step on them is done")
    except psycopg.Error as e:  # the step's work is done and stands; the lease expires on its own
        context.log.warning(f"could not hand over or release landing hour leases ({e}): they expire within {settings.ttl.total_seconds():.0f}s")


def holds_landing_hours(fn):
    """Decorator under @dg.asset: the asset's step holds its landing hours (landing_hours_held).
    The asset takes a `postgres: PostgresResource` parameter: the leases live in that database."""
    signature = inspect.signature(fn)
    if "postgres" not in signature.parameters:
        raise TypeError(f"{fn.__name__}: @holds_landing_hours needs a `postgres: PostgresResource` parameter (the leases' database)")

    @functools.wraps(fn)
    def step(context, *args, **kwargs):
        postgres = signature.bind(context, *args, **kwargs).arguments["postgres"]
        with landing_hours_held(context, postgres):
            return fn(context, *args, **kwargs)

    return step
