"""Stopping the broker while a landing hour is being published fails the publish with a clear
DeliveryFailed naming the broker; rerunning the same publish once the broker is back completes,
and Postgres holds every payment exactly once.

Stops the shared broker (other tests on the stack see a short outage) and always brings it back
with `stack/wallet-stack up`, leaving the sink connector RUNNING."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.publish.producer import DeliveryFailed, producer_config, publish
from wallet_lake.publish.records import curated_record
from wallet_lake_tests.integration.sink_support import (
    count_rows, curated_row, delete_rows, ensure_sink_running, fetch_rows, publish_rows, random_day, run_prefix, start_stack,
    stop_service, wait_for_shared_sink,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
UTC = timezone.utc
# Short client timeouts so the failure surfaces in seconds (production keeps the defaults).
QUICK_FAIL = {"message.timeout.ms": 6000, "socket.connection.setup.timeout.ms": 2000, "reconnect.backoff.max.ms": 1000}


@pytest.fixture
def prefix(stack_resources):
    p = run_prefix("broker-down")
    yield p
    delete_rows(stack_resources["postgres"], p)


def test_broker_stopped_mid_publish_fails_clearly_and_the_rerun_loads_every_row_once(stack_resources, prefix):
    res = stack_resources
    kafka, pg = res["kafka"], res["postgres"]
    ensure_sink_running(res)
    day = random_day()
    start = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    rows = [curated_row(f"{prefix}{i:05d}", start + timedelta(seconds=i), ["APPROVED", "PENDING", "DECLINED"][i % 3]) for i in range(6000)]
    ids = [r["payment_id"] for r in rows]

    def records_with_the_broker_stopped_halfway():
        for i, row in enumerate(rows):
            if i == len(rows) // 2:
                stop_service("kafka")
            yield curated_record(row)

    try:
        with pytest.raises(DeliveryFailed) as failed:
            publish(records_with_the_broker_stopped_halfway(), kafka.topic, producer_config(kafka.client_config(), QUICK_FAIL))
    finally:
        start_stack()
    message = str(failed.value)
    assert f"at broker(s) {kafka.bootstrap_servers} failed" in message
    assert f"of {len(rows)} records acknowledged" in message
    assert "_MSG_TIMED_OUT" in message or "_TRANSPORT" in message or "Connection refused" in message, message

    ensure_sink_running(res)
    rerun = publish_rows(kafka, rows)  # the same hour again, default settings
    assert rerun.messages == len(rows)
    wait_for_shared_sink(res, rerun.end_offsets, timeout=300)
    assert count_rows(pg, ids) == (len(rows), len(rows))
    got = fetch_rows(pg, ids)
    assert {pid: (r["status"], r["created_at"]) for pid, r in got.items()} == {r["payment_id"]: (r["status"], r["created_at"]) for r in rows}
