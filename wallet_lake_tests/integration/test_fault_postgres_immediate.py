"""Postgres stopped with `pg_ctl stop -m immediate` in the middle of the sink (every backend
quits at once, the sink's open transaction is lost, the next start runs crash recovery),
recovered the operator's way (`stack/wallet-stack up`): every payment is in Postgres exactly
once with the values of its newest state, none regressed, none in the dead-letter topic, and
the report aggregates of every dt the load touched equal a recomputation from the table,
brought there by the refresher alone.

Stops the stack's Postgres (other tests on the stack see an outage): run it on a stack of your
own (see README, Tests on the real stack); the teardown leaves the stack healthy even when the
test fails."""

from __future__ import annotations

import pytest

from wallet_lake_tests.integration.fault_support import (
    RecoveryClock, assert_recovered, count_loaded_or_none, dead_letter_topic, merged_end_offsets, payment_lifecycles,
    restore_stack_and_remove_rows, sink_behind, topic_ends,
)
from wallet_lake_tests.integration.sink_support import (
    ensure_sink_running, publish_rows, random_day, run_prefix, start_stack, stop_postgres_immediately, wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
PAYMENTS = 20_000


@pytest.fixture
def prefix(stack_resources):
    p = run_prefix("pg-immediate")
    yield p
    restore_stack_and_remove_rows(stack_resources, p)


def test_postgres_immediate_stop_mid_sink_every_row_once_and_reports_consistent(stack_resources, prefix, record_property):
    res = stack_resources
    kafka, pg = res["kafka"], res["postgres"]
    ensure_sink_running(res)
    load = payment_lifecycles(prefix, PAYMENTS, random_day())
    dlq = dead_letter_topic(res)
    dlq_since = topic_ends(kafka, dlq)

    published = publish_rows(kafka, load.records)
    targets = merged_end_offsets(published)
    loaded_before = wait_until("the sink to start loading", lambda: count_loaded_or_none(pg, load), 120, poll=0.05)
    behind_at_stop = sink_behind(res, targets)
    try:
        stop_postgres_immediately()
        clock = RecoveryClock("Postgres immediate stop mid-sink")
    finally:
        start_stack()
    clock.mark("stack_up")
    assert behind_at_stop, "the sink had committed the whole load before Postgres stopped: not mid-sink"
    assert loaded_before < len(load.final)

    assert_recovered(res, prefix, load, targets, dlq, dlq_since, clock, record_property)
