"""Stopping the Connect worker in the middle of a load and starting it again loses nothing and
duplicates nothing: every payment of the load is in Postgres exactly once, with its values.

Stops the shared worker (other tests on the stack see a short outage) and always brings it back
with `stack/wallet-stack up`, leaving the sink connector RUNNING."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake_tests.integration.sink_support import (
    count_rows, curated_row, ensure_sink_running, fetch_rows, publish_rows, random_day, rows_prefix_fixture,
    start_stack, stop_service, wait_for_shared_sink, wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
UTC = timezone.utc


prefix = rows_prefix_fixture("connect-stop")


def test_connect_worker_stopped_mid_load_and_started_again_loads_every_row_once(stack_resources, prefix):
    res = stack_resources
    pg = res["postgres"]
    ensure_sink_running(res)
    day = random_day()
    start = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
    rows = [curated_row(f"{prefix}{i:06d}", start + timedelta(milliseconds=250 * i), ["APPROVED", "DECLINED", "REFUNDED"][i % 3]) for i in range(30_000)]
    ids = [r["payment_id"] for r in rows]
    head, tail = rows[:20_000], rows[20_000:]

    first = publish_rows(res["kafka"], head)
    loaded_at_stop = wait_until("the sink to start loading the batch", lambda: count_rows(pg, ids)[0], 120, poll=0.1)
    try:
        stop_service("connect")
        # The rest of the load arrives while the worker is down.
        second = publish_rows(res["kafka"], tail)
    finally:
        start_stack()
    ensure_sink_running(res)
    targets = {p: max(first.end_offsets.get(p, 0), second.end_offsets.get(p, 0)) for p in {*first.end_offsets, *second.end_offsets}}
    wait_for_shared_sink(res, targets, timeout=300)

    assert 0 < loaded_at_stop < len(head), f"the worker was stopped after {loaded_at_stop} rows: not mid-load"
    assert count_rows(pg, ids) == (len(rows), len(rows))
    got = fetch_rows(pg, ids)
    assert {pid: (r["status"], r["created_at"], r["amount_cents"]) for pid, r in got.items()} == {
        r["payment_id"]: (r["status"], r["created_at"], r["amount_cents"]) for r in rows
    }
