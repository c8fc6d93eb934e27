"""Kept answers (api/reports/answer_cache.py, migration 0010) and kept latency histograms
(api/reports/kept_histograms.py) on the real Postgres: an answer is reused only while no dt it
read has been written since, whoever wrote it, and every answer equals the one an API keeping
nothing gives at the same moment (its latency reports whole in SQL).

Days are random in 2031-2099 and merchants and payment methods unique, so other tests' rows
never mix in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from wallet_lake.contracts.report_relations import LATENCY_MTD_COLUMNS

from .conftest import NO_RATE_LIMITS, KeyedClient, payment, split_as_of
from .test_report_freshness_pg import at, far_month, new_method

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clients(pg_settings, api_key) -> Iterator[tuple[KeyedClient, KeyedClient, TestClient]]:
    """(an API keeping answers, one keeping none, the first's TestClient for its metrics)."""
    key = {"X-API-Key": api_key()}
    base = {"api_key_cache_ttl_s": 0, **NO_RATE_LIMITS}
    keeping = create_app(pg_settings.model_copy(update={**base, "api_answer_cache_rows": 10_000}))
    # Nothing kept at all: latency reports whole in SQL, against kept histograms in the first.
    keeping_none = create_app(pg_settings.model_copy(update={**base, "api_answer_cache_rows": 0, "api_kept_histogram_days": 0}))
    with TestClient(keeping) as kept, TestClient(keeping_none) as plain:
        yield KeyedClient(kept, key), KeyedClient(plain, key), kept


def reused_count(client: TestClient) -> float:
    registry = client.app.state.metrics.registry
    return registry.get_sample_value("wallet_lake_api_report_answers_total", {"result": "reused"}) or 0.0


class Reports:
    """GETs through both APIs: the kept-answer one's body must equal the plain one's (as_of
    aside, which each reads at its own instant); tells whether the answer was reused."""

    def __init__(self, clients: tuple[KeyedClient, KeyedClient, TestClient]) -> None:
        self.kept, self.plain, self.raw = clients

    def get(self, url: str, params: dict) -> tuple[dict, bool]:
        before = reused_count(self.raw)
        r = self.kept.get(url, params=params)
        assert r.status_code == 200, r.text
        reused = reused_count(self.raw) > before
        p = self.plain.get(url, params=params)
        assert p.status_code == 200, p.text
        _, body = split_as_of(r.json())
        _, plain_body = split_as_of(p.json())
        assert body == plain_body, (url, params)
        return body, reused


def test_an_answer_is_reused_until_a_dt_it_read_is_written(clients, payments, new_merchant) -> None:
    reports = Reports(clients)
    merchant = new_merchant()
    d = far_month() + dt.timedelta(days=10)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=10, created_at=at(d, 1))])
    rng = {"from": d.isoformat(), "to": (d + dt.timedelta(days=2)).isoformat(), "merchant": merchant}

    first, reused = reports.get("/reports/refund-rate", rng)
    assert not reused
    again, reused = reports.get("/reports/refund-rate", rng)
    assert reused and again == first

    # A write to a dt the answer does not read (another month) leaves it kept.
    other = (d + dt.timedelta(days=40)).replace(day=5)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=7, created_at=at(other, 1))])
    assert reports.get("/reports/refund-rate", rng) == (first, True)

    # A refund on the range's last day: read again, and it shows.
    payments([payment(merchant, currency="EUR", status="REFUNDED", amount_cents=3, created_at=at(d + dt.timedelta(days=2), 1))])
    after, reused = reports.get("/reports/refund-rate", rng)
    assert not reused and after != first
    assert reports.get("/reports/refund-rate", rng) == (after, True)


def test_a_hand_fix_to_the_aggregates_is_seen_at_once(clients, pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    """Versions move with any write to a report table, not only the refresh's."""
    reports = Reports(clients)
    merchant = new_merchant()
    d = far_month() + dt.timedelta(days=3)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=10, created_at=at(d, 1))])
    one_day = {"date": d.isoformat(), "merchant": merchant}
    before, _ = reports.get("/reports/daily-recon", one_day)
    assert reports.get("/reports/daily-recon", one_day) == (before, True)

    pg_admin.execute("UPDATE public.report_status_daily SET amount_cents = amount_cents + 1 WHERE merchant_id = %s", [merchant])
    fixed, reused = reports.get("/reports/daily-recon", one_day)
    assert not reused and fixed["totals"] == [{"currency": "EUR", "count": 1, "amount_cents": 11}]

    pg_admin.execute("DELETE FROM public.report_status_daily WHERE merchant_id = %s", [merchant])
    gone, reused = reports.get("/reports/daily-recon", one_day)
    assert not reused and gone["totals"] == []


