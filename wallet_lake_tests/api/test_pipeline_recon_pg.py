"""GET /reports/pipeline-recon against the real Postgres: ledger rows and curated rows built by
hand (plain SQL, not the pipeline's writers), expected figures worked out by hand.

Each test uses a random landing day in a far year (no pipeline run or other test writes it) and
merchants of its own, and deletes its ledger rows afterwards (the payments fixture its rows)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from wallet_lake.serving import pg_connect
from fastapi.testclient import TestClient

from wallet_lake.serving import aggregates
from wallet_lake.serving.aggregates import refresh_report_aggregates

from .conftest import payment

pytestmark = pytest.mark.integration

URL = "/reports/pipeline-recon"
UTC = dt.timezone.utc
CURATION = "20400101T012003-5e0c2a1f"
STAGE_COLUMNS = ("raw_lines", "curated", "quarantined", "duplicates_removed", "published", "loaded")


def far_day() -> dt.date:
    """A day no other test or pipeline run uses (years 2040-2099)."""
    return dt.date(2040, 1, 1) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(59 * 365))


def hour_of(day: dt.date, h: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, tzinfo=UTC)


def clock(conn: psycopg.Connection) -> dt.datetime:
    """Database time now: the instant by which the rows written so far are committed."""
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


class Ledger:
    """Writes pipeline_ledger rows as the stages would, by hand; removes them afterwards."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.hours: set[dt.datetime] = set()

    def stage(self, hour: dt.datetime, stage: str, n: int, *, curation: str | None = CURATION, verified_at=None) -> None:
        self.hours.add(hour)
        self.conn.execute(
            "INSERT INTO public.pipeline_ledger (landing_hour, stage, row_count, curation_run_id, run_id, verified_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (hour, stage, n, None if stage == "raw_lines" else curation, f"run-{stage}-{hour:%H}", verified_at),
        )

    def hour(self, hour: dt.datetime, *figures: int, loaded: dict[dt.date, int] | None = None, verified_at=None) -> None:
        """raw_lines, curated, quarantined, duplicates_removed, published (as many as given), then
        loaded per dt."""
        for stage, n in zip(STAGE_COLUMNS, figures):
            self.stage(hour, stage, n)
        if loaded is not None:
            self.stage(hour, "loaded", sum(loaded.values()), verified_at=verified_at)
            for day, n in loaded.items():
                self.conn.execute(
                    "INSERT INTO public.pipeline_ledger_loaded_dts (landing_hour, dt, row_count) VALUES (%s, %s, %s)", (hour, day, n)
                )

    def remove(self) -> None:
        hours = sorted(self.hours)
        self.conn.execute("DELETE FROM public.pipeline_ledger_loaded_dts WHERE landing_hour = ANY(%s)", (hours,))
        self.conn.execute("DELETE FROM public.pipeline_ledger WHERE landing_hour = ANY(%s)", (hours,))


@pytest.fixture
def ledger_rows(pg_admin: psycopg.Connection) -> Iterator[Ledger]:
    book = Ledger(pg_admin)
    yield book
    book.remove()


@pytest.fixture
def month_held(pg_settings) -> Iterator[Callable[[dt.date], None]]:
    """Hold the aggregates' refresh lock of a dt's month (the lock every refresh takes) on a
    connection of its own, so that refreshes elsewhere on the shared stack (the refresher sensor,
    other runs' Postgres steps) leave the test's pending marks in place while it looks; released
    at the end of the test, or by calling the returned function's .release()."""
    conn = pg_connect.connect("pipeline", autocommit=True)

    def hold(day: dt.date) -> None:
        for key in aggregates._month_lock_keys([day]):
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (aggregates._LOCK_NAMESPACE, key))

    hold.release = lambda: conn.execute("SELECT pg_advisory_unlock_all()")  # type: ignore[attr-defined]
    try:
        yield hold
    finally:
        conn.close()  # ends the session: its advisory locks go with it


def by_hour(body: dict) -> dict[int, dict]:
    return {dt.datetime.fromisoformat(h["landing_hour"]).hour: h for h in body["hours"]}


