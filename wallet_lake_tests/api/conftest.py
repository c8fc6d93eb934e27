"""Fixtures of the API tests.

Pure tests use `client`: an app whose lifespan never runs, so no pool opens and no Postgres
is needed; its API keys live in memory (StaticKeyStore) and `client` sends an all-merchant one.
Integration tests (marked `integration`) use `live_client` (an all-merchant key stored in
Postgres), `api_key` (keys of any scope) and `payments` (rows, with the report aggregates of
their dts refreshed), which need the WL_PG_* variables (source stack/local.env and
.stack/secrets.env) and a migrated Postgres."""

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

from api.auth import StaticKeyStore, generate_key
from api.keys import create_key
from api.main import create_app
from api.settings import Settings, SettingsError, load_settings
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_VERSION
from wallet_lake.lake.query import LakeUnavailable
from wallet_lake.serving import pg_connect
from wallet_lake.serving.aggregates import refresh_report_aggregates

# The shared test apps serve thousands of requests from one client ("testclient") and a few
# keys; rate limits are tested on apps of their own (test_rate_limits.py).
NO_RATE_LIMITS = dict(api_rate_limit_client_per_s=0, api_rate_limit_key_per_s=0)
# Never contacted (the pure app's pool is never opened); `.invalid` cannot resolve anywhere.
OFFLINE_SETTINGS = dict(pg_host="db.invalid", pg_user="nobody", pg_password="pure-test-password", pg_db="none", **NO_RATE_LIMITS)

# Keys of the offline app (fresh per test run; they exist only in its memory).
ALL_MERCHANTS_KEY = generate_key()[1]
SCOPED_MERCHANTS = ("m_1", "m_2")
SCOPED_KEY = generate_key()[1]


def offline_key_store() -> StaticKeyStore:
    return StaticKeyStore({ALL_MERCHANTS_KEY: None, SCOPED_KEY: SCOPED_MERCHANTS})


def no_lake():
    raise LakeUnavailable("the offline app has no lake")


def create_offline_app() -> FastAPI:
    """Neither Postgres nor the lake: a valid request ends in a 503."""
    return create_app(Settings(**OFFLINE_SETTINGS), key_store=offline_key_store(), lake_engine=no_lake)


@pytest.fixture
def offline_app() -> FastAPI:
    return create_offline_app()


@pytest.fixture
def client(offline_app: FastAPI) -> TestClient:
    """No `with`: the lifespan does not run, so a request that passes validation gets a 503.
    Sends the all-merchant key; pass headers= to a request to override it."""
    return TestClient(offline_app, headers={"X-API-Key": ALL_MERCHANTS_KEY})


# --- integration ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        pytest.skip(f"Postgres settings missing (source stack/local.env and .stack/secrets.env): {exc}")


