"""Settings: required connection fields, and the password kept out of every string."""

from __future__ import annotations

import pytest

from api.settings import SettingsError, load_settings

ENV = {
    "WL_PG_HOST": "db.example",
    "WL_PG_PORT": "6543",
    "WL_PG_USER": "reporter",
    "WL_PG_PASSWORD": "s3cr3t-Pa55word",
    "WL_PG_DB": "lake",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(ENV) + ["WL_PG_STATEMENT_TIMEOUT_MS", "WL_PG_POOL_MIN_SIZE", "WL_PG_POOL_MAX_SIZE"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_reads_wl_pg_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_STATEMENT_TIMEOUT_MS", "1234")
    s = load_settings()
    assert (s.pg_host, s.pg_port, s.pg_user, s.pg_db) == ("db.example", 6543, "reporter", "lake")
    assert s.pg_password.get_secret_value() == ENV["WL_PG_PASSWORD"]
    assert s.pg_statement_timeout_ms == 1234


def test_statement_timeout_defaults_to_5s(env: pytest.MonkeyPatch) -> None:
    assert load_settings().pg_statement_timeout_ms == 5000


@pytest.mark.parametrize("missing", ["WL_PG_HOST", "WL_PG_USER", "WL_PG_PASSWORD", "WL_PG_DB"])
def test_connection_fields_are_required(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert missing in str(info.value)
    # pydantic's own error would echo every input, the password included.
    assert ENV["WL_PG_PASSWORD"] not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_password_never_in_repr_str_or_conninfo(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    for text in (repr(s), str(s), s.conninfo(), repr(s.model_dump())):
        assert ENV["WL_PG_PASSWORD"] not in text


def test_conninfo_sets_statement_timeout_and_read_only(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_STATEMENT_TIMEOUT_MS", "2500")
    info = load_settings().conninfo()
    assert "statement_timeout=2500" in info
    assert "default_transaction_read_only=on" in info
    assert "host=db.example" in info and "port=6543" in info


def test_pool_min_above_max_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("WL_PG_POOL_MIN_SIZE", "5")
    env.setenv("WL_PG_POOL_MAX_SIZE", "2")
    with pytest.raises(SettingsError, match="pg_pool_min_size"):
        load_settings()

