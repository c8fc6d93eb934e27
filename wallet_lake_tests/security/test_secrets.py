"""Secrets: resolved from AWS Secrets Manager (the local AWS API) or the environment, and never
written where people or other systems can read them: logs, Dagster's compute logs and event
log (materialization metadata included), the connector's config, alerts, error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from wallet_lake.security.secrets import SecretNotFound, forget, redact, resolve_secret

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture
def secretsmanager(stack_resources):
    """The local Secrets Manager; every secret a test creates is deleted afterwards."""
    client = stack_resources["lake"].client("secretsmanager")
    created: list[str] = []

    def create(value: str) -> str:
        name = f"wallet-lake/test/{uuid.uuid4().hex}"
        client.create_secret(Name=name, SecretString=value)
        created.append(name)
        return name

    client.create = create  # type: ignore[attr-defined]
    yield client
    for name in created:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    forget()


def test_password_stored_in_secrets_manager_is_resolved_through_its_secret_id(secretsmanager):
    password = uuid.uuid4().hex
    secret_id = secretsmanager.create(json.dumps({"username": "wallet_lake", "password": password}))
    env = {**os.environ, "WL_PG_PASSWORD_SECRET_ID": secret_id, "WL_PG_PASSWORD": "not-this-one"}
    assert resolve_secret("WL_PG_PASSWORD", env=env, refresh=True) == password  # the secret id wins


def test_plain_string_secret_and_a_named_json_field_resolve(secretsmanager):
    plain = secretsmanager.create("s3cr3t-plain-value")
    doc = secretsmanager.create(json.dumps({"token": "tok-123456", "password": "other"}))
    env = dict(os.environ)
    assert resolve_secret("WL_X", env={**env, "WL_X_SECRET_ID": plain}, refresh=True) == "s3cr3t-plain-value"
    assert resolve_secret("WL_Y", env={**env, "WL_Y_SECRET_ID": doc, "WL_Y_SECRET_KEY": "token"}, refresh=True) == "tok-123456"


def test_environment_value_is_used_when_no_secret_id_is_set():
    assert resolve_secret("WL_Z", env={"WL_Z": "from-the-environment"}, refresh=True) == "from-the-environment"
    forget("WL_Z")


def test_missing_secret_names_what_to_set_and_never_a_value(secretsmanager):
    with pytest.raises(SecretNotFound, match="set WL_NOPE_SECRET_ID .* or WL_NOPE"):
        resolve_secret("WL_NOPE", env={}, refresh=True)
    with pytest.raises(SecretNotFound, match="does not exist"):
        resolve_secret("WL_NOPE", env={**os.environ, "WL_NOPE_SECRET_ID": f"wallet-lake/test/missing-{uuid.uuid4().hex}"}, refresh=True)


def test_pipeline_connects_to_postgres_with_the_password_from_secrets_manager(secretsmanager, monkeypatch):
    """The CLI tools' resources (resources_from_os_env) with WL_PG_PASSWORD only in Secrets Manager."""
    from wallet_lake.resources import resources_from_os_env

    secret_id = secretsmanager.create(json.dumps({"password": os.environ["WL_PG_PASSWORD"]}))
    monkeypatch.delenv("WL_PG_PASSWORD")
    monkeypatch.setenv("WL_PG_PASSWORD_SECRET_ID", secret_id)
    forget()
    pg = resources_from_os_env()["postgres"]
    with pg.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == pg.user