def test_latency_is_read_again_when_a_day_before_from_in_its_month_changes(clients, pg_admin: psycopg.Connection, payments, new_merchant) -> None:
    """It reads month-to-date histograms from the first of from's month: the day before `from`
    it subtracts is among the dts whose versions it checks."""
    reports = Reports(clients)
    merchant, method = new_merchant(), new_method()
    month = far_month()
    early, d = month + dt.timedelta(days=2), month + dt.timedelta(days=12)
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=10, created_at=at(early, 1), payment_method=method, latency_ms=900),
              payment(merchant, currency="EUR", status="APPROVED", amount_cents=10, created_at=at(d, 1), payment_method=method, latency_ms=40)])
    params = {"from": d.isoformat(), "to": (d + dt.timedelta(days=1)).isoformat(), "payment_method": method}
    first, _ = reports.get("/reports/latency", params)
    assert [m["count"] for m in first["methods"]] == [1]
    assert reports.get("/reports/latency", params) == (first, True)

    # A hand fix to the subtracted day only (a refresh would rewrite every later day too): the
    # 40 ms bucket now cancels out of the range, and the kept answer must not be served.
    columns = ", ".join(LATENCY_MTD_COLUMNS)
    pg_admin.execute(
        f"INSERT INTO public.report_latency_mtd ({columns}) SELECT %(early)s, {columns.split(', ', 1)[1]} "
        "FROM public.report_latency_mtd WHERE dt = %(d)s AND payment_method = %(m)s AND bucket_lo <= 40 AND 40 < bucket_lo + bucket_width",
        {"early": early, "d": d, "m": method},
    )
    try:
        fixed, reused = reports.get("/reports/latency", params)
        assert not reused and fixed != first
    finally:
        pg_admin.execute("DELETE FROM public.report_latency_mtd WHERE dt = %s AND payment_method = %s AND bucket_lo <= 40", [early, method])


def test_an_empty_answer_kept_gives_way_when_data_arrives(clients, payments, new_merchant) -> None:
    reports = Reports(clients)
    merchant = new_merchant()
    d = far_month() + dt.timedelta(days=20)
    params = {"from": d.isoformat(), "to": d.isoformat(), "merchant": merchant}
    empty, _ = reports.get("/reports/declines", params)
    assert reports.get("/reports/declines", params) == (empty, True)
    payments([payment(merchant, currency="EUR", status="DECLINED", amount_cents=4, created_at=at(d, 3))])
    after, reused = reports.get("/reports/declines", params)
    assert not reused and after != empty


def test_truncate_moves_every_version(pg_admin: psycopg.Connection) -> None:
    """TRUNCATE names no rows: every dt's version moves. On a temporary table carrying the
    trigger, in a transaction rolled back, so no report table is locked or emptied; a lock_timeout
    under deadlock_timeout makes this test, never a concurrent refresh, the one to give up."""
    for attempt in range(5):
        try:
            with pg_admin.transaction():
                pg_admin.execute("SET LOCAL lock_timeout = '500ms'")
                pg_admin.execute("CREATE TEMPORARY TABLE truncated_report (dt date) ON COMMIT DROP")
                pg_admin.execute("CREATE TRIGGER report_bump_truncated_versions AFTER TRUNCATE ON truncated_report "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION public.report_bump_versions()")
                # At least one dt with a version, whatever ran before.
                pg_admin.execute("INSERT INTO public.report_aggregate_versions (dt, version) "
                                 "VALUES (%s, nextval('public.report_aggregate_version_seq')) ON CONFLICT (dt) DO NOTHING",
                                 [far_month()])
                before = dict(pg_admin.execute("SELECT dt, version FROM public.report_aggregate_versions").fetchall())
                pg_admin.execute("TRUNCATE truncated_report")
                after = dict(pg_admin.execute("SELECT dt, version FROM public.report_aggregate_versions").fetchall())
                assert after.keys() == before.keys()
                assert all(after[d] != before[d] for d in before)
                raise psycopg.Rollback()
            return
        except psycopg.errors.LockNotAvailable:
            continue  # a refresh held some versions; try again
    pytest.fail("the versions stayed locked by refreshes through 5 attempts")
