"""The Postgres step's wait for the sink (serving/connect.wait_for_sink) against the real broker,
over SASL_SSL: it passes only once the group's committed offsets reach the targets, times out
naming the partitions behind, and a failing `check` (the connector's task FAILED) ends it."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from wallet_lake.serving.connect import committed_offsets, wait_for_sink
from wallet_lake_tests.integration.sink_support import throwaway_curated_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack_resources):
    with throwaway_curated_topic(stack_resources, "t-wait-") as name:
        yield name


def _commit(conf: dict, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for `group` as a sink task does after a flush (without joining the group)."""
    c = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def test_waits_for_every_partition_and_fails_fast_or_times_out(stack_resources, topic):
    conf = stack_resources["kafka"].client_config()
    group = f"t-wait-{uuid.uuid4().hex[:10]}"
    targets = {0: 3, 1: 2}
    checks = []

    # Nothing committed yet: the wait ends at its timeout and names what is behind; the check ran.
    with pytest.raises(TimeoutError, match=rf"sink group {group} has not caught up on {topic}.*0: \(-1001, 3\)"):
        wait_for_sink(conf, group, topic, targets, timeout=1.0, check=lambda: checks.append(1))
    assert checks

    # One partition there, the other short by one: still behind.
    _commit(conf, group, topic, {0: 3, 1: 1})
    with pytest.raises(TimeoutError, match=r"1: \(1, 2\)"):
        wait_for_sink(conf, group, topic, targets, timeout=0.5)

    # A failed connector ends the wait at once with its own error, not a timeout.
    def failed():
        raise RuntimeError("task 0 FAILED")

    with pytest.raises(RuntimeError, match="task 0 FAILED"):
        wait_for_sink(conf, group, topic, targets, timeout=60, check=failed)

    # Every partition at its target: the committed offsets come back.
    _commit(conf, group, topic, {1: 2})
    assert wait_for_sink(conf, group, topic, targets, timeout=30) == {0: 3, 1: 2}
    assert committed_offsets(conf, group, topic, [0, 1, 2]) == {0: 3, 1: 2, 2: -1001}
    admin = AdminClient(conf)  # kept referenced until its request is answered
    admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=30)
