"""raw_payments: the landing hour as the processor wrote it (NDJSON objects on S3)."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from wallet_lake.contracts.asset_keys import RAW_PAYMENTS
from wallet_lake.contracts.landing import landing_prefix
from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.lake.store import landing_objects
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import LakeResource, PostgresResource
from wallet_lake.serving import ledger

# Objects read at once; each is held whole in memory while its lines are counted.
RAW_READ_THREADS = 4


@dg.asset(
    key=dg.AssetKey(RAW_PAYMENTS),
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="landing",
    kinds={"s3"},
    description="NDJSON payment events under raw/payments/dt=YYYY/MM/DD/HH/ (one partition per landing hour, UTC).",
)
@holds_landing_hours
def raw_payments(context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource) -> dg.MaterializeResult:
    store = lake.store()
    objects = lines = size = 0
    # A busy hour is several objects: read side by side while the S3 server sends the next
    # (a 1M-event hour in 8 objects: 1.46-1.59 s one at a time, 1.13-1.30 s four at a time).
    with ThreadPoolExecutor(max_workers=RAW_READ_THREADS) as pool:
        for hour in partition_hours(context):
            found = landing_objects(store, hour)
            # Lines as the curation's Spark reader splits them: the ledger compares the two counts.
            hour_lines = sum(pool.map(lambda o: ledger.count_lines(store.get_bytes(o.key)), found))
            context.log.info(f"{landing_prefix(hour)}: {len(found)} objects, {hour_lines} lines")
            with postgres.connect() as conn:  # committed per hour, as soon as it is counted
                ledger.record_stage(conn, hour, ledger.RAW_LINES, hour_lines, run_id=context.run_id, curation_run_id=None)
            objects += len(found)
            lines += hour_lines
            size += sum(o.size for o in found)
    return dg.MaterializeResult(
        metadata={"objects": objects, "lines": lines, "bytes": size, "hours": len(context.partition_keys)}
    )
