"""The landing sensor's decisions (wallet_lake/lake/arrivals.py): what is new, which hours are
ready, what a tick lists, and the cursor. The lake here is a dict of listings; the expected
values (prefixes, hours, bounds) are written out from the layout and the clock, not from the
module."""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, timedelta, timezone

import pytest

from wallet_lake.lake.arrivals import ArrivalSettings, ArrivalState, dump_cursor, evaluate, load_cursor, plan_listing
from wallet_lake.lake.store import ObjectInfo

UTC = timezone.utc
H = timedelta(hours=1)
START = datetime(2026, 1, 1, tzinfo=UTC)  # first partition of hourly_landing
SETTINGS = ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=7)


def exists(hour: datetime, at: datetime) -> bool:
    """An hourly UTC partition exists once its hour has closed, from START on."""
    return hour >= START and hour + H <= at


def key(hour: datetime, name: str) -> str:
    return f"raw/payments/dt={hour:%Y/%m/%d/%H}/{name}.ndjson"


def pk(hour: datetime) -> str:
    return f"{hour:%Y-%m-%d-%H}:00"


def day_prefix(d) -> str:
    return f"raw/payments/dt={d:%Y/%m/%d}/"


class Lake:
    """Objects by key; listing a prefix returns what S3 would (keys starting with it)."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectInfo] = {}
        self._keys: list[str] = []  # sorted, as S3 lists them

    def put(self, key: str, etag: str, last_modified: datetime, size: int = 10) -> None:
        if key not in self.objects:
            bisect.insort(self._keys, key)
        self.objects[key] = ObjectInfo(key, size, last_modified, etag)

    def delete(self, key: str) -> None:
        del self.objects[key]
        self._keys.remove(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        out = []
        for k in self._keys[bisect.bisect_left(self._keys, prefix) :]:
            if not k.startswith(prefix):
                break
            out.append(self.objects[k])
        return out


class Sensor:
    """Ticks like the sensor: plan, list, evaluate, store the cursor as JSON text."""

    def __init__(self, lake: Lake, settings: ArrivalSettings = SETTINGS) -> None:
        self.lake, self.settings, self.cursor = lake, settings, None
        self.listed: list[list[str]] = []

    def tick(self, now: datetime):
        state, note = load_cursor(self.cursor)
        assert note is None
        plan = plan_listing(state, now, self.settings)
        self.listed.append(plan.prefixes)
        result = evaluate(state, plan, {p: self.lake.list(p) for p in plan.prefixes}, now, self.settings, exists)
        self.cursor = dump_cursor(result.state)
        return result


def requested(result) -> list[str]:
    return [r.partition_key for r in result.ready]


def test_an_open_hour_waits_in_the_cursor_and_never_fails_the_tick():
    lake = Lake()
    sensor = Sensor(lake)
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    open_hour = datetime(2026, 11, 24, 14, tzinfo=UTC)
    lake.put(key(open_hour, "a"), '"e1"', now - timedelta(minutes=5))

    result = sensor.tick(now)
    assert requested(result) == []
    assert [w.partition_key for w in result.waiting] == [pk(open_hour)]
    assert result.waiting[0].ready_at == open_hour + H + timedelta(seconds=300)
    assert json.loads(sensor.cursor)["waiting"] == [pk(open_hour)]


def test_a_closed_hour_is_asked_for_once_it_has_settled_then_never_again():
    lake = Lake()
    sensor = Sensor(lake)
    hour = datetime(2026, 11, 24, 14, tzinfo=UTC)
    lake.put(key(hour, "a"), '"e1"', hour + timedelta(minutes=10))
    lake.put(key(hour, "b"), '"e2"', hour + timedelta(minutes=59, seconds=59))
    settled = hour + H + timedelta(seconds=300)

    assert requested(sensor.tick(hour + timedelta(minutes=30))) == []
    assert requested(sensor.tick(hour + H)) == []  # closed, not settled
    assert requested(sensor.tick(settled - timedelta(seconds=1))) == []
    result = sensor.tick(settled)
    assert requested(result) == [pk(hour)]
    assert result.ready[0].objects == 2
    assert result.ready[0].run_key.startswith(pk(hour) + "@")
    assert json.loads(sensor.cursor)["waiting"] == []
    for minutes in range(1, 60, 7):
        assert requested(sensor.tick(settled + timedelta(minutes=minutes))) == []


def test_a_late_object_of_a_closed_hour_is_asked_for_in_the_tick_that_sees_it():
    lake = Lake()
    sensor = Sensor(lake)
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    closed = datetime(2026, 11, 24, 9, tzinfo=UTC)
    lake.put(key(closed, "a"), '"e1"', closed + timedelta(minutes=3))
    assert requested(sensor.tick(now)) == [pk(closed)]  # first tick of this day: asked for (not yet known)

    open_hour = datetime(2026, 11, 24, 14, tzinfo=UTC)
    lake.put(key(open_hour, "x"), '"e9"', now + timedelta(seconds=10))
    lake.put(key(closed, "late"), '"e2"', now + timedelta(seconds=20))
    result = sensor.tick(now + timedelta(seconds=30))
    assert requested(result) == [pk(closed)]
    assert result.ready[0].known is True
    assert [w.partition_key for w in result.waiting] == [pk(open_hour)]


def test_a_slow_upload_older_than_everything_seen_is_found():
    lake = Lake()
    sensor = Sensor(lake)
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    lake.put(key(hour, "fast"), '"e1"', hour + timedelta(minutes=50))
    now = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    first = sensor.tick(now)
    assert requested(first) == [pk(hour)]
    # A multipart upload started at 10:05 becomes visible at 14:01: its LastModified is older than
    # every object the cursor has seen.
    lake.put(key(hour, "slow"), '"e2-3"', hour + timedelta(minutes=5))
    result = sensor.tick(now + timedelta(minutes=1))
    assert requested(result) == [pk(hour)]
    assert result.ready[0].run_key != first.ready[0].run_key
    assert requested(sensor.tick(now + timedelta(minutes=2))) == []


def test_a_rewrite_with_new_content_is_found_and_the_same_content_is_not():
    lake = Lake()
    sensor = Sensor(lake)
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    lake.put(key(hour, "a"), '"e1"', hour + timedelta(minutes=5))
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    first = sensor.tick(now)
    # Same content written again (same ETag), later LastModified: nothing new.
    lake.put(key(hour, "a"), '"e1"', now + timedelta(seconds=5))
    assert requested(sensor.tick(now + timedelta(seconds=30))) == []
    # New content (new ETag), even with a LastModified no newer than before.
    lake.put(key(hour, "a"), '"e2"', hour + timedelta(minutes=5))
    second = sensor.tick(now + timedelta(seconds=60))
    assert requested(second) == [pk(hour)]
    assert second.ready[0].run_key not in {first.ready[0].run_key}


def test_run_keys_are_deterministic():
    lake = Lake()
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    lake.put(key(hour, "a"), '"e1"', hour + timedelta(minutes=5))
    lake.put(key(hour, "b"), '"e2"', hour + timedelta(minutes=6))
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    # Two sensors with no shared state (e.g. a lost cursor) name the same run.
    assert Sensor(lake).tick(now).ready[0].run_key == Sensor(lake).tick(now + H).ready[0].run_key


def test_nothing_is_asked_for_twice():
    lake = Lake()
    sensor = Sensor(lake)
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    for h in range(0, 14):
        hour = datetime(2026, 11, 24, h, tzinfo=UTC)
        lake.put(key(hour, "a"), f'"e{h}"', hour + timedelta(minutes=30))
    assert len(requested(sensor.tick(now))) == 14
    asked = []
    for i in range(1, 200):  # 100 minutes of ticks, every old day walked several times
        asked += requested(sensor.tick(now + timedelta(seconds=30 * i)))
    assert asked == []


def test_a_tick_lists_the_lookback_days_one_backstop_day_and_waiting_hours_only():
    lake = Lake()
    settings = ArrivalSettings(settle_seconds=300, lookback_days=1, backstop_days=3)
    sensor = Sensor(lake, settings)
    yesterday_23 = datetime(2026, 11, 23, 23, tzinfo=UTC)
    lake.put(key(yesterday_23, "a"), '"e1"', yesterday_23 + timedelta(minutes=59))
    t0 = datetime(2026, 11, 24, 0, 2, tzinfo=UTC)

    r1 = sensor.tick(t0)  # today, then the newest backstop day (yesterday), which holds the waiting hour
    assert sensor.listed[-1] == [day_prefix(date(2026, 11, 24)), day_prefix(date(2026, 11, 23))]
    assert [w.partition_key for w in r1.waiting] == [pk(yesterday_23)]
    r2 = sensor.tick(t0 + timedelta(minutes=1))  # backstop moves on; the waiting hour by its own prefix
    assert sensor.listed[-1] == [day_prefix(date(2026, 11, 24)), day_prefix(date(2026, 11, 22)), "raw/payments/dt=2026/11/23/23/"]
    assert requested(r2) == []
    r3 = sensor.tick(datetime(2026, 11, 24, 0, 5, tzinfo=UTC))  # 23:00 closed at 00:00, settled at 00:05
    assert sensor.listed[-1] == [day_prefix(date(2026, 11, 24)), day_prefix(date(2026, 11, 21)), "raw/payments/dt=2026/11/23/23/"]
    assert requested(r3) == [pk(yesterday_23)]
    sensor.tick(datetime(2026, 11, 24, 0, 6, tzinfo=UTC))  # rotation wraps to the newest backstop day
    assert sensor.listed[-1] == [day_prefix(date(2026, 11, 24)), day_prefix(date(2026, 11, 23))]


def test_listing_cost_does_not_grow_with_history():
    lake = Lake()
    sensor = Sensor(lake)  # lookback 2, backstop 7
    t = datetime(2026, 10, 1, tzinfo=UTC)
    per_tick = []
    for step in range(40 * 12):  # 40 days, a tick every 2 hours, an object in every hour
        now = t + step * timedelta(hours=2)
        for back in range(2):
            hour = now.replace(minute=0) - back * H
            lake.put(key(hour, f"s{step}"), f'"e{step}"', hour)
        sensor.tick(now)
        prefixes = sensor.listed[-1]
        today = now.date()
        allowed_days = {day_prefix(today - timedelta(days=i)) for i in range(2 + 7)}
        assert "raw/payments/" not in prefixes
        assert all(p in allowed_days or any(p.startswith(d) for d in allowed_days) for p in prefixes), prefixes
        assert prefixes[:2] == [day_prefix(today), day_prefix(today - timedelta(days=1))]
        per_tick.append(len(prefixes))
    # 2 lookback days + 1 backstop day (+ an hour prefix only when a waiting hour lies outside them)
    assert max(per_tick) <= 4
    assert per_tick[12 * 5] == per_tick[-1] == 3


def test_the_backstop_finds_a_replay_of_a_three_day_old_hour_within_its_rotation():
    lake = Lake()
    sensor = Sensor(lake)
    now = datetime(2026, 11, 24, 14, 20, 0, tzinfo=UTC)
    for i in range(10):  # a steady state: every tracked day walked
        sensor.tick(now + timedelta(seconds=30 * i))
    old = datetime(2026, 11, 21, 9, tzinfo=UTC)  # 3 days and 5 hours old, outside the 2 lookback days
    start = now + timedelta(minutes=10)
    lake.put(key(old, "replay-abc"), '"r1"', start)
    found_after = None
    for i in range(1, 20):
        if requested(sensor.tick(start + timedelta(seconds=30 * i))) == [pk(old)]:
            found_after = i
            break
    assert found_after is not None and found_after <= 7 + 1


def test_days_older_than_the_backstop_are_never_listed():
    lake = Lake()
    settings = ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=3)
    sensor = Sensor(lake, settings)
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    too_old = datetime(2026, 11, 19, 9, tzinfo=UTC)  # today - 5 = lookback 2 + backstop 3
    lake.put(key(too_old, "a"), '"e1"', now)
    for i in range(30):
        assert requested(sensor.tick(now + timedelta(seconds=30 * i))) == []
    assert not any(p.startswith(day_prefix(too_old)) for tick in sensor.listed for p in tick)


def test_the_rotation_bound_holds_across_midnight():
    lake = Lake()
    settings = ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=4)
    sensor = Sensor(lake, settings)
    t = datetime(2026, 11, 24, 23, 50, tzinfo=UTC)
    last_listed: dict[str, int] = {}
    for i in range(60):  # ticks every 30 s across midnight, when every day moves one place back
        now = t + timedelta(seconds=30 * i)
        sensor.tick(now)
        for prefix in sensor.listed[-1]:
            last_listed[prefix] = i
        if i >= 4 + 1:
            # each of the 2 + 4 tracked days was listed in full within the last backstop_days + 1 ticks
            for d in range(0, 6):
                prefix = day_prefix(now.date() - timedelta(days=d))
                assert i - last_listed.get(prefix, -99) <= 4 + 1, (now, prefix)


def test_the_cursor_stays_bounded():
    lake = Lake()
    sensor = Sensor(lake)  # 2 + 7 tracked days
    t = datetime(2026, 9, 1, tzinfo=UTC)
    sizes = []
    for step in range(40 * 8):  # 40 days, a tick every 3 hours, two objects in every hour
        now = t + step * 3 * H + timedelta(minutes=10)
        for back in range(3):
            hour = now.replace(minute=0) - back * H
            for n in range(2):
                lake.put(key(hour, f"s{step}-{n}"), f'"e{step}-{n}"', hour)
        sensor.tick(now)
        sizes.append(len(sensor.cursor))
    days = json.loads(sensor.cursor)["days"]
    assert len(days) <= 9
    # Per tracked day: its key ("YYYY-MM-DD":{}, 15 chars) and per hour "HH":"<12 hex>", (20 chars);
    # plus the envelope and a few waiting hours.
    bound = 9 * (15 + 24 * 20) + 200
    assert max(sizes) <= bound
    assert max(sizes[-8 * 7 :]) <= max(sizes[8 * 15 : 8 * 22]) + 30  # flat once the tracked days are full


def test_a_first_tick_marks_its_hours_unknown_and_later_changes_known():
    lake = Lake()
    sensor = Sensor(lake)
    hour = datetime(2026, 11, 24, 3, tzinfo=UTC)
    lake.put(key(hour, "a"), '"e1"', hour + timedelta(minutes=1))
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert [r.known for r in sensor.tick(now).ready] == [False]
    lake.put(key(hour, "b"), '"e2"', now)
    assert [r.known for r in sensor.tick(now + timedelta(seconds=30)).ready] == [True]


def test_an_hour_outside_the_partitions_is_reported_once_and_not_asked_for():
    lake = Lake()
    sensor = Sensor(lake, ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=0))
    before_start = datetime(2025, 12, 31, 22, tzinfo=UTC)
    lake.put(key(before_start, "a"), '"e1"', before_start)
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    first = sensor.tick(now)
    assert requested(first) == [] and first.waiting == []
    assert [w for w in first.warnings if pk(before_start) in w and "not a partition" in w]
    second = sensor.tick(now + timedelta(seconds=30))
    assert second.warnings == [] and requested(second) == []


def test_deleted_objects_are_reported_not_asked_for():
    lake = Lake()
    sensor = Sensor(lake)
    hour = datetime(2026, 11, 24, 3, tzinfo=UTC)
    lake.put(key(hour, "a"), '"e1"', hour)
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    sensor.tick(now)
    lake.delete(key(hour, "a"))
    result = sensor.tick(now + timedelta(seconds=30))
    assert requested(result) == []
    assert any("deleted" in w and pk(hour) in w for w in result.warnings)
    assert sensor.tick(now + timedelta(seconds=60)).warnings == []


def test_objects_outside_the_layout_are_reported_once():
    lake = Lake()
    sensor = Sensor(lake)
    now = datetime(2026, 11, 24, 14, tzinfo=UTC)
    lake.put("raw/payments/dt=2026/11/24/03/nested/x.ndjson", '"e1"', now)
    lake.put("raw/payments/dt=2026/11/24/loose.ndjson", '"e2"', now)
    lake.put("raw/payments/dt=2026/11/24/03/_SUCCESS", '"e3"', now)  # not .ndjson: not a landing object
    first = sensor.tick(now)
    assert requested(first) == []
    assert len(first.warnings) == 1 and "nested/x.ndjson" in first.warnings[0] and "loose.ndjson" in first.warnings[0]
    assert sensor.tick(now + timedelta(seconds=30)).warnings == []


def test_an_older_cursor_starts_over_with_a_note():
    state, note = load_cursor(json.dumps({"since": "2026-11-24T13:00:00+00:00", "keys_at_since": []}))
    assert state == ArrivalState() and "version" in note
    assert load_cursor(None) == (ArrivalState(), None)


def test_settings_come_from_the_environment_with_defaults():
    assert ArrivalSettings.from_env({}) == ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=7)
    got = ArrivalSettings.from_env({"WL_LANDING_SETTLE_SECONDS": "60", "WL_LANDING_LOOKBACK_DAYS": "3", "WL_LANDING_BACKSTOP_DAYS": ""})
    assert got == ArrivalSettings(settle_seconds=60, lookback_days=3, backstop_days=7)
    with pytest.raises(ValueError, match="WL_LANDING_LOOKBACK_DAYS"):
        ArrivalSettings.from_env({"WL_LANDING_LOOKBACK_DAYS": "0"})
    with pytest.raises(ValueError, match="WL_LANDING_SETTLE_SECONDS"):
        ArrivalSettings.from_env({"WL_LANDING_SETTLE_SECONDS": "five minutes"})


def test_the_sensor_asks_the_partitions_definition():
    from wallet_lake.defs.landing.sensors import partition_exists

    at = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
    for hour in [datetime(2026, 11, 24, h, tzinfo=UTC) for h in (12, 13, 14, 15)] + [datetime(2025, 12, 31, 23, tzinfo=UTC), START]:
        assert partition_exists(hour, at) == exists(hour, at), hour


def test_a_local_lake_lists_one_prefix_with_a_token_that_changes_on_rewrite(tmp_path):
    from wallet_lake.lake.store import LocalLakeStore

    store = LocalLakeStore(tmp_path / "lake")
    a, b = "raw/payments/dt=2026/11/24/13/a.ndjson", "raw/payments/dt=2026/11/25/00/b.ndjson"
    store.put_bytes(a, b"1\n")
    store.put_bytes(b, b"2\n")
    store.put_bytes("raw/payments/dt=2026/11/240.ndjson", b"3\n")  # a sibling whose name extends the prefix's last segment
    assert [o.key for o in store.list("raw/payments/dt=2026/11/24/")] == [a]
    assert [o.key for o in store.list("raw/payments/dt=2026/11/24")] == [a, "raw/payments/dt=2026/11/240.ndjson"]
    assert [o.key for o in store.list("raw/payments/dt=2026/12/")] == []
    assert [o.key for o in store.list("")] == sorted([a, b, "raw/payments/dt=2026/11/240.ndjson"])
    before = store.list("raw/payments/dt=2026/11/24/")[0].etag
    store.put_bytes(a, b"1\n")  # same bytes, written again
    after = store.list("raw/payments/dt=2026/11/24/")[0].etag
    assert before and after and before != after


def test_the_backstop_skips_only_an_hour_curated_after_its_newest_object_with_the_same_counts():
    from wallet_lake.lake.arrivals import backstop_skip_reason

    t = datetime(2026, 11, 24, 13, 5, tzinfo=timezone.utc)
    listed = [ObjectInfo("raw/payments/dt=2026/11/24/12/a.ndjson", 10, t), ObjectInfo("raw/payments/dt=2026/11/24/12/b.ndjson", 5, t + timedelta(seconds=30))]
    after = t + timedelta(minutes=1)
    assert "already curated" in backstop_skip_reason(listed, after, (2, 15))
    assert backstop_skip_reason(listed, None, (2, 15)) is None  # never curated
    assert backstop_skip_reason(listed, t + timedelta(seconds=10), (2, 15)) is None  # started before the newest object
    assert backstop_skip_reason(listed, after, (1, 10)) is None  # counted fewer objects
    assert backstop_skip_reason(listed, after, (2, 14)) is None  # other bytes (a rewrite)
    assert backstop_skip_reason(listed, after, None) is None  # counts unknown (a backfill's raw step)
    assert backstop_skip_reason([], after, (0, 0)) is None  # an empty hour still runs, as before
