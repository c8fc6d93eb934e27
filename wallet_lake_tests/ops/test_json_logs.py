"""Structured logs: every run on the project's instance writes JSON lines carrying the run id,
job, step and partition (dagster.yaml python_logs handler -> wallet_lake/logging_config.py);
pipeline modules' stdlib loggers (wallet_lake.*) are captured into the same stream."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import dagster as dg
import pytest

from wallet_lake.security.secrets import forget, resolve_secret

pytestmark = pytest.mark.integration

hourly = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")
module_log = logging.getLogger("wallet_lake.tests.json_logs_probe")
# A secret resolved the way the pipeline resolves its own (not the real password: a test that
# fails should not print the stack's password, and runs on the shared instance keep their logs).
PROBE_SECRET = "WL_TEST_PROBE_SECRET"


@pytest.fixture(autouse=True)
def probe_secret(monkeypatch):
    value = f"probe-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv(PROBE_SECRET, value)
    yield value
    forget(PROBE_SECRET)


@dg.asset(key=["zz_test", "logs", "probe"], partitions_def=hourly)
def log_probe(context):
    context.log.info(f"curating {context.partition_key}")
    module_log.info("read 42 landing lines", extra={"lines": 42})
    module_log.warning(f"connecting with password {resolve_secret(PROBE_SECRET)}")
    return dg.MaterializeResult(metadata={"lines": 42})


@pytest.fixture(autouse=True)
def log_file(tmp_path, monkeypatch):
    path = tmp_path / "pipeline.jsonl"
    monkeypatch.setenv("WL_PIPELINE_LOG_FILE", str(path))
    return path


def _run(tmp_path, instance, partition="2026-07-14-09:00"):
    # No logger configuration in the run: the instance's python_logs handler writes the lines.
    result = dg.materialize([log_probe], partition_key=partition, instance=instance)
    assert result.success
    return result, [json.loads(line) for line in (tmp_path / "pipeline.jsonl").read_text().splitlines()]


def test_pipeline_log_lines_are_json_with_run_id_job_step_and_partition(tmp_path):
    with dg.DagsterInstance.get() as instance:
        result, lines = _run(tmp_path, instance)
    mine = [l for l in lines if l.get("run_id") == result.run_id]
    assert mine and len(mine) == len(lines), "every line belongs to the run and names it"
    by_message = {l["message"]: l for l in mine}
    line = by_message["curating 2026-07-14-09:00"]
    assert (line["level"], line["job"], line["step_key"], line["partition"]) == ("INFO", "__ephemeral_asset_job__", "zz_test__logs__probe", "2026-07-14-09:00")
    assert "timestamp" in line
    # Dagster's own events are in the same stream, typed.
    events = {l.get("event_type") for l in mine}
    assert {"RUN_START", "STEP_START", "ASSET_MATERIALIZATION", "RUN_SUCCESS"} <= events
    assert any(l.get("asset") == "zz_test/logs/probe" for l in mine if l.get("event_type") == "ASSET_MATERIALIZATION")


def test_stdlib_loggers_of_pipeline_modules_reach_the_json_log_with_run_id(tmp_path):
    # The project instance's dagster.yaml hands wallet_lake.* loggers to runs (python_logs).
    with dg.DagsterInstance.get() as instance:
        assert "wallet_lake" in instance.managed_python_loggers
        result, lines = _run(tmp_path, instance)
    line = next(l for l in lines if l["message"] == "read 42 landing lines")
    assert line["run_id"] == result.run_id and line["partition"] == "2026-07-14-09:00"


def test_pipeline_log_never_contains_a_resolved_secret(tmp_path, probe_secret):
    with dg.DagsterInstance.get() as instance:
        _, lines = _run(tmp_path, instance)
    text = (tmp_path / "pipeline.jsonl").read_text()
    assert probe_secret not in text
    assert any(l["message"] == "connecting with password ***" for l in lines)


def test_project_instance_installs_the_json_handler_for_every_run():
    import yaml

    from wallet_lake.logging_config import pipeline_log_handler

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())["python_logs"]
    handler = config["dagster_handler_config"]["handlers"]["pipeline_json"]
    assert handler["()"] == f"{pipeline_log_handler.__module__}.{pipeline_log_handler.__name__}"
    assert config["managed_python_loggers"] == ["wallet_lake"]