def test_secrets_exec_starts_a_command_with_the_resolved_secret_in_its_environment(secretsmanager):
    value = uuid.uuid4().hex
    secret_id = secretsmanager.create(json.dumps({"password": value}))
    env = {k: v for k, v in os.environ.items() if k != "WL_PG_PASSWORD"}
    env["WL_PG_PASSWORD_SECRET_ID"] = secret_id
    proc = subprocess.run(
        [sys.executable, "-m", "wallet_lake.security.secrets", "exec", "--", sys.executable, "-c",
         f"import os; print(os.environ['WL_PG_PASSWORD'] == {value!r})"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert value not in proc.stdout + proc.stderr
    assert "resolved from Secrets Manager: WL_PG_PASSWORD" in proc.stderr


def test_redaction_masks_resolved_and_environment_secrets():
    value = f"resolved-{uuid.uuid4().hex}"
    resolve_secret("WL_REDACT_PROBE", env={"WL_REDACT_PROBE": value}, refresh=True)
    try:
        text = f"login failed: password={value} / {os.environ['WL_PG_PASSWORD']}"
        assert redact(text) == "login failed: password=*** / ***"
    finally:
        forget("WL_REDACT_PROBE")


# ---------------------------------------------------------------- a full flow leaks nothing


def _occurrences(secret: bytes, paths) -> list[str]:
    hits = []
    for p in paths:
        try:
            if secret in Path(p).read_bytes():
                hits.append(str(p))
        except (PermissionError, IsADirectoryError, FileNotFoundError):
            continue
    return hits


@pytest.mark.e2e
def test_full_flow_leaves_the_database_password_in_no_log_metadata_or_connector_config(full_flow, stack_resources):
    import dagster as dg

    password = os.environ["WL_PG_PASSWORD"]
    secret = password.encode()
    assert len(password) >= 16

    # 1. Every log file of the local stack (services, Dagster processes, the pipeline's JSON log).
    log_dir = full_flow.stack_dir / "logs"
    log_files = [p for p in log_dir.rglob("*") if p.is_file()]
    assert {"postgres.log", "kafka.log", "connect.log", "moto.log"} <= {p.name for p in log_files}
    assert _occurrences(secret, log_files) == []
    # The run's structured lines are there (and carry its run id).
    pipeline_log = log_dir / "pipeline.jsonl"
    run_lines = [json.loads(l) for l in pipeline_log.read_text().splitlines() if full_flow.run_id in l]
    assert run_lines and all(l["run_id"] == full_flow.run_id for l in run_lines)

    # 2. Dagster's compute logs (stdout/stderr of every step) and everything the CLI printed.
    compute_dir = Path(os.environ["DAGSTER_HOME"]) / "storage" / full_flow.run_id
    compute_files = [p for p in compute_dir.rglob("*") if p.is_file()]
    assert compute_files, f"no compute logs under {compute_dir}"
    assert _occurrences(secret, compute_files) == []
    assert password not in full_flow.output

    # 3. The run's event log, every materialization's metadata included.
    with dg.DagsterInstance.get() as instance:
        records = instance.all_logs(full_flow.run_id)
        materializations = [r for r in records if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]
        assert {m.dagster_event.asset_key.to_user_string() for m in materializations} >= {
            "raw_payments", "curated_payments", "kafka/payments_curated", "postgres/curated_payments"}
        assert all(password not in dg.serialize_value(r) for r in records)
        for m in materializations:
            assert password not in json.dumps({k: str(v) for k, v in m.asset_materialization.metadata.items()})

    # 4. The connector as Connect serves it and stores it (its config topic).
    connect = stack_resources["connect"]
    client = connect.client()
    for path in (f"/connectors/{connect.connector_name}", f"/connectors/{connect.connector_name}/config", f"/connectors/{connect.connector_name}/tasks"):
        resp = client.http.get(path)
        assert resp.status_code == 200, path
        assert password not in resp.text, path
    assert "${env:WL_PG_PASSWORD}" in client.http.get(f"/connectors/{connect.connector_name}/config").text
    assert password.encode() not in _config_topic_bytes(stack_resources["kafka"])


def _config_topic_bytes(kafka) -> bytes:
    """Every record of Connect's config topic (where connector configs are persisted)."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    topic = "_wallet-lake-connect-configs"
    from wallet_lake.security.kafka_acls import admin_client_config

    # Connect's internal topics are the worker's alone: read them as the provisioning admin.
    c = Consumer({**admin_client_config(), "group.id": f"t-leak-scan-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out, seen, deadline = [], 0, time.monotonic() + 30
        while seen < sum(ends.values()) and time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None or msg.error():
                continue
            seen += 1
            out.append(msg.value() or b"")
        assert seen == sum(ends.values()) and seen > 0, f"read {seen} of {sum(ends.values())} config records"
        return b"\n".join(out)
    finally:
        c.close()


def test_the_api_can_use_the_secrets_module_without_importing_dagster():
    """api/ never imports Dagster: the secrets module (and alerts) must stay importable on their own."""
    code = ("import sys, wallet_lake.security.secrets, wallet_lake.ops.alerts; "
            "print(sorted(m for m in ('dagster', 'pyspark', 'boto3') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
