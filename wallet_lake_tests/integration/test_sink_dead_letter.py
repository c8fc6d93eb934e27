"""A poison message (valid JSON, wrong schema) goes to the dead-letter topic with Connect's error
context headers, and the records around it still load.

Runs the project's connector config on a topic of its own (a throwaway connector writing the
real curated_payments table), so a poison that got past the converter could never stall the
shared sink."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.contracts.schema import connect_value_schema
from wallet_lake.publish.producer import producer_config, publish
from wallet_lake.publish.records import curated_record
from wallet_lake.serving.connect import raise_if_failed, sink_group_id, wait_for_sink
from wallet_lake_tests.integration.sink_support import (
    consume, count_rows, curated_row, curated_topic_fixture, random_day, rows_prefix_fixture, throwaway_connector,
)

pytestmark = pytest.mark.integration
UTC = timezone.utc


prefix = rows_prefix_fixture("dlq")


topic = curated_topic_fixture("t-dlq-")


def _poison(prefix: str) -> dict[str, bytes]:
    """Values the converter must refuse against the contract's schema (schema.content). (A field
    of the wrong JSON type, such as amount_cents as text, is coerced by JsonConverter rather than
    refused: the topic's ACLs, which let only the pipeline's producer write, are the guard.)"""
    good = json.loads(curated_record(curated_row(f"{prefix}template", datetime(2026, 1, 1, tzinfo=UTC)))[1])
    return {
        # Valid JSON, but required fields of the schema are missing.
        f"{prefix}poison-missing-required": json.dumps({"payment_id": f"{prefix}poison-missing-required", "amount_cents": 5}).encode(),
        # Valid JSON, not a struct.
        f"{prefix}poison-not-a-struct": json.dumps(["not", "a", "struct"]).encode(),
        # An old-format value with the schema embedded (a record from before schema.content).
        f"{prefix}poison-envelope": json.dumps({"schema": connect_value_schema(), "payload": {**good, "payment_id": f"{prefix}poison-envelope"}}).encode(),
    }


def test_poison_messages_land_in_the_dead_letter_topic_and_the_rest_still_load(stack_resources, prefix, topic):
    res = stack_resources
    kafka = res["kafka"]
    day = random_day()
    rows = [curated_row(f"{prefix}{i:03d}", datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(minutes=i)) for i in range(60)]
    poison = _poison(prefix)
    records = [curated_record(r) for r in rows[:30]] + [(k.encode(), v) for k, v in poison.items()] + [curated_record(r) for r in rows[30:]]
    result = publish(records, topic, producer_config(kafka.client_config()))

    with throwaway_connector(res, topic) as name:
        client = res["connect"].client()
        wait_for_sink(kafka.client_config(), sink_group_id(name), topic, result.end_offsets, timeout=120, poll=0.5,
                      check=lambda: raise_if_failed(client.status_or_none(name) or {}))
        assert count_rows(res["postgres"], [r["payment_id"] for r in rows]) == (60, 60)
        raise_if_failed(client.status(name))

        dead = consume(kafka, f"{topic}.dlq", {}, until=lambda got: len(got) >= len(poison), timeout=60)
    by_key = {m.key().decode(): m for m in dead}
    assert set(by_key) == set(poison)
    for key, msg in by_key.items():
        assert msg.value() == poison[key]  # the original bytes, ready for a fix-and-replay
        headers = {k: (v.decode() if v is not None else None) for k, v in msg.headers()}
        assert headers["__connect.errors.topic"] == topic
        assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
        assert headers["__connect.errors.connector.name"] == name
        partition, offset = int(headers["__connect.errors.partition"]), int(headers["__connect.errors.offset"])
        assert offset < result.end_offsets[partition]
        assert headers["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
        assert headers["__connect.errors.exception.message"]
