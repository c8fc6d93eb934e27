"""SIGKILL of the Kafka broker (a crash: no controlled shutdown, the log recovered at the next
start), once in the middle of a publish and once in the middle of the sink, recovered the
operator's way (`stack/wallet-stack up`, and for the failed publish a rerun of the hour): every
payment is in Postgres exactly once with the values of its newest state, none regressed, none
in the dead-letter topic, and the report aggregates of every dt the load touched equal a
recomputation from the table, brought there by the refresher alone.

Kills the stack's broker (other tests on the stack see an outage): run it on a stack of your
own (see README, Tests on the real stack); the teardown leaves the stack healthy even when the
test fails."""

from __future__ import annotations

import pytest

from wallet_lake.publish.producer import DeliveryFailed, producer_config, publish
from wallet_lake.publish.records import SCHEMA_HEADERS, curated_record
from wallet_lake_tests.integration.fault_support import (
    RecoveryClock, assert_recovered, count_loaded_or_none, dead_letter_topic, merged_end_offsets, payment_lifecycles,
    restore_stack_and_remove_rows, sink_behind, topic_ends,
)
from wallet_lake_tests.integration.sink_support import (
    ensure_sink_running, kill_service, publish_rows, random_day, run_prefix, start_stack, wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
PAYMENTS = 20_000
# Short client timeouts so the failed publish surfaces in seconds (production keeps the defaults).
QUICK_FAIL = {"message.timeout.ms": 6000, "socket.connection.setup.timeout.ms": 2000, "reconnect.backoff.max.ms": 1000}


@pytest.fixture
def prefix(stack_resources):
    p = run_prefix("broker-kill")
    yield p
    restore_stack_and_remove_rows(stack_resources, p)


def test_broker_killed_mid_publish_the_rerun_loads_every_row_once_and_reports_consistent(stack_resources, prefix, record_property):
    res = stack_resources
    kafka = res["kafka"]
    ensure_sink_running(res)
    load = payment_lifecycles(prefix, PAYMENTS, random_day())
    dlq = dead_letter_topic(res)
    dlq_since = topic_ends(kafka, dlq)
    clocks: list[RecoveryClock] = []

    def records_with_the_broker_killed_halfway():
        for i, row in enumerate(load.records):
            if i == len(load.records) // 2:
                kill_service("kafka")
                clocks.append(RecoveryClock("broker SIGKILL mid-publish"))
            yield curated_record(row)

    try:
        with pytest.raises(DeliveryFailed) as failed:
            publish(records_with_the_broker_killed_halfway(), kafka.topic, producer_config(kafka.client_config(), QUICK_FAIL),
                    headers=SCHEMA_HEADERS)
    finally:
        start_stack()
    clock = clocks[0]
    clock.mark("stack_up")
    message = str(failed.value)
    assert f"at broker(s) {kafka.bootstrap_servers} failed" in message
    assert f"of {len(load.records)} records acknowledged" in message

    # The operator's rerun of the hour: the same records again, default settings.
    ensure_sink_running(res)
    rerun = publish_rows(kafka, load.records)
    assert rerun.messages == len(load.records)
    clock.mark("rerun_published")
    assert_recovered(res, prefix, load, merged_end_offsets(rerun), dlq, dlq_since, clock, record_property)


def test_broker_killed_mid_sink_every_row_once_and_reports_consistent(stack_resources, prefix, record_property):
    res = stack_resources
    kafka, pg = res["kafka"], res["postgres"]
    ensure_sink_running(res)
    load = payment_lifecycles(prefix, PAYMENTS, random_day())
    dlq = dead_letter_topic(res)
    dlq_since = topic_ends(kafka, dlq)

    published = publish_rows(kafka, load.records)
    targets = merged_end_offsets(published)
    wait_until("the sink to start loading", lambda: count_loaded_or_none(pg, load), 120, poll=0.05)
    behind_at_kill = sink_behind(res, targets)
    try:
        kill_service("kafka")
        clock = RecoveryClock("broker SIGKILL mid-sink")
    finally:
        start_stack()
    clock.mark("stack_up")
    assert behind_at_kill, "the sink had committed the whole load before the broker was killed: not mid-sink"

    assert_recovered(res, prefix, load, targets, dlq, dlq_since, clock, record_property)
