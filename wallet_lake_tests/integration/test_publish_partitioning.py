"""Keys land on the partition a Java producer would choose: the partition of every delivered
message equals toPositive(murmur2(key)) % partitions, computed here by a port of Kafka's
Utils.murmur2 that is checked against the vectors of Kafka's own UtilsTest."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from confluent_kafka.admin import AdminClient

from wallet_lake.publish.topic import curated_topic_spec
from wallet_lake_tests.integration.sink_support import consume, create_topic, curated_row, delete_topics, publish_rows, run_prefix

pytestmark = pytest.mark.integration


def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2 (32-bit, seed 0x9747b28c), as a signed int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail, rem = length & ~3, length % 4
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions  # Utils.toPositive(murmur2(key)) % n


def test_murmur2_port_matches_kafkas_own_test_vectors():
    vectors = {  # Kafka clients UtilsTest.testMurmur2
        b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    assert {k: murmur2(k) for k in vectors} == vectors


def test_keys_land_on_the_java_compatible_partition(stack_resources):
    kafka = stack_resources["kafka"]
    admin = AdminClient(kafka.client_config())
    topic = f"t-partitioning-{uuid.uuid4().hex[:10]}"
    partitions = curated_topic_spec(topic).partitions
    create_topic(admin, topic, partitions, curated_topic_spec(topic).config)
    try:
        prefix = run_prefix("partition")
        created = datetime(2025, 5, 5, 12, tzinfo=timezone.utc)
        rows = [curated_row(f"{prefix}{i:05d}", created) for i in range(600)]
        result = publish_rows(kafka, rows, topic=topic)
        assert result.messages == len(rows)
        messages = consume(kafka, topic, {}, until=lambda got: len(got) >= len(rows))
        landed = {m.key(): m.partition() for m in messages}
        expected = {r["payment_id"].encode(): java_partition(r["payment_id"].encode(), partitions) for r in rows}
        assert landed == expected
        assert len(set(landed.values())) == partitions  # the keys spread over every partition
    finally:
        delete_topics(admin, [topic])
