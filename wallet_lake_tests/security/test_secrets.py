"""Secrets: resolved from AWS Secrets Manager (the local AWS API) or the environment, and never
written where people or other systems can read them (alerts, error messages here; everything a
full run leaves behind in test_secret_scan.py)."""

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
    """The CLI tools' resources (resources_from_os_env) with the pipeline role's password
    WL_PG_PIPELINE_PASSWORD only in Secrets Manager."""
    from wallet_lake.resources import resources_from_os_env

    secret_id = secretsmanager.create(json.dumps({"password": os.environ["WL_PG_PIPELINE_PASSWORD"]}))
    monkeypatch.delenv("WL_PG_PIPELINE_PASSWORD")
    monkeypatch.setenv("WL_PG_PIPELINE_PASSWORD_SECRET_ID", secret_id)
    forget()
    pg = resources_from_os_env()["postgres"]
    with pg.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == pg.user == os.environ["WL_PG_PIPELINE_USER"]


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


# A full flow leaks nothing: test_secret_scan.py scans its logs, event log, Connect, command lines
# and Parquet metadata for every secret.


def test_the_api_can_use_the_secrets_module_without_importing_dagster():
    """api/ never imports Dagster: the secrets module (and alerts) must stay importable on their own."""
    code = ("import sys, wallet_lake.security.secrets, wallet_lake.ops.alerts; "
            "print(sorted(m for m in ('dagster', 'pyspark', 'boto3') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
