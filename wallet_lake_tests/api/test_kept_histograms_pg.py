"""Kept latency histograms (api/reports/kept_histograms.py) on the real Postgres, as the API's
role: a dt's histogram is served only at the version the report read, loaded with its version in
one snapshot, and a dt written in between is told apart (the report then reads again).
The answers themselves are compared with the whole SQL report in test_answer_cache_pg.py."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest

from api.db import Database
from api.reports.answer_cache import VERSION_EPOCH_SQL
from api.reports.kept_histograms import KeptHistograms
from api.reports.latency_histograms import percentiles

from .conftest import payment
from .test_report_freshness_pg import at, far_month, new_method

pytestmark = pytest.mark.integration


def _version(pg_admin: psycopg.Connection, day: dt.date) -> tuple[int, ...]:
    """The dt's version as the API reads it: after the epoch (answer_cache.VERSION_EPOCH_SQL)."""
    row = pg_admin.execute(f"SELECT {VERSION_EPOCH_SQL} || version FROM public.report_aggregate_versions WHERE dt = %s", [day]).fetchone()
    return tuple(row[0])


def _three_payments(payments, new_merchant, day: dt.date) -> tuple[str, str]:
    """Three payments of a new merchant and method on `day`, at 30, 40 and 50 ms: (merchant, method)."""
    merchant, method = new_merchant(), new_method()
    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(day, i), payment_method=method, latency_ms=v)
              for i, v in enumerate((30, 40, 50))])
    return merchant, method


def _on_connection(pg_settings, use):
    """`use(conn)` awaited on a pooled connection of the API's role."""
    async def run():
        database = Database()
        await database.open(pg_settings.model_copy(update={"pg_pool_min_size": 1}), wait=True)
        try:
            async with database.connection() as conn:
                return await use(conn)
        finally:
            await database.close()

    return asyncio.run(run())


def test_a_histogram_is_kept_at_its_version_and_a_moved_dt_is_told_apart(pg_settings, pg_admin, payments, new_merchant) -> None:
    d = far_month() + dt.timedelta(days=4)
    merchant, method = _three_payments(payments, new_merchant, d)
    version = _version(pg_admin, d)
    kept = KeptHistograms(8)

    def ask(store, wanted):
        return _on_connection(pg_settings, lambda conn: store.at_versions(conn, wanted))

    days = ask(kept, {d: version})
    assert percentiles([method], [(1, days[d])])[method] == {"p50": 40.0, "p95": 49.0, "p99": 49.8}
    assert len(kept) == 1
    assert ask(kept, {d: version})[d] is days[d]  # served as kept

    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 9), payment_method=method, latency_ms=60)])
    moved = _version(pg_admin, d)
    assert moved != version
    # A report whose statement read the old version still gets the histogram of its snapshot.
    assert ask(kept, {d: version})[d] is days[d]
    # One that read the new version gets the new histogram, loaded.
    assert percentiles([method], [(1, ask(kept, {d: moved})[d])])[method]["p50"] == 45.0
    # A worker keeping nothing of the dt, asked for the old version, cannot load it any more: it
    # tells the report to read again (and keeps what it loaded, for that next read).
    fresh = KeptHistograms(8)
    assert ask(fresh, {d: version}) is None
    assert percentiles([method], [(1, ask(fresh, {d: moved})[d])])[method]["p50"] == 45.0


def test_percentiles_are_kept_at_their_terms_versions(pg_settings, pg_admin, payments, new_merchant) -> None:
    d = far_month() + dt.timedelta(days=6)
    merchant, method = _three_payments(payments, new_merchant, d)
    version = _version(pg_admin, d)
    counted: list[bool] = []
    kept = KeptHistograms(8, count=counted.append)

    def ask(terms, methods=(method,)):
        return _on_connection(pg_settings, lambda conn: kept.percentiles_at(conn, methods, terms))

    first = ask(((1, d, version),))
    assert first == {method: {"p50": 40.0, "p95": 49.0, "p99": 49.8}} and counted == [False]
    assert ask(((1, d, version),)) is first and counted[-1] is True
    # Another combination of the same dt is computed, not taken for the first: d minus itself is empty.
    assert ask(((-1, d, version), (1, d, version))) == {} and counted[-1] is False
    # Other methods over the same terms are computed too (a method without values is left out).
    assert ask(((1, d, version),), methods=(method, "no-such-method")) == first and counted[-1] is False
    # The same version number in another epoch (a re-created sequence, a restored backup) is
    # another version: neither its histogram nor its percentiles are taken for this one's.
    other_epoch = (version[0] + 1, *version[1:])
    assert ask(((1, d, other_epoch),)) is None and len(counted) == 4

    payments([payment(merchant, currency="EUR", status="APPROVED", amount_cents=1, created_at=at(d, 9), payment_method=method, latency_ms=60)])
    moved = _version(pg_admin, d)
    # The new version: computed from the histogram loaded at it.
    assert ask(((1, d, moved),))[method]["p50"] == 45.0 and counted[-1] is False
    # A report whose statement read the old version gets the percentiles of its snapshot.
    assert ask(((1, d, version),)) is first and counted[-1] is True
    # A dt without a version (no aggregates written yet) is never kept at one.
    empty = d + dt.timedelta(days=1)
    assert ask(((1, empty, None),)) == {}
    assert ask(((1, empty, None),)) == {} and counted[-2:] == [False, False]
    assert counted == [False, True, False, False, False, True, False, False]