def test_every_hour_of_the_day_with_its_figures_and_first_difference(
    live_client, payments, new_merchant, ledger_rows: Ledger, month_held, pg_admin
) -> None:
    day = far_day()
    merchant = new_merchant()

    # 03:00 landed an approval; a refund of the same payment landed the next day and replaced it
    # in Postgres (dt of the refund). The hour's record is superseded, not lost.
    pid = f"{merchant}_refunded"
    payments([payment(merchant, payment_id=pid, currency="EUR", status="APPROVED", amount_cents=700, created_at=hour_of(day, 3) + dt.timedelta(minutes=5))])
    payments([payment(merchant, payment_id=pid, currency="EUR", status="REFUNDED", amount_cents=700, created_at=hour_of(day, 3) + dt.timedelta(days=1, hours=2))])
    ledger_rows.hour(hour_of(day, 3), 1, 1, 0, 0, 1, loaded={day + dt.timedelta(days=1): 1}, verified_at=clock(pg_admin))

    # 00:00: 5 lines = 3 curated + 1 quarantined + 1 duplicate, 3 published, loaded and refreshed.
    payments([
        payment(merchant, currency="USD", status="APPROVED", amount_cents=100 * (i + 1), created_at=hour_of(day, 0) + dt.timedelta(minutes=i))
        for i in range(3)
    ])
    ledger_rows.hour(hour_of(day, 0), 5, 3, 1, 1, 3, loaded={day: 3}, verified_at=clock(pg_admin))

    # 01:00: 2 rows loaded by the sink, the aggregates of their dt not refreshed yet. Their
    # marks (made before they were verified) must stay pending while the test reads.
    month_held(day)
    payments([
        payment(merchant, currency="USD", status="DECLINED", amount_cents=50, created_at=hour_of(day, 1) + dt.timedelta(minutes=i))
        for i in range(2)
    ], refresh=False)
    ledger_rows.hour(hour_of(day, 1), 2, 2, 0, 0, 2, loaded={day: 2}, verified_at=clock(pg_admin))

    # 02:00: the broker acknowledged 1 of the 2 curated rows; the Postgres step never ran.
    ledger_rows.hour(hour_of(day, 2), 2, 2, 0, 0, 1)
    # 04:00: counted by raw_payments only (the curation has not run).
    ledger_rows.stage(hour_of(day, 4), "raw_lines", 7)
    # 05:00: everything recorded, but the topic holds an older curation of the hour.
    ledger_rows.hour(hour_of(day, 5), 1, 1, 0, 0)
    ledger_rows.stage(hour_of(day, 5), "published", 1, curation="20400101T000000-00000000")

    r = live_client.get(URL, params={"date": day.isoformat()})
    month_held.release()

    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    as_of = dt.datetime.fromisoformat(body["as_of"])
    assert as_of.utcoffset() == dt.timedelta(0)
    assert (body["date"], body["reconciled"], body["hours_reconciled"]) == (day.isoformat(), False, 2)
    hours = by_hour(body)
    assert [h["landing_hour"] for h in body["hours"]] == [f"{day.isoformat()}T{h:02d}:00:00Z" for h in range(24)]

    def figures(h: dict) -> tuple:
        return tuple(h[k] for k in (*STAGE_COLUMNS, "counted"))

    assert figures(hours[0]) == (5, 3, 1, 1, 3, 3, 3)
    assert (hours[0]["reconciled"], hours[0]["first_difference"], hours[0]["detail"]) == (True, None, None)
    assert hours[0]["curation_run_id"] == CURATION
    assert hours[0]["runs"] == {s: f"run-{s}-00" for s in STAGE_COLUMNS}

    assert figures(hours[1]) == (2, 2, 0, 0, 2, 2, 0)
    assert (hours[1]["reconciled"], hours[1]["first_difference"]) == (False, "counted")
    assert f"counted 0 of 2 loaded" in hours[1]["detail"] and day.isoformat() in hours[1]["detail"]

    assert figures(hours[2]) == (2, 2, 0, 0, 1, None, None)
    assert (hours[2]["first_difference"], hours[2]["detail"]) == ("published", "published 1 != curated 2: 1 curated rows not acknowledged by the broker")

    assert figures(hours[3]) == (1, 1, 0, 0, 1, 1, 1)
    assert hours[3]["reconciled"] is True

    assert figures(hours[4]) == (7, None, None, None, None, None, None)
    assert hours[4]["first_difference"] == "curated" and hours[4]["runs"] == {"raw_lines": "run-raw_lines-04"}

    assert hours[5]["first_difference"] == "published" and "20400101T000000-00000000" in hours[5]["detail"]

    for h in range(6, 24):
        assert figures(hours[h]) == (None,) * 7, h
        assert (hours[h]["reconciled"], hours[h]["first_difference"], hours[h]["curation_run_id"], hours[h]["runs"]) == (False, "raw_lines", None, {})

    # Once the dt is refreshed, 01:00 is counted; 00:00 stayed counted all along (the pending
    # change came after its rows were verified).
    refresh_report_aggregates(pg_admin, [day])
    hours = by_hour(live_client.get(URL, params={"date": day.isoformat()}).json())
    assert figures(hours[1]) == (2, 2, 0, 0, 2, 2, 2) and hours[1]["reconciled"] is True
    assert [h for h in range(24) if hours[h]["reconciled"]] == [0, 1, 3]


def test_the_next_day_lists_its_own_hours_only(live_client, ledger_rows: Ledger, pg_admin) -> None:
    day = far_day()
    # The last hour of the day and the first of the next: each in its own day's answer.
    ledger_rows.hour(hour_of(day, 23), 4, 4, 0, 0, 4, loaded={}, verified_at=clock(pg_admin))
    ledger_rows.stage(hour_of(day + dt.timedelta(days=1), 0), "raw_lines", 9)
    first = by_hour(live_client.get(URL, params={"date": day.isoformat()}).json())
    second = by_hour(live_client.get(URL, params={"date": (day + dt.timedelta(days=1)).isoformat()}).json())
    # 23:00 loaded nothing it verified into a dt: loaded 0 != curated 4 names loaded.
    assert (first[23]["loaded"], first[23]["counted"], first[23]["first_difference"]) == (0, 0, "loaded")
    assert first[0]["raw_lines"] is None
    assert second[0]["raw_lines"] == 9 and second[23]["raw_lines"] is None


def test_a_merchant_scoped_key_gets_403_and_no_figures(live_http: TestClient, api_key) -> None:
    r = live_http.get(URL, params={"date": "2026-11-24"}, headers={"X-API-Key": api_key(["m_0001"])})
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:wallet-lake:problem:all-merchants-key-required"
    assert "hours" not in r.json()
