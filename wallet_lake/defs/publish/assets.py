"""payments.curated: the curated records of a landing hour published to Kafka (key payment_id).

Re-materializing this asset alone for an hour replays that hour from the curated Parquet
without recomputing it; the Postgres side never regresses (see the table's trigger). The
materialization records what the broker acknowledged (messages, bytes, end offset per Kafka
partition); postgres/curated_payments waits for the sink to pass exactly those offsets."""

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, TOPIC_PAYMENTS_CURATED
from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.publish.hour import publish_hour
from wallet_lake.publish.producer import producer_config
from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
from wallet_lake.resources import KafkaResource, LakeResource, PostgresResource
from wallet_lake.serving import ledger

KEYS_CHECK = "published_keys_match_curated"
# Metadata key of the per-partition end offsets, read back by the Postgres asset.
END_OFFSETS = "end_offsets"


@dg.asset(
    key=dg.AssetKey(TOPIC_PAYMENTS_CURATED),
    deps=[dg.AssetKey(CURATED_PAYMENTS)],
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="publish",
    kinds={"kafka"},
    check_specs=[
        dg.AssetCheckSpec(
            KEYS_CHECK,
            asset=dg.AssetKey(TOPIC_PAYMENTS_CURATED),
            blocking=True,
            description="The keys the broker acknowledged equal the curated payment_ids of each landing hour published, each once.",
        )
    ],
    description="Topic payments.curated: one message per curated row, key payment_id, Connect JSON value with schema.",
)
@holds_landing_hours
def payments_curated_topic(
    context: dg.AssetExecutionContext, lake: LakeResource, kafka: KafkaResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    store = lake.store()
    ensure_topic(kafka.admin(), curated_topic_spec(kafka.topic, kafka.replication_factor))
    conf = producer_config(kafka.client_config())
    messages = size = 0
    seconds = 0.0
    end_offsets: dict[int, int] = {}
    per_hour: dict[str, dict] = {}
    failed_hours: dict[str, dict] = {}
    for hour in partition_hours(context):
        label = f"{hour:%Y-%m-%dT%H}"
        sent = publish_hour(store, hour, kafka.topic, conf)
        result = sent.result
        context.log.info(f"{label}: published {result.messages} records ({result.bytes} bytes) to {kafka.topic} in {result.seconds:.1f}s")
        if not sent.keys.passed:
            failed_hours[label] = sent.keys.metadata()
        with postgres.connect() as conn:  # the ledger: the hour's curated payment_ids on the topic, each once
            ledger.record_stage(conn, hour, ledger.PUBLISHED, sent.published_ids, run_id=context.run_id,
                                curation_run_id=sent.curation_run_id)
        per_hour[label] = {"messages": result.messages, "end_offsets": {str(p): o for p, o in sorted(result.end_offsets.items())}}
        messages += result.messages
        size += result.bytes
        seconds += result.seconds
        for p, o in result.end_offsets.items():
            end_offsets[p] = max(o, end_offsets.get(p, 0))
    return dg.MaterializeResult(
        metadata={
            "messages": messages,
            "bytes": size,
            "records_per_second": round(messages / seconds, 1) if seconds else 0.0,
            "topic": kafka.topic,
            END_OFFSETS: dg.MetadataValue.json({str(p): o for p, o in sorted(end_offsets.items())}),
            "hours": dg.MetadataValue.json(per_hour),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=KEYS_CHECK,
                passed=not failed_hours,
                metadata={"hours_checked": len(per_hour), "failed_hours": dg.MetadataValue.json(failed_hours)},
            )
        ],
    )
