"""The S3 arrival sensor asks for exactly the landing hours with new objects, once."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from wallet_lake.defs.landing.sensors import landing_arrivals_sensor
from wallet_lake.lake.store import ObjectInfo

pytestmark = pytest.mark.integration


def _evaluate(instance, lake, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake})
    return landing_arrivals_sensor(ctx)


def test_new_landing_object_requests_its_hour_once(stack_resources):
    lake = stack_resources["lake"]
    store = lake.store()
    instance = dg.DagsterInstance.get()
    # Start from "now": everything already in the lake counts as seen.
    start_cursor = json.dumps({"since": datetime.now(timezone.utc).isoformat(), "keys_at_since": []})
    time.sleep(1.1)  # S3 last-modified has one-second resolution: the new object must be newer
    hour = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(hours=random.randrange(24 * 200))
    key = hour.strftime("raw/payments/dt=%Y/%m/%d/%H/") + f"sensor-test-{time.time_ns()}.ndjson"
    store.put_bytes(key, b'{"payment_id": "p"}\n')

    first = _evaluate(instance, lake, start_cursor)
    pk = hour.strftime("%Y-%m-%d-%H:00")
    assert [r.partition_key for r in first.run_requests] == [pk]
    assert first.run_requests[0].run_key.startswith(pk + "@")

    second = _evaluate(instance, lake, first.cursor)
    assert second.run_requests == []
    store.delete([key])


def test_cursor_keeps_keys_seen_at_the_same_instant():
    from wallet_lake.defs.landing.sensors import advance_cursor, new_objects

    t = datetime(2026, 11, 24, 13, 0, 5, tzinfo=timezone.utc)
    a = ObjectInfo("raw/payments/dt=2026/11/24/13/a.ndjson", 1, t)
    b = ObjectInfo("raw/payments/dt=2026/11/24/13/b.ndjson", 1, t)
    cursor = advance_cursor({}, [a])
    # b arrives with the same last-modified second after a was seen: it is still new.
    assert new_objects([a, b], cursor) == [b]
    cursor = advance_cursor(cursor, [b])
    assert new_objects([a, b], cursor) == []
