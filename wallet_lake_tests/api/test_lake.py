"""The lake fallback (source=lake): SQL composition for DuckDB and Athena, and, on the real stack,
the same hand-built rows seeded into Postgres (through the sink's upsert) and into the lake (as
Parquet under curated/payments/dt=/merchant_id=, published with a manifest per landing hour,
SSE-KMS) giving the same answers for all four reports."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from fastapi.testclient import TestClient

from api.reports.sql import LATENCY, REPORT_QUERIES
from wallet_lake.lake.query import AthenaLake, LakeQueryConfig, compose
from wallet_lake.sql_placeholders import to_duckdb
from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR
from wallet_lake_tests.lake_support import far_landing_hour, publish_rows

from .conftest import payment, split_as_of

UTC = dt.timezone.utc


# --- composition (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REPORT_QUERIES))
def test_every_report_composes_over_the_lake_relations(name: str) -> None:
    sql = compose(REPORT_QUERIES[name].sql, "SELECT * FROM somewhere")
    assert sql.startswith("WITH curated_payments AS (")
    for relation in ("curated_payments_latest AS", "report_status_daily AS", "report_status_daily_all AS", "report_latency_daily AS"):
        assert relation in sql
    assert sql.count("WITH ") == 1  # a report's own CTEs continue the list
    assert "%(" not in to_duckdb(sql)


def test_athena_sql_renders_through_pyathena_and_runs_on_a_trino_like_table() -> None:
    """pyathena's own formatter renders the composed statement (no stray %), and the result runs
    on DuckDB against a table shaped like the Glue table (dt as a string partition, Athena's
    "$path"): only the files the manifests list are read, an orphan under the same partition is not."""
    import duckdb
    from pyathena.formatter import DefaultParameterFormatter

    from wallet_lake.lake.query import LakeSnapshot
    from wallet_lake.lake.reader import CuratedFile

    athena = AthenaLake(LakeQueryConfig(engine="athena", bucket="b", athena_output="s3://b/athena/", athena_database="wallet_db"))
    listed = "curated/payments/dt=2031-01-01/merchant_id=m%2F1/lh-20310101T10-run-000.parquet"
    paths = athena.file_paths(LakeSnapshot((CuratedFile(listed, dt.date(2031, 1, 1), 10),)))
    assert paths == [f"s3://b/{listed}"] and athena.file_paths(LakeSnapshot(())) == [""]  # IN () is not SQL
    sql = DefaultParameterFormatter().format(
        athena.composed(LATENCY.sql),
        {**LATENCY.bind(date_from=dt.date(2031, 1, 1), date_to=dt.date(2031, 1, 2), month_from=dt.date(2031, 1, 1)),
         "lake_scan_from": "2031-01-01", "lake_files": paths},
    )
    assert '"wallet_db"."curated_payments"' in sql and "dt >= '2031-01-01'" in sql and f"\"$path\" IN ('s3://b/{listed}')" in sql
    con = duckdb.connect()
    con.execute("CREATE SCHEMA wallet_db")
    cols = ", ".join(f"{c} VARCHAR" if c == "dt" else f"{c} {t}" for c, t in _duck_types().items())
    con.execute(f'CREATE TABLE wallet_db.curated_payments ({cols}, "$path" VARCHAR)')
    for pid, path, latency in (("p1", paths[0], 250), ("p2", "s3://b/curated/payments/dt=2031-01-01/merchant_id=m%2F1/orphan.parquet", 9999)):
        con.execute(
            "INSERT INTO wallet_db.curated_payments (payment_id, merchant_id, amount_cents, currency, status, payment_method,"
            " created_at, dt, hour, authorized_to_complete_ms, is_approved, is_refunded, processed_at, curated_version, \"$path\")"
            " VALUES (?, 'm', 1, 'EUR', 'APPROVED', 'card', TIMESTAMPTZ '2031-01-01 10:00:00+00', '2031-01-01', 10, ?, true,"
            " false, now(), 1, ?)", [pid, latency, path],
        )
    rows = con.execute(sql).fetchall()  # the totals, and the histogram rows of the terms (sql.LATENCY)
    assert [r[:5] for r in rows if r[0] == "total"] == [("total", "card", 1, 250, 250)]
    assert [(r[1], r[2], r[9], r[4]) for r in rows if r[0] == "bucket"] == [("card", 1, 250, 250)]  # not the orphan's 9999


def _duck_types() -> dict[str, str]:
    mapping = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "float64": "DOUBLE", "boolean": "BOOLEAN",
               "timestamp": "TIMESTAMPTZ", "date": "DATE"}
    from wallet_lake.contracts.schema import CURATED_FIELDS

    return {f.name: mapping[f.type] for f in CURATED_FIELDS}


def test_lake_unavailable_is_a_503_problem(client: TestClient) -> None:
    r = client.get("/reports/declines", params={"from": "2031-01-01", "to": "2031-01-02", "source": "lake"})
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("lake-unavailable")


# --- Postgres and the lake agree (real stack) -------------------------------------------------


def far_day() -> dt.date:
    return dt.date(2031, 1, 1) + dt.timedelta(days=random.Random(uuid.uuid4().int).randrange(68 * 365))


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def hand_built_rows(merchants: list[str], method: str, start: dt.date) -> tuple[list[dict], list[list[dict]]]:
    """(records in arrival order, the same records grouped by the landing hour that wrote them)."""
    rng = random.Random(5)
    hours: list[list[dict]] = [[] for _ in range(4)]
    for i in range(600):
        merchant = merchants[i % len(merchants)]
        day = start + dt.timedelta(days=i % 4)
        status = rng.choice(["APPROVED"] * 5 + ["DECLINED", "PENDING", "FAILED", "CANCELLED", "CHARGEBACK"])
        reason = rng.choice([None, "", "do_not_honor", "suspected_fraud"]) if status == "DECLINED" else None
        latency = rng.choice([None, int(rng.lognormvariate(6.8, 0.9))]) if status != "DECLINED" else None
        row = payment(
            merchant, payment_id=f"{merchant}_{i}", currency=rng.choice(["EUR", "USD", "JPY"]), status=status,
            amount_cents=rng.randrange(0, 10**6), created_at=at(day, i % 24, i % 60), payment_method=rng.choice([method, None]),
            decline_reason=reason, latency_ms=latency,
        )
        hours[i % 4].append(row)
        # Some payments are refunded days later: a second record in a later landing hour.
        if status == "APPROVED" and i % 7 == 0:
            later = dict(row, status="REFUNDED", created_at=row["created_at"] + dt.timedelta(days=2, hours=1), is_approved=False, is_refunded=True)
            later["dt"], later["hour"] = later["created_at"].date(), later["created_at"].hour
            hours[3].append(later)
    return [r for h in hours for r in h], hours


def write_lake(store, hours: list[list[dict]], tag: str) -> list[str]:
    """Each group of rows published as one landing hour (consecutive far hours), as the curated
    job and its write-audit-publish leave them: the query layer reads only files a manifest
    lists. The keys to delete afterwards, manifests included."""
    first = far_landing_hour()
    keys: list[str] = []
    for h, rows in enumerate(hours):
        keys += publish_rows(store, first + dt.timedelta(hours=h), rows, run_id=f"test-{tag}-{h}")
    return keys


def assert_same(pg: dict, lake: dict) -> None:
    """Equal answers; percentiles within the documented bound of each other. as_of differs (the
    time of each read); both are checked to be UTC instants."""
    pg, lake = split_as_of(pg)[1], split_as_of(lake)[1]
    if "methods" in pg:
        assert [m["payment_method"] for m in pg["methods"]] == [m["payment_method"] for m in lake["methods"]]
        for a, b in zip(pg["methods"], lake["methods"]):
            for k in ("count", "mean_ms", "max_ms"):
                assert a[k] == b[k], k
            for k in ("p50_ms", "p95_ms", "p99_ms"):
                assert abs(a[k] - b[k]) <= 2 * LATENCY_RELATIVE_ERROR * max(a[k], b[k]) + 0.001, (k, a[k], b[k])
        return
    assert pg == lake


@pytest.mark.integration
def test_postgres_and_lake_answer_alike(live_client: TestClient, payments, new_merchant) -> None:
    from wallet_lake.lake.store import open_lake_from_env

    merchants = [new_merchant(), new_merchant()]
    method = f"t_{uuid.uuid4().hex[:12]}"
    start = far_day()
    records, hours = hand_built_rows(merchants, method, start)
    for hour in hours:  # the sink sees the landing hours in order
        payments(hour)
    store = open_lake_from_env()
    keys = write_lake(store, hours, uuid.uuid4().hex[:8])
    try:
        end = start + dt.timedelta(days=6)
        requests = [("/reports/latency", {"from": start.isoformat(), "to": end.isoformat(), "payment_method": method})]
        for m in merchants:
            requests += [
                ("/reports/refund-rate", {"from": start.isoformat(), "to": end.isoformat(), "merchant": m}),
                ("/reports/declines", {"from": start.isoformat(), "to": end.isoformat(), "merchant": m}),
                ("/reports/refund-rate", {"from": (start + dt.timedelta(days=1)).isoformat(), "to": (start + dt.timedelta(days=2)).isoformat(), "merchant": m}),
            ]
            requests += [("/reports/daily-recon", {"date": (start + dt.timedelta(days=i)).isoformat(), "merchant": m}) for i in range(6)]
        requests.append(("/reports/daily-recon", {"date": start.isoformat()}))  # every merchant (a far day: only ours)
        for url, params in requests:
            pg = live_client.get(url, params=params)
            lake = live_client.get(url, params={**params, "source": "lake"})
            assert pg.status_code == lake.status_code == 200, (url, params, pg.text, lake.text)
            assert_same(pg.json(), lake.json())
        # The comparison is not vacuous: refunds moved, every report has data.
        pg_refunds = live_client.get("/reports/refund-rate", params={"from": start.isoformat(), "to": end.isoformat(), "merchant": merchants[0]}).json()
        assert pg_refunds["refunded_count"] > 0 and pg_refunds["captured_count"] > 0
        assert sum(1 for r in records if r["status"] == "REFUNDED") > 0
    finally:
        store.delete(keys)


def test_latest_view_keeps_the_record_the_dedupe_rule_keeps() -> None:
    """Latest created_at wins; on a tie the later lifecycle state; then the content, before the
    time of curation (contracts.ordering.LATEST_FIRST)."""
    import duckdb

    from wallet_lake.lake.views import LATEST_VIEW_SQL

    t0 = dt.datetime(2031, 3, 1, 10, tzinfo=UTC)
    later = t0 + dt.timedelta(days=2)
    rows = [
        # p1: APPROVED, refunded two days later -> REFUNDED (latest created_at), even if curated earlier.
        dict(payment_id="p1", status="APPROVED", created_at=t0, processed_at=later),
        dict(payment_id="p1", status="REFUNDED", created_at=later, processed_at=t0),
        # p2: same instant, PENDING vs DECLINED -> DECLINED (later lifecycle state).
        dict(payment_id="p2", status="DECLINED", created_at=t0, processed_at=t0),
        dict(payment_id="p2", status="PENDING", created_at=t0, processed_at=later),
        # p3: same instant and rank, other content -> the greater amount, although curated earlier.
        dict(payment_id="p3", status="APPROVED", created_at=t0, processed_at=later, amount_cents=1),
        dict(payment_id="p3", status="APPROVED", created_at=t0, processed_at=t0, amount_cents=2),
        # p4: same content -> the later curation run.
        dict(payment_id="p4", status="APPROVED", created_at=t0, processed_at=t0, amount_cents=3, curated_version=2),
        dict(payment_id="p4", status="APPROVED", created_at=t0, processed_at=later, amount_cents=3, curated_version=2),
    ]
    con = duckdb.connect()
    cols = ", ".join(f"{c} {t}" for c, t in _duck_types().items())
    con.execute(f"CREATE TABLE curated_payments ({cols})")
    for r in rows:
        full = {"merchant_id": "m", "amount_cents": 0, "currency": "EUR", "dt": r["created_at"].date(), "hour": 10,
                "is_approved": False, "is_refunded": False, "curated_version": 1, **r}
        names = ", ".join(full)
        con.execute(f"INSERT INTO curated_payments ({names}) VALUES ({', '.join('?' for _ in full)})", list(full.values()))
    got = {pid: (status, amount) for pid, status, amount in con.execute(
        f"SELECT payment_id, status, amount_cents FROM ({LATEST_VIEW_SQL})").fetchall()}
    assert got == {"p1": ("REFUNDED", 0), "p2": ("DECLINED", 0), "p3": ("APPROVED", 2), "p4": ("APPROVED", 3)}
    assert con.execute(f"SELECT processed_at FROM ({LATEST_VIEW_SQL}) WHERE payment_id = 'p4'").fetchone()[0] == later
