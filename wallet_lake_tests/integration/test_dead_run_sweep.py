"""The dead-run sweep (defs/curated/dead_run_sweep.py) on the real stack: a run worker SIGKILLed
mid-upload (a child process, the project's Dagster instance, moto S3, Postgres, Spark) leaves its
announced files under the hour; once the run is marked failed, as run monitoring does, the
sensor deletes them and nothing else: not the hour's current files, not the announced files of
a run now working on the hour."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from wallet_lake.contracts.landing import hour_token
from wallet_lake.defs.curated.dead_run_sweep import SENSOR_NAME, dead_run_sweep
from wallet_lake.lake import manifests
from wallet_lake.lake.manifests import read_manifest
from wallet_lake_tests.integration.killed_mid_upload import TEST_TAG
from wallet_lake_tests.integration.curated_support import files_of, hour_state, hours, pk, published_hour  # noqa: F401 (hours: a fixture)

pytestmark = pytest.mark.integration


def _sweep_as_the_daemon_would(instance: dg.DagsterInstance, run: dg.DagsterRun, lake) -> None:
    failure = next(r.dagster_event for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR_NAME, dagster_event=failure, dagster_instance=instance, dagster_run=run, resources={"lake": lake},
    ).for_run_failure()
    dead_run_sweep(context)


def test_a_run_killed_mid_upload_has_its_announced_files_removed_once_it_is_marked_failed(stack_resources, hours):
    h = hours[2]
    store, before, published, dts = published_hour(stack_resources, h)
    current = set(published["curated_keys"] + published["quarantine_keys"])

    tag = uuid.uuid4().hex
    child = subprocess.run(
        [sys.executable, "-m", "wallet_lake_tests.integration.killed_mid_upload", pk(h), tag],
        env=os.environ.copy(), capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == -9, child.stderr[-3000:]

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=dg.RunsFilter(tags={TEST_TAG: tag}))
        assert run.status == dg.DagsterRunStatus.STARTED  # nobody noticed: the worker died without a word
        m = read_manifest(store, h)
        (dead,) = [p for p in m["pending"] if manifests.curated_by_dagster_run(p["run_id"], run.run_id)]
        left = files_of(store, h, dts) - current
        assert left and left <= set(dead["keys"])  # uploaded, announced, never published
        assert m["curated_keys"] == published["curated_keys"]

        # Meanwhile another run took the hour and announced its own files: not the sensor's to touch.
        live_run = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-0a1b2c3d"
        folder = published["curated_keys"][0].rsplit("/", 1)[0]
        live_key = f"{folder}/lh-{hour_token(h)}-{live_run}-000.parquet"
        store.put_bytes(live_key, store.get_bytes(published["curated_keys"][0]))
        m, etag = manifests.read_versioned(store, h)
        live = {"run_id": live_run, "started_at": datetime.now(timezone.utc).isoformat(), "keys": [live_key]}
        manifests.write(store, h, {**m, "pending": m["pending"] + [live]}, etag)

        instance.report_run_failed(run, "run worker SIGKILLed (test)")  # what run monitoring does
        _sweep_as_the_daemon_would(instance, instance.get_run_by_id(run.run_id), stack_resources["lake"])

    after = read_manifest(store, h)
    assert after["pending"] == [live]
    assert after["curated_keys"] == published["curated_keys"] and after["superseded"] == []
    assert files_of(store, h, dts) == current | {live_key}
    store.delete([live_key])
    assert hour_state(store, h) == before
