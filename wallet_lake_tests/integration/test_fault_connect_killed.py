"""SIGKILL of the Kafka Connect worker in the middle of a load (a crash: no task stop, no offset
commit, no group leave), recovered the operator's way (`stack/wallet-stack up`): every payment
is in Postgres exactly once with the values of its newest state, none regressed to an older
one, none in the dead-letter topic, and the report aggregates of every dt the load touched
equal a recomputation from the table, brought there by the refresher alone.

Kills the stack's worker (other tests on the stack see an outage): run it on a stack of your
own (see README, Tests on the real stack); the teardown leaves the stack healthy even when the
test fails."""

from __future__ import annotations

import pytest

from wallet_lake_tests.integration.fault_support import (
    RecoveryClock, assert_recovered, count_loaded_or_none, dead_letter_topic, merged_end_offsets, payment_lifecycles,
    restore_stack_and_remove_rows, topic_ends,
)
from wallet_lake_tests.integration.sink_support import (
    ensure_sink_running, kill_service, publish_rows, random_day, run_prefix, start_stack, wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
PAYMENTS = 20_000


@pytest.fixture
def prefix(stack_resources):
    p = run_prefix("connect-kill")
    yield p
    restore_stack_and_remove_rows(stack_resources, p)


def test_connect_worker_killed_mid_load_every_row_once_and_reports_consistent(stack_resources, prefix, record_property):
    res = stack_resources
    kafka, pg = res["kafka"], res["postgres"]
    ensure_sink_running(res)
    load = payment_lifecycles(prefix, PAYMENTS, random_day())
    dlq = dead_letter_topic(res)
    dlq_since = topic_ends(kafka, dlq)
    split = len(load.records) * 2 // 3
    head, tail = load.records[:split], load.records[split:]
    head_payments = len({r["payment_id"] for r in head})

    first = publish_rows(kafka, head)
    wait_until("the sink to start loading", lambda: count_loaded_or_none(pg, load), 120, poll=0.05)
    try:
        kill_service("connect")
        clock = RecoveryClock("Connect worker SIGKILL mid-load")
        loaded_at_kill = count_loaded_or_none(pg, load)
        # The rest of the load arrives while the worker is dead.
        second = publish_rows(kafka, tail)
    finally:
        start_stack()
    clock.mark("stack_up")
    assert 0 < loaded_at_kill < head_payments, f"killed after {loaded_at_kill} of {head_payments} payments: not mid-load"

    assert_recovered(res, prefix, load, merged_end_offsets(first, second), dlq, dlq_since, clock, record_property)
