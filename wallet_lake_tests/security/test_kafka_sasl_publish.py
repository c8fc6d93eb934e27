"""The pipeline's own publish over SASL_SSL: a KafkaResource configured from the WL_KAFKA_* variables
(SASL_SSL, SCRAM-SHA-512, the stack's CA, the password from WL_KAFKA_SASL_PASSWORD) publishes curated
records to the curated topic through the topic asset's own steps (ensure_topic, curated_records,
producer_config, publish, compare_published_keys) as the `producer` principal; a principal without
ACLs fails fast with DeliveryFailed naming the topic and the authorization error.

The producer may write the curated topic and no other, so the records go there and the shared
sink upserts them into Postgres: hand-built rows with a payment_id prefix unique to the run and a
created_at day in 2025 (outside the hours other tests generate), removed from Postgres once the
sink has passed them, as the sink tests do (integration/sink_support.py)."""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, TopicPartition

from wallet_lake.contracts.schema import arrow_schema
from wallet_lake.publish.checks import compare_published_keys
from wallet_lake.publish.producer import DeliveryFailed, producer_config, publish
from wallet_lake.publish.records import SCHEMA_HEADERS, curated_records
from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
from wallet_lake.resources import resources_from_os_env
from wallet_lake.security.kafka_acls import USERS
from wallet_lake.security.secrets import forget
from wallet_lake_tests.integration.sink_support import consume, curated_row, delete_rows, random_day, run_prefix, wait_for_shared_sink

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ["WL_KAFKA_BOOTSTRAP"]
ROWS = 40


def sasl_kafka(monkeypatch, user: str):
    """The pipeline's KafkaResource as resource_values builds it from the environment, with the
    WL_KAFKA_* variables saying: SASL_SSL, SCRAM-SHA-512, `user`, password in the environment."""
    monkeypatch.setenv("WL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("WL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("WL_KAFKA_SASL_USERNAME", user)
    monkeypatch.setenv("WL_KAFKA_SASL_PASSWORD", os.environ[USERS[user]])
    monkeypatch.delenv("WL_KAFKA_SASL_PASSWORD_SECRET_ID", raising=False)
    forget("WL_KAFKA_SASL_PASSWORD")  # resolve_secret remembers values per process
    kafka = resources_from_os_env()["kafka"]
    assert (kafka.bootstrap_servers, kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == (
        BOOTSTRAP, "SASL_SSL", "SCRAM-SHA-512", user)
    return kafka


@pytest.fixture
def forget_sasl_password():
    yield
    forget("WL_KAFKA_SASL_PASSWORD")


@pytest.fixture
def published(stack_resources):
    """Records the end offsets of each publish; afterwards waits until the shared sink passed
    them (so no row lands after the clean-up) and deletes this run's rows from Postgres."""
    state = {"prefix": run_prefix("sasl"), "end_offsets": {}}
    yield state
    try:
        if state["end_offsets"]:
            wait_for_shared_sink(stack_resources, state["end_offsets"], timeout=120)
    finally:
        delete_rows(stack_resources["postgres"], state["prefix"])


def curated_table(prefix: str) -> pa.Table:
    """Valid curated rows (as the curated Parquet holds them) of one hour of a 2025 day."""
    day = random_day()
    start = datetime(day.year, day.month, day.day, 9, tzinfo=timezone.utc)
    rows = [curated_row(f"{prefix}{i:04d}", start + timedelta(seconds=11 * i)) for i in range(ROWS)]
    return pa.Table.from_pylist(rows, schema=arrow_schema())


def high_watermarks(observer, topic: str) -> dict[int, int]:
    c = Consumer({**observer.client_config(), "group.id": f"t-reader-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=15).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def test_producer_principal_publishes_curated_records_with_settings_from_configuration(
    stack_resources, monkeypatch, forget_sasl_password, published,
):
    observer = stack_resources["kafka"]
    kafka = sasl_kafka(monkeypatch, "producer")
    conf = producer_config(kafka.client_config())
    assert (conf["bootstrap.servers"], conf["security.protocol"], conf["sasl.mechanism"], conf["sasl.username"]) == (
        BOOTSTRAP, "SASL_SSL", "SCRAM-SHA-512", "producer")
    assert conf["sasl.password"] == os.environ["WL_KAFKA_PRODUCER_PASSWORD"]

    prefix = published["prefix"]
    table = curated_table(prefix)
    ids = table.column("payment_id").to_pylist()
    start = high_watermarks(observer, kafka.topic)

    # What the topic asset does for an hour, with the producer principal's own rights.
    started = time.monotonic()
    assert ensure_topic(kafka.admin(), curated_topic_spec(kafka.topic, kafka.replication_factor)) == "exists"
    result = publish(curated_records(table), kafka.topic, conf, collect_keys=True)
    published["end_offsets"] = result.end_offsets
    assert time.monotonic() - started < 30
    assert result.messages == ROWS
    assert compare_published_keys(ids, result.delivered_keys).passed

    # Read back by the tests principal (the producer may not read), from where the topic ended before.
    def mine(got):  # other publishers may write the topic meanwhile
        return [m for m in got if m.key().startswith(prefix.encode())]

    messages = mine(consume(observer, kafka.topic, start, until=lambda got: len(mine(got)) >= ROWS, timeout=20))
    assert sorted(m.key().decode() for m in messages) == sorted(ids)
    assert all(m.offset() < result.end_offsets[m.partition()] for m in messages)
    assert all(m.value().startswith(b'{"payment_id":"' + m.key() + b'"') for m in messages)


def test_principal_without_acls_fails_the_publish_with_an_authorization_error(monkeypatch, forget_sasl_password):
    kafka = sasl_kafka(monkeypatch, "intruder")
    table = curated_table(run_prefix("sasl-intruder"))
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        publish(curated_records(table), kafka.topic, producer_config(kafka.client_config()), collect_keys=True)
    assert time.monotonic() - started < 20  # refused at once, not after message.timeout.ms
    message = str(failed.value)
    # 0 of however many were enqueued before the producer stopped (none when its fatal error came first)
    assert re.search(rf"publish to topic {re.escape(kafka.topic)} at broker\(s\) {re.escape(BOOTSTRAP)} failed: 0 of \d+ records acknowledged", message)
    # The records' TOPIC_AUTHORIZATION_FAILED, or librdkafka's fatal CLUSTER_AUTHORIZATION_FAILED
    # for the idempotent producer id, whichever the broker answers first: never a bare KafkaException.
    assert "AUTHORIZATION_FAILED" in message and "refused the client's principal" in message
    assert os.environ["WL_KAFKA_INTRUDER_PASSWORD"] not in message