@pytest.fixture(scope="session")
def pg_admin(pg_settings: Settings) -> Iterator[psycopg.Connection]:
    """A writable connection for test rows, as the schema's owner (serving/pg_roles.py); the
    API's own role only reads."""
    try:
        conn = pg_connect.connect("owner", autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres at {pg_settings.pg_host}:{pg_settings.pg_port} unreachable: {exc}")
    with conn:
        if conn.execute("select to_regclass('public.curated_payments')").fetchone()[0] is None:
            pytest.fail("public.curated_payments does not exist: run the migrations (stack/wallet-stack up)")
        yield conn


@pytest.fixture(scope="session")
def api_key(pg_admin: psycopg.Connection, pg_settings: Settings) -> Iterator[Callable[..., str]]:
    """Create keys in api_keys: api_key() for every merchant, api_key(["m1", ...]) for some.
    Every key created is deleted at the end of the session."""
    created: list[str] = []

    def create(merchant_ids: list[str] | None = None) -> str:
        key_id, key = create_key(pg_admin, merchant_ids=merchant_ids, label="wallet_lake_tests.api")
        created.append(key_id)
        return key

    yield create
    if created:
        # A new connection: the session's one is broken when a later fault test (marker `faults`)
        # stopped Postgres, and the keys must still be removed.
        with pg_connect.connect("owner", autocommit=True) as conn:
            conn.execute("DELETE FROM public.api_keys WHERE key_id = ANY(%s)", [created])


class KeyedClient:
    """A client of the live app that sends one API key (the app's event loop and pool belong to
    one TestClient per session, so other keys are other KeyedClients over the same one)."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def get(self, url: str, **kwargs: Any):
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture(scope="session")
def live_http(pg_settings: Settings) -> Iterator[TestClient]:
    """The real app with its real pool (lifespan runs); sends no key by itself. Verified keys
    are not cached (TTL 0), so revocations apply at once."""
    app = create_app(pg_settings.model_copy(update={"api_key_cache_ttl_s": 0, **NO_RATE_LIMITS}))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def live_client(live_http: TestClient, api_key) -> KeyedClient:
    """The live app, with an all-merchant key."""
    return KeyedClient(live_http, {"X-API-Key": api_key()})


_DEFAULT_REASON = object()


def payment(
    merchant_id: str,
    *,
    currency: str,
    status: str,
    amount_cents: int,
    created_at: dt.datetime,
    payment_id: str | None = None,
    payment_method: str | None = "card",
    decline_reason: Any = _DEFAULT_REASON,
    latency_ms: int | None = None,
) -> dict[str, Any]:
    """A curated row as the pipeline would write it: derived columns follow the contract.
    latency_ms sets authorized_at/completed_at that far apart (authorized_to_complete_ms)."""
    created_at = created_at.astimezone(dt.timezone.utc)
    if decline_reason is _DEFAULT_REASON:
        decline_reason = "insufficient_funds" if status == "DECLINED" else None
    completed_at = created_at - dt.timedelta(milliseconds=20) if latency_ms is not None else None
    authorized_at = completed_at - dt.timedelta(milliseconds=latency_ms) if completed_at is not None else None
    return {
        "payment_id": payment_id or f"{merchant_id}_{uuid.uuid4().hex}",
        "merchant_id": merchant_id,
        "user_id": "u_test",
        "amount_cents": amount_cents,
        "currency": currency,
        "status": status,
        "payment_method": payment_method,
        "risk_score": 0.1,
        "authorized_at": authorized_at,
        "completed_at": completed_at,
        "created_at": created_at,
        "source_system": "api-tests",
        "decline_reason": decline_reason,
        "dt": created_at.date(),
        "hour": created_at.hour,
        "authorized_to_complete_ms": latency_ms,
        "is_approved": status == "APPROVED",
        "is_refunded": status == "REFUNDED",
        "processed_at": dt.datetime.now(dt.timezone.utc),
        "curated_version": CURATED_VERSION,
    }


_INSERT = sql.SQL("INSERT INTO public.curated_payments ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, CURATED_COLUMNS)),
    sql.SQL(", ").join(map(sql.Placeholder, CURATED_COLUMNS)),
)


def split_as_of(answer: dict[str, Any]) -> tuple[dt.datetime, dict[str, Any]]:
    """A report answer's `as_of` (checked to be an ISO-8601 UTC instant) and the rest of it."""
    rest = dict(answer)
    raw = rest.pop("as_of")
    as_of = dt.datetime.fromisoformat(raw)
    assert as_of.utcoffset() == dt.timedelta(0), raw
    return as_of, rest


@pytest.fixture
def new_merchant() -> Callable[[], str]:
    """Unique merchant ids, so tests never see each other's rows (or the pipeline's)."""
    return lambda: f"m_test_{uuid.uuid4().hex}"


# How the sink writes: an upsert on payment_id; the table's trigger refuses regressions.
UPSERT_CURATED = sql.SQL("{} ON CONFLICT (payment_id) DO UPDATE SET {}").format(
    _INSERT,
    sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in CURATED_COLUMNS if c != "payment_id"
    ),
)


@pytest.fixture
def payments(pg_admin: psycopg.Connection) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
    """Upsert rows into public.curated_payments, as the sink does, then refresh the report
    aggregates of the rows' dts, as the Postgres asset does. Every merchant written is deleted
    afterwards (and its dts refreshed again)."""
    merchants: set[str] = set()

    def upsert(rows: list[dict[str, Any]], *, refresh: bool = True) -> None:
        merchants.update(r["merchant_id"] for r in rows)
        with pg_admin.cursor() as cur:
            cur.executemany(UPSERT_CURATED, rows)
        if refresh:
            refresh_report_aggregates(pg_admin, {r["dt"] for r in rows})

    yield upsert
    if merchants:
        pg_admin.execute("DELETE FROM public.curated_payments WHERE merchant_id = ANY(%s)", [sorted(merchants)])
        refresh_report_aggregates(pg_admin, [])  # the delete trigger marked their dts
