"""Settings: required connection fields, and the password kept out of every string."""

from __future__ import annotations

import os

import pytest

from api.settings import SettingsError, load_settings

ENV = {
    "WL_PG_HOST": "db.example",
    "WL_PG_PORT": "6543",
    "WL_PG_API_USER": "reporter",
    "WL_PG_API_PASSWORD": "s3cr3t-Pa55word",
    "WL_PG_DB": "lake",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(ENV) + ["WL_PG_STATEMENT_TIMEOUT_MS", "WL_PG_POOL_MIN_SIZE", "WL_PG_POOL_MAX_SIZE", "WL_PG_API_PASSWORD_SECRET_ID",
                           "WL_PG_SSLMODE", "WL_PG_SSLROOTCERT"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_reads_wl_pg_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_STATEMENT_TIMEOUT_MS", "1234")
    s = load_settings()
    assert (s.pg_host, s.pg_port, s.pg_user, s.pg_db) == ("db.example", 6543, "reporter", "lake")
    assert s.pg_password.get_secret_value() == ENV["WL_PG_API_PASSWORD"]
    assert s.pg_statement_timeout_ms == 1234


def test_statement_timeout_defaults_to_5s(env: pytest.MonkeyPatch) -> None:
    assert load_settings().pg_statement_timeout_ms == 5000


@pytest.mark.parametrize("missing", ["WL_PG_HOST", "WL_PG_API_USER", "WL_PG_API_PASSWORD", "WL_PG_DB"])
def test_connection_fields_are_required(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert missing in str(info.value)
    # pydantic's own error would echo every input, the password included.
    assert ENV["WL_PG_API_PASSWORD"] not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_password_never_in_repr_str_or_conninfo(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    for text in (repr(s), str(s), s.conninfo(), repr(s.model_dump())):
        assert ENV["WL_PG_API_PASSWORD"] not in text


def test_conninfo_sets_statement_timeout_and_read_only(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_STATEMENT_TIMEOUT_MS", "2500")
    info = load_settings().conninfo()
    assert "statement_timeout=2500" in info
    assert "default_transaction_read_only=on" in info
    assert "host=db.example" in info and "port=6543" in info


def test_conninfo_verifies_the_servers_certificate_by_default(env: pytest.MonkeyPatch) -> None:
    assert "sslmode=verify-full" in load_settings().conninfo()
    env.setenv("WL_PG_SSLROOTCERT", "/etc/ssl/rds-ca.pem")
    assert "sslrootcert=/etc/ssl/rds-ca.pem" in load_settings().conninfo()
    env.setenv("WL_PG_SSLMODE", "sometimes")
    with pytest.raises(SettingsError, match="WL_PG_SSLMODE"):
        load_settings()


def test_key_administration_logs_in_as_its_own_role(env: pytest.MonkeyPatch) -> None:
    from api.settings import KeyAdminSettings

    env.setenv("WL_PG_KEYS_USER", "key_admin")
    env.setenv("WL_PG_KEYS_PASSWORD", "an0ther-Pa55word")
    s = load_settings(KeyAdminSettings)
    assert s.pg_user == "key_admin" and s.pg_password.get_secret_value() == "an0ther-Pa55word"
    env.delenv("WL_PG_KEYS_USER")
    with pytest.raises(SettingsError, match="WL_PG_KEYS_USER"):
        load_settings(KeyAdminSettings)


def test_pool_min_above_max_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_POOL_MIN_SIZE", "5")
    env.setenv("WL_PG_POOL_MAX_SIZE", "2")
    with pytest.raises(SettingsError, match="pg_pool_min_size"):
        load_settings()



@pytest.mark.integration
def test_password_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    """WL_PG_API_PASSWORD_SECRET_ID: the API role's password comes from Secrets Manager (the
    stack's moto), and the API reaches Postgres with it."""
    import json
    import uuid

    import boto3
    from fastapi.testclient import TestClient

    from api.main import create_app
    from wallet_lake.security import secrets

    password = os.environ.get("WL_PG_API_PASSWORD")
    if not password or not os.environ.get("WL_S3_ENDPOINT_URL"):
        pytest.skip("needs the local stack's environment")
    client = boto3.client("secretsmanager", endpoint_url=os.environ["WL_S3_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION"))
    name = f"wallet-lake-tests/api-{uuid.uuid4().hex}"
    client.create_secret(Name=name, SecretString=json.dumps({"username": os.environ["WL_PG_API_USER"], "password": password}))
    monkeypatch.setenv("WL_PG_API_PASSWORD_SECRET_ID", name)
    monkeypatch.delenv("WL_PG_API_PASSWORD")
    secrets.forget("WL_PG_API_PASSWORD")
    try:
        settings = load_settings()
        assert settings.pg_password.get_secret_value() == password
        with TestClient(create_app(settings)) as c:
            assert c.get("/readyz").status_code == 200
        monkeypatch.setenv("WL_PG_API_PASSWORD_SECRET_ID", name + "-missing")
        secrets.forget("WL_PG_API_PASSWORD")
        with pytest.raises(SettingsError, match="WL_PG_API_PASSWORD_SECRET_ID") as info:
            load_settings()
        assert password not in str(info.value)
    finally:
        secrets.forget("WL_PG_API_PASSWORD")
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
