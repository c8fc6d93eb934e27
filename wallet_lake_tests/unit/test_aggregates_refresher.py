"""The report aggregates refresher's pure pieces: which marked dts it refreshes in which order and
batches, when it stops starting batches, and its settings; and the sensor's definition."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from wallet_lake.serving.aggregates import PendingDt, RefresherSettings, next_batch_fits, plan_refresh_batches, settled_dts

T0 = dt.datetime(2026, 11, 24, 12, tzinfo=dt.timezone.utc)


def pending(day: str, age_s: float, marks: int = 1) -> PendingDt:
    return PendingDt(dt.date.fromisoformat(day), marks, T0 - dt.timedelta(seconds=age_s))


def test_one_month_per_batch_the_batch_with_the_oldest_mark_first() -> None:
    marks = [
        pending("2026-11-20", 5),
        pending("2026-10-03", 100),  # the oldest mark: its month goes first
        pending("2026-11-02", 50),
        pending("2026-10-30", 1),
        pending("2026-12-01", 70),
    ]
    assert plan_refresh_batches(marks, max_dts=7) == [
        [dt.date(2026, 10, 3), dt.date(2026, 10, 30)],
        [dt.date(2026, 12, 1)],
        [dt.date(2026, 11, 2), dt.date(2026, 11, 20)],
    ]


def test_a_month_with_more_dts_than_a_batch_is_split_in_date_order() -> None:
    ages = {1: 3, 2: 1, 3: 2, 4: 1, 5: 9, 6: 1, 7: 1, 8: 1, 9: 5, 10: 1}  # seconds
    marks = [pending(f"2026-11-{d:02d}", age_s=a) for d, a in ages.items()]
    # Days 1-4 (oldest 3 s), 5-8 (9 s), 9-10 (5 s): the chunk holding the oldest mark first.
    assert plan_refresh_batches(marks, max_dts=4) == [
        [dt.date(2026, 11, d) for d in (5, 6, 7, 8)],
        [dt.date(2026, 11, d) for d in (9, 10)],
        [dt.date(2026, 11, d) for d in (1, 2, 3, 4)],
    ]


def test_nothing_marked_plans_nothing_and_a_batch_needs_room_for_a_dt() -> None:
    assert plan_refresh_batches([], max_dts=7) == []
    with pytest.raises(ValueError, match="max_dts"):
        plan_refresh_batches([pending("2026-11-01", 1)], max_dts=0)


@pytest.mark.parametrize(
    ("elapsed", "longest", "budget", "fits"),
    [(0.0, 0.0, 25.0, True), (10.0, 15.0, 25.0, True), (10.1, 15.0, 25.0, False), (30.0, 0.0, 25.0, False)],
)
def test_another_batch_starts_only_if_one_as_long_as_the_longest_still_ends_in_the_budget(
    elapsed: float, longest: float, budget: float, fits: bool
) -> None:
    assert next_batch_fits(elapsed, longest, budget) is fits


def test_settings_defaults_and_overrides() -> None:
    assert RefresherSettings.from_env({}) == RefresherSettings(interval_s=30, budget_s=25.0, max_dts_per_batch=3)
    env = {"WL_AGGREGATES_REFRESH_INTERVAL_S": "10", "WL_AGGREGATES_REFRESH_BUDGET_S": "4.5", "WL_AGGREGATES_REFRESH_BATCH_DTS": " 3 "}
    assert RefresherSettings.from_env(env) == RefresherSettings(interval_s=10, budget_s=4.5, max_dts_per_batch=3)
    # Empty means unset (a variable may be present but empty).
    assert RefresherSettings.from_env({"WL_AGGREGATES_REFRESH_INTERVAL_S": ""}).interval_s == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WL_AGGREGATES_REFRESH_INTERVAL_S": "half a minute"}, "WL_AGGREGATES_REFRESH_INTERVAL_S: Input should be a valid integer"),
        ({"WL_AGGREGATES_REFRESH_BATCH_DTS": "0"}, "WL_AGGREGATES_REFRESH_BATCH_DTS: Input should be greater than or equal to 1"),
        ({"WL_AGGREGATES_REFRESH_BUDGET_S": "60"}, "below the sensor timeout DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS=60"),
        ({"WL_AGGREGATES_REFRESH_BUDGET_S": "0"}, "WL_AGGREGATES_REFRESH_BUDGET_S: Input should be greater than 0"),
        ({"WL_AGGREGATES_REFRESH_BUDGET_S": "50", "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": "45"}, "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS=45"),
    ],
)
def test_bad_settings_name_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RefresherSettings.from_env(env)


def test_a_longer_sensor_timeout_allows_a_longer_budget() -> None:
    env = {"WL_AGGREGATES_REFRESH_BUDGET_S": "100", "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": "180"}
    assert RefresherSettings.from_env(env).budget_s == 100


def test_the_refresher_sensor_is_defined_running_on_its_interval() -> None:
    from wallet_lake.definitions import defs

    d = defs()
    d = d if isinstance(d, dg.Definitions) else d.load()  # type: ignore[attr-defined]
    sensor = d.resolve_sensor_def("report_aggregates_refresher")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == RefresherSettings.from_env().interval_s


def test_a_dt_still_being_written_waits_unless_its_oldest_mark_is_overdue() -> None:
    quiet = PendingDt(dt.date(2026, 11, 1), 3, T0 - dt.timedelta(seconds=90), T0 - dt.timedelta(seconds=20))
    loading = PendingDt(dt.date(2026, 11, 2), 40, T0 - dt.timedelta(seconds=60), T0 - dt.timedelta(seconds=1))
    overdue = PendingDt(dt.date(2026, 11, 3), 99, T0 - dt.timedelta(seconds=120), T0 - dt.timedelta(seconds=1))
    single = pending("2026-11-04", age_s=5)  # one mark: newest is the oldest, 5 s ago
    due, deferred = settled_dts([quiet, loading, overdue, single], T0, quiet_s=15, max_defer_s=120)
    assert [p.day.day for p in due] == [1, 3]
    assert [p.day.day for p in deferred] == [2, 4]
    # quiet_s = 0: nothing waits (drain_marks' default, the Postgres asset never defers).
    assert settled_dts([quiet, loading, overdue, single], T0, quiet_s=0, max_defer_s=120) == ([quiet, loading, overdue, single], [])


def test_the_deferral_settings_come_from_the_environment() -> None:
    s = RefresherSettings.from_env({"WL_AGGREGATES_REFRESH_QUIET_S": "0", "WL_AGGREGATES_REFRESH_MAX_DEFER_S": "300"})
    assert (s.quiet_s, s.max_defer_s) == (0, 300)
    with pytest.raises(ValueError, match="WL_AGGREGATES_REFRESH_QUIET_S"):
        RefresherSettings.from_env({"WL_AGGREGATES_REFRESH_QUIET_S": "-1"})


def test_changed_hours_expands_whole_dts_and_keeps_given_hours() -> None:
    from wallet_lake.serving.aggregates import changed_hours

    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    days, pairs = changed_hours([d2], [(d1, 5), (d1, 5), (d1, 0), (d2, 3)])
    assert days == [d1, d2]
    assert pairs == [(d1, 0), (d1, 5), *((d2, h) for h in range(24))]
    days, pairs = changed_hours([], [(d1, None), (d2, 23)])  # a whole-dt mark (hour NULL)
    assert days == [d1, d2] and pairs == [*((d1, h) for h in range(24)), (d2, 23)]
    assert changed_hours([], []) == ([], [])
    with pytest.raises(ValueError, match="hour 24"):
        changed_hours([], [(d1, 24)])
