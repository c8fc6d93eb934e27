"""Fixtures of the reports pages' tests: a real API server (uvicorn, the stack's Postgres), rows of
two fresh merchants and a ledger day in Postgres, keys of each scope, and one headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright's Python client) for the whole session.

The rows go in as the API tests put them (`wallet_lake_tests.api.conftest`: curated rows upserted
as the sink does, then the report aggregates of their dts refreshed), on days of a far year no
other test or pipeline run uses; everything written is removed at the end."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from wallet_lake.serving import ledger
from wallet_lake.serving.aggregates import refresh_report_aggregates
from wallet_lake_tests.api.conftest import UPSERT_CURATED, api_key, payment, pg_admin, pg_settings  # noqa: F401  (fixtures)
from wallet_lake_tests.api.live_server import api_server

CHROMIUM = os.environ.get("WL_CHROMIUM", "/usr/bin/chromium")
# Headless in a sandbox-less container, with nothing that calls out to the internet (this
# machine has none; Chromium would retry its background connections for the whole session).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
UTC = dt.timezone.utc


@dataclass(frozen=True)
class Seeded:
    day: dt.date  # the daily-recon day; the series pages show day-2 .. day
    merchant_a: str
    merchant_b: str
    ledger_day: dt.date
    run_ids: tuple[str, ...]  # Dagster run ids the ledger rows name

    @property
    def first_day(self) -> dt.date:
        return self.day - dt.timedelta(days=2)


def _far_day() -> dt.date:
    """A day of 2040-2099 no other test or pipeline run writes."""
    return dt.date(2040, 1, 5) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(59 * 365))


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _rows(a: str, b: str, day: dt.date) -> list[dict]:
    """Merchant A on three days: every status, three currencies, three payment methods with
    latencies; merchant B on the last day only, with amounts A never has."""
    rows = []
    for back, scale in ((2, 1), (1, 2), (0, 3)):
        d = day - dt.timedelta(days=back)
        for i in range(scale + 1):
            rows += [
                payment(a, currency="EUR", status="APPROVED", amount_cents=1_250 + i, created_at=_at(d, 1, i), latency_ms=90 + 40 * i),
                payment(a, currency="EUR", status="REFUNDED", amount_cents=400 * scale, created_at=_at(d, 2, i), latency_ms=300 + i),
                payment(a, currency="USD", status="APPROVED", amount_cents=9_900, created_at=_at(d, 3, i), payment_method="wallet",
                        latency_ms=1_500 + 250 * i),
                payment(a, currency="USD", status="DECLINED", amount_cents=5_000 + i, created_at=_at(d, 4, i), payment_method="wallet",
                        decline_reason="do_not_honor" if i % 2 else "insufficient_funds"),
            ]
        rows += [
            payment(a, currency="JPY", status="CHARGEBACK", amount_cents=120_000 * scale, created_at=_at(d, 5), payment_method="bank_transfer",
                    latency_ms=20_000 * scale),
            payment(a, currency="JPY", status="APPROVED", amount_cents=300_000, created_at=_at(d, 6), payment_method="bank_transfer",
                    latency_ms=12_345),
            payment(a, currency="EUR", status="PENDING", amount_cents=777, created_at=_at(d, 7)),
        ]
    rows += [
        payment(b, currency="GBP", status="APPROVED", amount_cents=987_654_321, created_at=_at(day, 9)),
        payment(b, currency="EUR", status="REFUNDED", amount_cents=123_456_789, created_at=_at(day, 10)),
    ]
    return rows


def _record_ledger(conn: psycopg.Connection, day: dt.date, run_ids: tuple[str, ...]) -> None:
    """Three landing hours as the stages record them: 10:00 reconciled, 11:00 with a publish
    short of the curation, 12:00 landed only; the other 21 hours never ran."""
    now = dt.datetime.now(UTC)
    ten, eleven, noon = (_at(day, h) for h in (10, 11, 12))
    ledger.record_stage(conn, ten, ledger.RAW_LINES, 400, run_id=run_ids[0], curation_run_id=None)
    ledger.record_curation(conn, ten, curated=370, quarantined=5, duplicates_removed=25, run_id=run_ids[0], curation_run_id="c-10")
    ledger.record_stage(conn, ten, ledger.PUBLISHED, 370, run_id=run_ids[0], curation_run_id="c-10")
    ledger.record_loaded(conn, ten, {day: 370}, run_id=run_ids[0], curation_run_id="c-10", verified_at=now)
    ledger.record_stage(conn, eleven, ledger.RAW_LINES, 380, run_id=run_ids[1], curation_run_id=None)
    ledger.record_curation(conn, eleven, curated=360, quarantined=8, duplicates_removed=12, run_id=run_ids[1], curation_run_id="c-11")
    ledger.record_stage(conn, eleven, ledger.PUBLISHED, 359, run_id=run_ids[2], curation_run_id="c-11")
    ledger.record_stage(conn, noon, ledger.RAW_LINES, 410, run_id=run_ids[2], curation_run_id=None)


@pytest.fixture(scope="session")
def seeded(pg_admin: psycopg.Connection) -> Iterator[Seeded]:  # noqa: F811
    day, ledger_day = _far_day(), _far_day()
    a, b = f"m_ui_a_{uuid.uuid4().hex[:12]}", f"m_ui_b_{uuid.uuid4().hex[:12]}"
    rows = _rows(a, b, day)
    run_ids = tuple(str(uuid.uuid4()) for _ in range(3))
    with pg_admin.cursor() as cur:
        cur.executemany(UPSERT_CURATED, rows)
    refresh_report_aggregates(pg_admin, {r["dt"] for r in rows})
    _record_ledger(pg_admin, ledger_day, run_ids)
    try:
        yield Seeded(day=day, merchant_a=a, merchant_b=b, ledger_day=ledger_day, run_ids=run_ids)
    finally:
        hours = ledger.day_hours(ledger_day)
        pg_admin.execute("DELETE FROM public.pipeline_ledger_loaded_dts WHERE landing_hour = ANY(%s)", (hours,))
        pg_admin.execute("DELETE FROM public.pipeline_ledger WHERE landing_hour = ANY(%s)", (hours,))
        pg_admin.execute("DELETE FROM public.curated_payments WHERE merchant_id = ANY(%s)", ([a, b],))
        refresh_report_aggregates(pg_admin, [])  # the delete trigger marked their dts


@dataclass(frozen=True)
class Server:
    base: str
    log_path: Path
    dagster_ui_url: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The reports API over HTTP; its log unbuffered, so a test can read what it wrote."""
    log_path = tmp_path_factory.mktemp("ui-server") / "api.log"
    dagster = os.environ.get("WL_DAGSTER_UI_URL", "http://127.0.0.1:3000")
    with api_server(log_path, {"PYTHONUNBUFFERED": "1", "WL_DAGSTER_UI_URL": dagster}) as base:
        yield Server(base, log_path, dagster)


@pytest.fixture(scope="session")
def keys(api_key, seeded: Seeded) -> dict[str, str]:  # noqa: F811
    return {"a": api_key([seeded.merchant_a]), "all": api_key()}


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: <pytest basetemp>/ui-screenshots0/."""
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (scripts/test does), or set WL_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) per test, with a laptop-sized window."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # A 4xx page (401, 403, 422) is an answer under test, not an error of the page ("Failed to load resource").
    pg.on("console", lambda msg: errors.append(msg.text)
          if msg.type == "error" and not msg.text.startswith("Failed to load resource: the server responded with a status of 4")
          else None)
    try:
        yield pg
        assert errors == [], f"the page logged errors: {errors}"
    finally:
        context.close()
