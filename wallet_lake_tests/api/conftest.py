"""Fixtures of the API tests.

Pure tests use `client`: an app whose lifespan never runs, so no pool opens and no Postgres
is needed. Integration tests (marked `integration`) use `live_client` and `payments`, which need
the WL_PG_* variables (source stack/local.env and .stack/secrets.env) and a migrated Postgres."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from api.main import create_app
from api.settings import Settings, SettingsError, load_settings
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_VERSION

# Never contacted (the pure app's pool is never opened); `.invalid` cannot resolve anywhere.
OFFLINE_SETTINGS = dict(pg_host="db.invalid", pg_user="nobody", pg_password="pure-test-password", pg_db="none")


@pytest.fixture
def offline_app() -> FastAPI:
    return create_app(Settings(**OFFLINE_SETTINGS))


@pytest.fixture
def client(offline_app: FastAPI) -> TestClient:
    """No `with`: the lifespan does not run, so a request that passes validation gets a 503."""
    return TestClient(offline_app)


# --- integration ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        pytest.skip(f"Postgres settings missing (source stack/local.env and .stack/secrets.env): {exc}")


@pytest.fixture(scope="session")
def pg_admin(pg_settings: Settings) -> Iterator[psycopg.Connection]:
    """A writable connection for test rows; the API's own connections are read-only."""
    conninfo = make_conninfo(
        "",
        host=pg_settings.pg_host,
        port=pg_settings.pg_port,
        user=pg_settings.pg_user,
        dbname=pg_settings.pg_db,
        connect_timeout=pg_settings.pg_connect_timeout_s,
    )
    try:
        conn = psycopg.connect(conninfo, password=pg_settings.pg_password.get_secret_value(), autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres at {pg_settings.pg_host}:{pg_settings.pg_port} unreachable: {exc}")
    with conn:
        if conn.execute("select to_regclass('public.curated_payments')").fetchone()[0] is None:
            pytest.fail("public.curated_payments does not exist: run the migrations (stack/wallet-stack up)")
        yield conn


@pytest.fixture(scope="session")
def live_client(pg_settings: Settings) -> Iterator[TestClient]:
    """The real app with its real pool (lifespan runs)."""
    with TestClient(create_app(pg_settings)) as c:
        yield c


def payment(
    merchant_id: str,
    *,
    currency: str,
    status: str,
    amount_cents: int,
    created_at: dt.datetime,
    payment_id: str | None = None,
) -> dict[str, Any]:
    """A curated row as the pipeline would write it: derived columns follow the contract."""
    created_at = created_at.astimezone(dt.timezone.utc)
    return {
        "payment_id": payment_id or f"{merchant_id}_{uuid.uuid4().hex}",
        "merchant_id": merchant_id,
        "user_id": "u_test",
        "amount_cents": amount_cents,
        "currency": currency,
        "status": status,
        "payment_method": "card",
        "risk_score": 0.1,
        "authorized_at": None,
        "completed_at": None,
        "created_at": created_at,
        "source_system": "api-tests",
        "decline_reason": "insufficient_funds" if status == "DECLINED" else None,
        "dt": created_at.date(),
        "hour": created_at.hour,
        "authorized_to_complete_ms": None,
        "is_approved": status == "APPROVED",
        "is_refunded": status == "REFUNDED",
        "processed_at": dt.datetime.now(dt.timezone.utc),
        "curated_version": CURATED_VERSION,
    }


_INSERT = sql.SQL("INSERT INTO public.curated_payments ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, CURATED_COLUMNS)),
    sql.SQL(", ").join(map(sql.Placeholder, CURATED_COLUMNS)),
)


@pytest.fixture
def new_merchant() -> Callable[[], str]:
    """Unique merchant ids, so tests never see each other's rows (or the pipeline's)."""
    return lambda: f"m_test_{uuid.uuid4().hex}"


@pytest.fixture
def payments(pg_admin: psycopg.Connection) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
    """Insert rows into public.curated_payments; every merchant inserted is deleted afterwards."""
    merchants: set[str] = set()

    def insert(rows: list[dict[str, Any]]) -> None:
        merchants.update(r["merchant_id"] for r in rows)
        with pg_admin.cursor() as cur:
            cur.executemany(_INSERT, rows)

    yield insert
    if merchants:
        pg_admin.execute("DELETE FROM public.curated_payments WHERE merchant_id = ANY(%s)", [sorted(merchants)])
