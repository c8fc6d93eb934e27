"""payments.curated: the curated records of a landing hour published to Kafka (key payment_id).

Re-materializing this asset alone for an hour replays that hour from the curated Parquet
without recomputing it; the Postgres side never regresses (see the table's trigger)."""

import dagster as dg

from wallet_lake.lake.curation_run import read_curated_hour
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.publish.producer import producer_config, publish
from wallet_lake.publish.records import curated_record
from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
from wallet_lake.resources import KafkaResource, LakeResource

KEYS_CHECK = "published_keys_match_curated"


@dg.asset(
    key=["kafka", "payments_curated"],
    deps=["curated_payments"],
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="publish",
    kinds={"kafka"},
    check_specs=[
        dg.AssetCheckSpec(
            KEYS_CHECK,
            asset=["kafka", "payments_curated"],
            blocking=True,
            description="The keys delivered equal the curated payment_ids of the landing hours published.",
        )
    ],
    description="Topic payments.curated: one message per curated row, key payment_id, Connect JSON value with schema.",
)
def payments_curated_topic(context: dg.AssetExecutionContext, lake: LakeResource, kafka: KafkaResource) -> dg.MaterializeResult:
    store = lake.store()
    ensure_topic(kafka.admin(), curated_topic_spec(kafka.topic, kafka.replication_factor))
    messages = size = 0
    end_offsets: dict[int, int] = {}
    mismatched = []
    for hour in partition_hours(context):
        rows = read_curated_hour(store, hour)
        records = [curated_record(r) for r in rows]
        result = publish(records, kafka.topic, producer_config(kafka.bootstrap_servers))
        context.log.info(f"{hour:%Y-%m-%dT%H}: published {result.messages} records ({result.bytes} bytes) to {kafka.topic}")
        expected_keys = {r["payment_id"] for r in rows}
        if result.messages != len(rows) or {k.decode() for k, _ in records} != expected_keys:
            mismatched.append(f"{hour:%Y-%m-%dT%H}")
        messages += result.messages
        size += result.bytes
        for p, o in result.end_offsets.items():
            end_offsets[p] = max(o, end_offsets.get(p, 0))
    return dg.MaterializeResult(
        metadata={
            "messages": messages,
            "bytes": size,
            "topic": kafka.topic,
            "end_offsets": dg.MetadataValue.json({str(p): o for p, o in sorted(end_offsets.items())}),
        },
        check_results=[dg.AssetCheckResult(check_name=KEYS_CHECK, passed=not mismatched, metadata={"mismatched_hours": dg.MetadataValue.json(mismatched)})],
    )
