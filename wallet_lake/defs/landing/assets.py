"""raw_payments: the landing hour as the processor wrote it (NDJSON objects on S3)."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from wallet_lake.contracts.asset_keys import RAW_PAYMENTS
from wallet_lake.contracts.landing import landing_prefix
from wallet_lake.defs.landing.history import last_full_curation
from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.lake.arrivals import hour_digest
from wallet_lake.lake.store import LakeStore, landing_objects
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import LakeResource, PostgresResource
from wallet_lake.serving import ledger

# Objects read at once; each is held whole in memory while its lines are counted.
RAW_READ_THREADS = 4

# Dagster's tags on the runs the landing sensor and the :20 backstop start. Only those may stop
# after this step as a repeat: a run started by hand (UI, CLI, backfill) goes through every step,
# since it may be repairing the topic or Postgres.
AUTOMATIC_RUN_TAGS = ("dagster/sensor_name", "dagster/schedule_name")


@dg.asset(
    key=dg.AssetKey(RAW_PAYMENTS),
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="landing",
    kinds={"s3"},
    # Not materialized by a repeat (see repeat_of_full_curation): the later steps then skip.
    output_required=False,
    description="NDJSON payment events under raw/payments/dt=YYYY/MM/DD/HH/ (one partition per landing hour, UTC).",
)
def raw_payments(context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource):
    store = lake.store()
    repeat = repeat_of_full_curation(context, store)
    if repeat:
        context.log.info(f"nothing to do: {repeat}; the curated, topic and Postgres steps skip")
        return
    yield count_raw_objects(context, store, postgres)


def repeat_of_full_curation(context: dg.AssetExecutionContext, store: LakeStore) -> str | None:
    """Why this run would only repeat the hour's last curation, or None to go on.

    It repeats when the sensor or the backstop started it for one hour, and the hour's latest
    curation was by a run that went through every step and whose raw step listed the very
    (key, ETag)s listed now. An upload that spans two sensor ticks queues such a run: the first
    run began before the second tick and listed every object anyway (a 1M-event hour: 80-100 s of
    both cores to curate and publish it again)."""
    if len(context.partition_keys) != 1 or not any(tag in context.run.tags for tag in AUTOMATIC_RUN_TAGS):
        return None
    last = last_full_curation(context.instance, context.partition_key)
    if last is None or last.objects_digest is None or last.run_id == context.run_id:
        return None
    (hour,) = partition_hours(context)
    digest = hour_digest(landing_objects(store, hour))
    if digest != last.objects_digest:
        return None
    return f"run {last.run_id} went through every step with the same {last.objects} objects ((key, ETag) digest {digest})"


@holds_landing_hours
def count_raw_objects(context: dg.AssetExecutionContext, store: LakeStore, postgres: PostgresResource) -> dg.MaterializeResult:
    objects = lines = size = 0
    digest = None
    # A busy hour is several objects: read side by side while the S3 server sends the next
    # (a 1M-event hour in 8 objects: 1.46-1.59 s one at a time, 1.13-1.30 s four at a time).
    with ThreadPoolExecutor(max_workers=RAW_READ_THREADS) as pool:
        for hour in partition_hours(context):
            found = landing_objects(store, hour)
            digest = hour_digest(found)
            # Lines as the curation's Spark reader splits them: the ledger compares the two counts.
            hour_lines = sum(pool.map(lambda o: ledger.count_lines(store.get_bytes(o.key)), found))
            context.log.info(f"{landing_prefix(hour)}: {len(found)} objects, {hour_lines} lines")
            with postgres.connect() as conn:  # committed per hour, as soon as it is counted
                ledger.record_stage(conn, hour, ledger.RAW_LINES, hour_lines, run_id=context.run_id, curation_run_id=None)
            objects += len(found)
            lines += hour_lines
            size += sum(o.size for o in found)
    hours = len(context.partition_keys)
    # What a later run compares its listing with (repeat_of_full_curation); one hour's only.
    identity = {"objects_digest": digest} if hours == 1 else {}
    return dg.MaterializeResult(metadata={"objects": objects, "lines": lines, "bytes": size, "hours": hours, **identity})
