"""postgres/curated_payments: the table the Kafka Connect JDBC sink fills from payments.curated.

Materializing an hour waits until the sink's consumer group has committed past the topic's
end offsets (Connect commits after writing), then verifies every curated payment_id of the hour
is in Postgres with a created_at at least as new."""

import time

import dagster as dg

from wallet_lake.lake.curation_run import read_curated_hour
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import ConnectResource, KafkaResource, LakeResource, PostgresResource
from wallet_lake.serving.connect import ConnectClient, sink_group_id, wait_for_sink
from wallet_lake.serving.deploy import sink_connector_config


class SinkWaitConfig(dg.Config):
    timeout_seconds: float = 300.0


def topic_end_offsets(kafka: KafkaResource) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**kafka.client_config(), "group.id": "wallet-lake-offset-probe", "enable.auto.commit": False})
    try:
        md = c.list_topics(kafka.topic, timeout=15)
        out = {}
        for p in md.topics[kafka.topic].partitions:
            _, high = c.get_watermark_offsets(TopicPartition(kafka.topic, p), timeout=15)
            out[p] = high
        return out
    finally:
        c.close()


@dg.asset(
    key=["postgres", "curated_payments"],
    deps=[["kafka", "payments_curated"]],
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="serving",
    kinds={"postgres", "kafka"},
    description="Postgres table curated_payments (PK payment_id), upserted by the Debezium JDBC sink connector.",
)
def postgres_curated_payments(
    context: dg.AssetExecutionContext,
    config: SinkWaitConfig,
    lake: LakeResource,
    kafka: KafkaResource,
    postgres: PostgresResource,
    connect: ConnectResource,
) -> dg.MaterializeResult:
    client = ConnectClient(connect.url)
    res = {"postgres": postgres, "kafka": kafka, "connect": connect}
    deployed = client.deploy(connect.connector_name, sink_connector_config(res))
    client.wait_running(connect.connector_name)
    started = time.monotonic()
    targets = {p: o for p, o in topic_end_offsets(kafka).items() if o > 0}
    wait_for_sink(kafka.bootstrap_servers, sink_group_id(connect.connector_name), kafka.topic, targets, timeout=config.timeout_seconds)
    waited = time.monotonic() - started

    store = lake.store()
    verified = 0
    missing: list[str] = []
    with postgres.connect() as conn:
        for hour in partition_hours(context):
            rows = read_curated_hour(store, hour)
            expected = {r["payment_id"]: r["created_at"] for r in rows}
            found = dict(conn.execute("SELECT payment_id, created_at FROM curated_payments WHERE payment_id = ANY(%s)", (list(expected),)).fetchall())
            for pid, created in expected.items():
                if pid not in found or found[pid] < created:
                    missing.append(pid)
            verified += len(expected)
    if missing:
        raise dg.Failure(
            description=f"{len(missing)} published payments are missing or older in Postgres after the sink caught up",
            metadata={"examples": dg.MetadataValue.json(missing[:20])},
        )
    return dg.MaterializeResult(
        metadata={"rows_verified": verified, "sink_wait_seconds": round(waited, 2), "connector": deployed}
    )
