"""Freshness: every asset declares a per-hour deadline (a freshness check run by the freshness
sensor) and a FreshnessPolicy; the check fails for an overdue hour and passes once it lands."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS_DAILY, PIPELINE, user_string
from wallet_lake.definitions import defs
from wallet_lake.defs.curated.compaction import COMPACTION_FAIL_WINDOW
from wallet_lake.defs.ops.freshness import FRESHNESS, FRESHNESS_SENSOR

PIPELINE_ASSETS = {user_string(p) for p in PIPELINE}


@pytest.fixture(scope="module")
def code_location() -> dg.Definitions:
    return defs()


def _expected_overdue_partition(now: datetime, deadline_minute: int) -> str:
    """Independently: the newest deadline tick at or before now, and the hour that closed before it."""
    tick = now.replace(minute=deadline_minute, second=0, microsecond=0)
    if tick > now:
        tick -= timedelta(hours=1)
    hour = tick.replace(minute=0) - timedelta(hours=1)
    return hour.strftime("%Y-%m-%d-%H:00")


def _run_freshness_check(code_location, instance, asset_key: dg.AssetKey):
    job = code_location.resolve_implicit_global_asset_job_def()
    check_key = dg.AssetCheckKey(asset_key, "freshness_check")
    result = job.get_subset(asset_selection=set(), asset_check_selection={check_key}).execute_in_process(instance=instance)
    evaluations = result.get_asset_check_evaluations()
    assert [e.asset_check_key for e in evaluations] == [check_key]
    return evaluations[0]


def test_every_asset_has_an_hourly_freshness_check_and_a_freshness_policy(code_location):
    graph = code_location.resolve_asset_graph()
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys if k.name == "freshness_check"}
    assert checked == PIPELINE_ASSETS
    assert {k.to_user_string() for k in FRESHNESS} == PIPELINE_ASSETS
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        assert policy is not None, key
        # The daily compaction is unpartitioned, judged by its policy alone (a day and two hours).
        expected = COMPACTION_FAIL_WINDOW if key == dg.AssetKey(CURATED_PAYMENTS_DAILY) else FRESHNESS[key].fail_window
        assert policy.fail_window.to_timedelta() == expected
    # Deadlines follow the flow: nothing downstream is due before what feeds it.
    minutes = [FRESHNESS[dg.AssetKey(p)].deadline_minute for p in PIPELINE]  # PIPELINE is in flow order
    assert minutes == sorted(minutes) and all(20 < m < 60 for m in minutes)  # after the :20 schedule


def test_freshness_sensor_runs_by_default(code_location):
    sensor = code_location.resolve_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    targeted = {k.asset_key.to_user_string() for k in sensor.asset_selection.resolve_checks(code_location.resolve_asset_graph())}
    assert targeted == PIPELINE_ASSETS


@pytest.mark.parametrize("asset", sorted(PIPELINE_ASSETS))
def test_freshness_check_fails_for_an_overdue_hour_and_passes_once_it_lands(code_location, asset):
    key = dg.AssetKey.from_user_string(asset)
    minute = FRESHNESS[key].deadline_minute
    # A fresh instance: nothing has landed, so the hour due at the last deadline is overdue.
    with dg.instance_for_test() as instance:
        before = _expected_overdue_partition(datetime.now(timezone.utc), minute)
        failed = _run_freshness_check(code_location, instance, key)
        after = _expected_overdue_partition(datetime.now(timezone.utc), minute)
        assert failed.passed is False
        assert failed.severity == dg.AssetCheckSeverity.ERROR
        expected = re.search(r"expect partition (\S+) to have arrived", failed.description).group(1)
        assert expected in {before, after}  # the deadline may tick between the two readings

        # The overdue hour lands (recorded as the pipeline would): the check passes.
        for pk in {before, after, expected}:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=pk))
        passed = _run_freshness_check(code_location, instance, key)
        assert passed.passed is True, passed.description
