"""Out of order: after a later state of a payment is in Postgres, replaying older states of the
same payment never regresses it (the table's BEFORE UPDATE trigger orders by created_at, then
lifecycle state), while a genuinely newer state still replaces the stored one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake_tests.integration.sink_support import (
    curated_row, ensure_sink_running, fetch_rows, publish_rows, random_day, rows_prefix_fixture, wait_for_shared_sink,
)

pytestmark = pytest.mark.integration
UTC = timezone.utc


prefix = rows_prefix_fixture("order")


def test_older_states_replayed_after_a_later_state_never_regress_the_row(stack_resources, prefix):
    res = stack_resources
    ensure_sink_running(res)
    day = random_day()
    t = datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC)
    later, earlier, want = [], [], {}

    def case(group: str, n: int, first: tuple, second: tuple, expected: tuple):
        for i in range(n):
            pid = f"{prefix}{group}-{i:03d}"
            later.append(curated_row(pid, first[1], first[0], amount_cents=1))
            earlier.append(curated_row(pid, second[1], second[0], amount_cents=2))
            want[pid] = expected

    h = timedelta(hours=1)
    # (status, created_at) published with the later hour, then with the replayed earlier hour.
    case("older-created", 60, ("APPROVED", t + h), ("PENDING", t), ("APPROVED", t + h, 1))
    case("same-created-lower-state", 40, ("REFUNDED", t), ("APPROVED", t), ("REFUNDED", t, 1))
    case("older-created-higher-state", 40, ("APPROVED", t + h), ("CHARGEBACK", t), ("APPROVED", t + h, 1))
    # Control: the second record is newer, so it must replace the first (updates do apply).
    case("newer", 40, ("PENDING", t), ("APPROVED", t + h), ("APPROVED", t + h, 2))

    first = publish_rows(res["kafka"], later)
    wait_for_shared_sink(res, first.end_offsets)  # the later hour is in Postgres, as its Postgres asset ensures
    second = publish_rows(res["kafka"], earlier)
    wait_for_shared_sink(res, second.end_offsets)

    got = fetch_rows(res["postgres"], list(want))
    assert {pid: (r["status"], r["created_at"], r["amount_cents"]) for pid, r in got.items()} == want
