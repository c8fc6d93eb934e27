"""daily-recon against the real Postgres: hand-built rows, numbers checked by hand.

Each test inserts rows for merchants of its own (m_test_<uuid>) and deletes them afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest
from fastapi.testclient import TestClient

from api.db import Database, DatabaseUnavailable
from api.settings import Settings

from .conftest import payment, split_as_of

pytestmark = pytest.mark.integration

URL = "/reports/daily-recon"
DAY = dt.date(2026, 11, 24)
UTC = dt.timezone.utc


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_counts_and_amounts_per_currency_and_status(live_client: TestClient, payments, new_merchant) -> None:
    merchant, other_merchant = new_merchant(), new_merchant()
    day_before, day_after = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)
    payments(
        [
            payment(merchant, currency="USD", status="APPROVED", amount_cents=1000, created_at=at(DAY, 0, 0)),
            payment(merchant, currency="USD", status="APPROVED", amount_cents=2500, created_at=at(DAY, 23, 59)),
            payment(merchant, currency="USD", status="DECLINED", amount_cents=700, created_at=at(DAY, 10)),
            payment(merchant, currency="USD", status="REFUNDED", amount_cents=300, created_at=at(DAY, 11)),
            payment(merchant, currency="EUR", status="APPROVED", amount_cents=4200, created_at=at(DAY, 12)),
            payment(merchant, currency="EUR", status="PENDING", amount_cents=100, created_at=at(DAY, 13)),
            payment(merchant, currency="JPY", status="APPROVED", amount_cents=50000, created_at=at(DAY, 14)),
            payment(merchant, currency="GBP", status="CHARGEBACK", amount_cents=0, created_at=at(DAY, 15)),
            # Other days of the same merchant: excluded.
            payment(merchant, currency="USD", status="APPROVED", amount_cents=999_999, created_at=at(day_before, 23, 59)),
            payment(merchant, currency="EUR", status="APPROVED", amount_cents=888_888, created_at=at(day_after, 0, 0)),
            # Another merchant on the same day: excluded.
            payment(other_merchant, currency="USD", status="APPROVED", amount_cents=123_456, created_at=at(DAY, 12)),
        ]
    )

    r = live_client.get(URL, params={"date": DAY.isoformat(), "merchant": merchant})

    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert split_as_of(r.json())[1] == {
        "date": "2026-11-24",
        "merchant_id": merchant,
        "by_status": [
            {"currency": "EUR", "status": "APPROVED", "count": 1, "amount_cents": 4200},
            {"currency": "EUR", "status": "PENDING", "count": 1, "amount_cents": 100},
            {"currency": "GBP", "status": "CHARGEBACK", "count": 1, "amount_cents": 0},
            {"currency": "JPY", "status": "APPROVED", "count": 1, "amount_cents": 50000},
            {"currency": "USD", "status": "APPROVED", "count": 2, "amount_cents": 3500},
            {"currency": "USD", "status": "DECLINED", "count": 1, "amount_cents": 700},
            {"currency": "USD", "status": "REFUNDED", "count": 1, "amount_cents": 300},
        ],
        "totals": [
            {"currency": "EUR", "count": 2, "amount_cents": 4300},
            {"currency": "GBP", "count": 1, "amount_cents": 0},
            {"currency": "JPY", "count": 1, "amount_cents": 50000},
            {"currency": "USD", "count": 4, "amount_cents": 4500},
        ],
    }

    # The excluded rows are there: the neighbouring day and the other merchant answer for themselves.
    before = live_client.get(URL, params={"date": day_before.isoformat(), "merchant": merchant}).json()
    assert before["totals"] == [{"currency": "USD", "count": 1, "amount_cents": 999_999}]
    other = live_client.get(URL, params={"date": DAY.isoformat(), "merchant": other_merchant}).json()
    assert other["totals"] == [{"currency": "USD", "count": 1, "amount_cents": 123_456}]


def test_amounts_beyond_float_precision_stay_exact(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    big = 2**53 + 1  # not representable as a double
    payments(
        [
            payment(merchant, currency="USD", status="APPROVED", amount_cents=big, created_at=at(DAY, 1)),
            payment(merchant, currency="USD", status="APPROVED", amount_cents=big, created_at=at(DAY, 2)),
        ]
    )
    body = live_client.get(URL, params={"date": DAY.isoformat(), "merchant": merchant}).json()
    assert body["by_status"] == [{"currency": "USD", "status": "APPROVED", "count": 2, "amount_cents": 2 * big}]


def test_merchant_without_payments_is_200_and_empty(live_client: TestClient, new_merchant) -> None:
    merchant = new_merchant()
    r = live_client.get(URL, params={"date": DAY.isoformat(), "merchant": merchant}, headers={"X-Request-ID": "it-1"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "it-1"
    assert split_as_of(r.json())[1] == {"date": "2026-11-24", "merchant_id": merchant, "by_status": [], "totals": []}


def test_merchant_id_is_a_value_not_sql(live_client: TestClient, payments, new_merchant) -> None:
    merchant = new_merchant()
    payments([payment(merchant, currency="USD", status="APPROVED", amount_cents=1, created_at=at(DAY, 1))])
    injection = f"{merchant}'or'1'='1"
    body = live_client.get(URL, params={"date": DAY.isoformat(), "merchant": injection}).json()
    assert body["by_status"] == [] and body["merchant_id"] == injection


def test_readyz_with_postgres(live_client: TestClient) -> None:
    r = live_client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "postgres": "ok"}


def test_pool_connections_carry_statement_timeout_and_read_only(pg_settings: Settings) -> None:
    settings = pg_settings.model_copy(update={"pg_statement_timeout_ms": 150, "pg_pool_min_size": 0})

    async def check() -> None:
        database = Database()
        await database.open(settings, wait=True)
        try:
            async with database.connection() as conn:
                rows = await conn.fetch(
                    "SELECT current_setting('statement_timeout'), current_setting('default_transaction_read_only'),"
                    " current_setting('search_path'), current_setting('application_name')"
                )
                assert tuple(rows[0]) == ("150ms", "on", "public", "wallet-lake-api")
            # Over the time limit: a 503 (timed out), and the connection serves the next borrow.
            with pytest.raises(DatabaseUnavailable) as timed_out:
                async with database.connection() as conn:
                    await conn.fetch("SELECT pg_sleep(30)")
            assert timed_out.value.timed_out
            async with database.connection() as conn:
                with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                    await conn.execute("CREATE TEMP TABLE api_must_not_write (x int)")
                assert (await conn.fetch("SELECT 1 AS one"))[0]["one"] == 1
        finally:
            await database.close()

    asyncio.run(check())
