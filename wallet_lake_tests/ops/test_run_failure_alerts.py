"""Run-failure alerts: a real failing run on the project's Dagster instance, the real sensor
function, and a real HTTP receiver on loopback standing in for the Slack webhook."""

from __future__ import annotations

import logging
import os
import random
import time
import uuid

import dagster as dg
import pytest

from wallet_lake.defs.ops.run_failure_alerts import SENSOR_NAME, run_failure_alerts
from wallet_lake.ops.alerts import AlertDeliveryError
from wallet_lake.security.secrets import forget, resolve_secret
from wallet_lake_tests.ops.webhook import webhook_receiver

pytestmark = pytest.mark.integration

UI = "http://dagster.example.test:3000"
hourly = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")
CHECK = "probe_rows_add_up"


def _random_hour() -> str:
    rng = random.Random(time.time_ns())
    return f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}-{rng.randint(0, 23):02d}:00"  # partitions exist up to now only


# Test assets live under their own key prefix so they never mix with the pipeline's assets.
@dg.asset(key=["zz_test", "alerts", "probe_curated"], partitions_def=hourly,
          check_specs=[dg.AssetCheckSpec(CHECK, asset=["zz_test", "alerts", "probe_curated"], blocking=True)])
def probe_curated(context):
    return dg.MaterializeResult(metadata={"rows": 3}, check_results=[dg.AssetCheckResult(check_name=CHECK, passed=False, metadata={"unaccounted": 1})])


@dg.asset(key=["zz_test", "alerts", "probe_published"], partitions_def=hourly, deps=[probe_curated])
def probe_published(context):
    return None


@dg.asset(key=["zz_test", "alerts", "probe_raw"], partitions_def=hourly)
def probe_raw(context):
    raise RuntimeError(f"landing object raw/payments/{context.partition_key} is unreadable: {os.environ.get('PROBE_ERROR_DETAIL', '')}")


@pytest.fixture
def instance():
    """The project's instance (DAGSTER_HOME, Postgres storage), as the daemon's sensor sees it."""
    with dg.DagsterInstance.get() as inst:
        yield inst


@pytest.fixture(autouse=True)
def ui_url(monkeypatch):
    monkeypatch.setenv("WL_DAGSTER_UI_URL", UI + "/")


def _run_sensor_on(instance, assets, partition: str):
    result = dg.materialize(assets, partition_key=partition, instance=instance, raise_on_error=False,
                            tags={"wallet_lake/test": "run_failure_alerts"})
    assert not result.success, "the probe run was meant to fail"
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR_NAME, dagster_event=result.get_run_failure_event(), dagster_instance=instance, dagster_run=result.dagster_run,
    ).for_run_failure()
    run_failure_alerts(context)
    return result


def _fields(message: dict) -> dict[str, str]:
    """Field name -> value from the Slack blocks (section text is '*Name*\\nvalue')."""
    out = {}
    for block in message["blocks"][1:]:
        name, _, value = block["text"]["text"].partition("\n")
        out[name.strip("*")] = value
    return out


def test_failed_blocking_check_alert_names_check_asset_partition_error_and_run_link(instance, monkeypatch):
    partition = _random_hour()
    with webhook_receiver() as received:
        monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", received.url)
        result = _run_sensor_on(instance, [probe_curated, probe_published], partition)

    assert len(received) == 1, received
    message = received[0]["json"]
    assert received[0]["content_type"].startswith("application/json")
    assert message["blocks"][0]["type"] == "header"
    assert "blocking check failed" in message["blocks"][0]["text"]["text"]
    fields = _fields(message)
    assert fields["Run"] == f"{UI}/runs/{result.run_id}"
    assert fields["Partition"] == partition
    assert fields["Assets"] == "zz_test/alerts/probe_curated, zz_test/alerts/probe_published"
    assert fields["Failed checks"] == f"zz_test/alerts/probe_curated: {CHECK}"
    # The check's asset was recorded; the downstream asset was skipped.
    assert fields["Not materialized"] == "zz_test/alerts/probe_published"
    assert CHECK in fields["Error"] and "blocking asset check failed" in fields["Error"]
    # Slack's plain-text fallback carries the same facts.
    for value in (partition, result.run_id, CHECK):
        assert value in message["text"]


def test_failed_step_alert_carries_the_root_error_not_dagsters_wrapper(instance, monkeypatch):
    partition = _random_hour()
    with webhook_receiver() as received:
        monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", received.url)
        result = _run_sensor_on(instance, [probe_raw], partition)

    fields = _fields(received[0]["json"])
    assert fields["Run"] == f"{UI}/runs/{result.run_id}"
    assert fields["Partition"] == partition
    assert fields["Failed steps"] == "zz_test__alerts__probe_raw"
    assert f"RuntimeError: landing object raw/payments/{partition} is unreadable" in fields["Error"]
    assert "DagsterExecutionStepExecutionError" not in fields["Error"]
    assert "Failed checks" not in fields


def test_alert_masks_a_secret_quoted_by_an_error(instance, monkeypatch):
    # A secret resolved the way the pipeline resolves its own; not the stack's real password,
    # which this failing run would otherwise write into the shared instance's event log.
    name = "WL_TEST_ALERT_PROBE_SECRET"
    monkeypatch.setenv(name, f"probe-secret-{uuid.uuid4().hex}")
    password = resolve_secret(name)
    monkeypatch.setenv("PROBE_ERROR_DETAIL", f"connect failed for password={password}")
    try:
        with webhook_receiver() as received:
            monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", received.url)
            _run_sensor_on(instance, [probe_raw], _random_hour())
    finally:
        forget(name)

    body = str(received[0]["json"])
    assert password not in body
    assert "password=***" in body


def test_alert_is_written_to_the_log_with_or_without_a_webhook(instance, monkeypatch, caplog):
    monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", "")
    partition = _random_hour()
    with caplog.at_level(logging.ERROR, logger="wallet_lake.alerts"):
        result = _run_sensor_on(instance, [probe_raw], partition)
    records = [r for r in caplog.records if r.name == "wallet_lake.alerts"]
    assert len(records) == 1
    assert records[0].alert["Run"] == f"{UI}/runs/{result.run_id}"
    assert records[0].alert["Partition"] == partition


def test_webhook_that_refuses_makes_the_sensor_tick_fail(instance, monkeypatch):
    with webhook_receiver(status=404) as received:
        monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", received.url)
        with pytest.raises(AlertDeliveryError, match="WL_ALERT_WEBHOOK_URL: HTTP 404"):
            _run_sensor_on(instance, [probe_raw], _random_hour())
    assert len(received) == 1  # a 4xx is not retried: the message itself is refused


def test_run_failure_sensor_watches_every_run_and_runs_by_default():
    from wallet_lake.definitions import defs

    d = defs()
    sensor = d.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    # Runs started by `dagster asset materialize` (scripts/run, backfills by hand) carry no code
    # location: only a sensor that watches all locations sees them. No public accessor exists.
    assert sensor._monitor_all_code_locations is True


def test_alert_names_the_partition_range_of_a_single_run_backfill():
    from wallet_lake.defs.ops.run_failure_alerts import partition_of

    backfill = dg.DagsterRun(job_name="__ASSET_JOB", tags={
        "dagster/asset_partition_range_start": "2026-11-24-00:00", "dagster/asset_partition_range_end": "2026-11-24-23:00"})
    assert partition_of(backfill) == "2026-11-24-00:00...2026-11-24-23:00"
    assert partition_of(dg.DagsterRun(job_name="x", tags={})) == "none (unpartitioned run)"
