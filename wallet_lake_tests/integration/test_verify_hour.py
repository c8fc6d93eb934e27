"""What the Postgres step accepts (serving/verify.py, the comparison in SQL): every curated
payment of the hour in curated_payments with a created_at at least as new as curated, at the
sink's millisecond precision; a payment that moved on (a later refund) is loaded, counted in the
newer row's dt; absent or older rows are lost. Curated rows in a folder lake, stored rows in the
stack's Postgres, both for a 22nd-century hour no one else uses."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from wallet_lake.contracts.schema import CURATED_FIELDS
from wallet_lake.lake.store import LocalLakeStore
from wallet_lake.serving.verify import verify_hour
from wallet_lake_tests.lake_support import far_landing_hour, publish_rows

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc


def curated_row(pid: str, created_at: dt.datetime) -> dict:
    row = {"payment_id": pid, "merchant_id": "m-verify", "user_id": "u", "amount_cents": 100, "currency": "EUR",
           "status": "APPROVED", "payment_method": "card", "risk_score": 0.1, "authorized_at": None, "completed_at": None,
           "created_at": created_at, "source_system": "t", "decline_reason": None, "dt": created_at.date(),
           "hour": created_at.hour, "authorized_to_complete_ms": None, "is_approved": True, "is_refunded": False,
           "processed_at": created_at, "curated_version": 1}
    assert set(row) == {f.name for f in CURATED_FIELDS}
    return row


@pytest.fixture
def hour_rows(tmp_path, stack_resources):
    postgres = stack_resources["postgres"]
    hour = far_landing_hour()
    tag = uuid.uuid4().hex[:8]
    pid = {k: f"verify-{tag}-{k}" for k in ("moved", "same", "older", "absent", "ms_floor", "ms_before")}
    pid["quoted"] = f'verify-{tag}-"quoted",\\{{NULL}} \nid'  # quotes, backslashes, commas, braces and newlines stay data
    at = hour + dt.timedelta(minutes=5, microseconds=123_456)
    curated = {k: at for k in pid}
    stored = {  # what Postgres holds per payment (absent: nothing)
        "moved": dt.datetime.combine(at.date() + dt.timedelta(days=1), dt.time(9), UTC),  # refunded the next day
        "same": at,
        "older": at - dt.timedelta(minutes=1),  # a regression the sink must never make
        "ms_floor": at.replace(microsecond=123_000),  # the sink keeps milliseconds: not a loss
        "ms_before": at.replace(microsecond=122_000),  # one millisecond older: lost
        "quoted": at,
    }
    store = LocalLakeStore(tmp_path / "lake")
    publish_rows(store, hour, [curated_row(pid[k], t) for k, t in curated.items()])
    rows = [curated_row(pid[k], t) for k, t in stored.items()]
    names = list(rows[0])
    with postgres.connect() as conn:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO curated_payments ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                            [[r[n] for n in names] for r in rows])
    try:
        yield store, hour, pid, at.date()
    finally:
        with postgres.connect() as conn:
            conn.execute("DELETE FROM curated_payments WHERE payment_id = ANY(%s)", (list(pid.values()),))
            days = [at.date(), at.date() + dt.timedelta(days=1)]
            conn.execute("DELETE FROM report_aggregate_dirty_dts WHERE dt = ANY(%s)", (days,))


def test_absent_and_older_rows_are_lost_newer_ones_loaded_in_their_own_dt(hour_rows, stack_resources):
    store, hour, pid, day = hour_rows
    with stack_resources["postgres"].connect() as conn:
        v = verify_hour(conn, store, hour)
    assert v.expected == 7
    assert v.missing == sorted([pid["older"], pid["absent"], pid["ms_before"]])
    assert v.by_dt == {day: 3, day + dt.timedelta(days=1): 1}  # same + ms_floor + quoted; moved
    assert v.touched_dts == {day, day + dt.timedelta(days=1)}
    assert v.verified_at is not None
