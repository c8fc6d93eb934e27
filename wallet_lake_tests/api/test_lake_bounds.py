"""source=lake is bounded (DuckDB runs inside the API process): a range of at most
api_lake_max_range_days, a scan of at most api_lake_max_scan_bytes (422 past either), DuckDB's
memory_limit and threads from the settings, and every engine error a 503. Runs DuckDB on a
lake in a temporary folder (pyarrow's local filesystem, a folder LakeStore for the manifests):
no stack needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyarrow import fs as pafs

from api.main import create_app
from api.reports.source import LakeEngines, bounded_lake_config
from api.settings import Settings
from wallet_lake.lake.query import DuckDBLake, LakeQueryConfig, LakeScanTooLarge, LakeUnavailable
from wallet_lake.lake.store import LocalLakeStore
from wallet_lake_tests.lake_support import publish_rows

from .conftest import ALL_MERCHANTS_KEY, OFFLINE_SETTINGS, offline_key_store, payment

DAY = dt.date(2031, 1, 5)
PROBE = "SELECT current_setting('memory_limit') AS memory_limit, current_setting('threads') AS threads, count(*) AS n FROM curated_payments"


def write_partition(lake: Path, day: dt.date, rows: int = 3) -> Path:
    """One published landing hour (10:00 of `day`) holding one file of `rows` rows; its path."""
    created = dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.timezone.utc)
    records = [payment("m_1", currency="EUR", status="APPROVED", amount_cents=i, created_at=created) for i in range(rows)]
    key = publish_rows(LocalLakeStore(lake), created, records)[0]
    return lake / key


def local_lake(lake: Path, **bounds) -> DuckDBLake:
    return DuckDBLake(LakeQueryConfig(engine="duckdb", bucket=str(lake), **bounds), filesystem=pafs.LocalFileSystem(),
                      store=LocalLakeStore(lake))


def lake_app(engine: DuckDBLake, **settings) -> TestClient:
    app = create_app(Settings(**{**OFFLINE_SETTINGS, **settings}), key_store=offline_key_store(), lake_engine=lambda: engine)
    return TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY})


def test_duckdb_runs_with_the_configured_memory_limit_and_threads(tmp_path: Path) -> None:
    write_partition(tmp_path, DAY)
    engine = local_lake(tmp_path, duckdb_memory_limit="256MiB", duckdb_threads=1)
    assert engine.query(PROBE, {}, scan_from=DAY) == [{"memory_limit": "256.0 MiB", "threads": 1, "n": 3}]


def test_the_api_engine_takes_its_bounds_from_the_settings() -> None:
    settings = Settings(**OFFLINE_SETTINGS, api_lake_memory_limit="512MB", api_lake_threads=1, api_lake_max_scan_bytes=12345)
    config = bounded_lake_config(settings, {"WL_LAKE_BUCKET": "wallet-lake"})
    assert (config.duckdb_memory_limit, config.duckdb_threads, config.max_scan_bytes) == ("512MB", 1, 12345)
    # The defaults are bounded too (DuckDB's own would be 80% of RAM and a thread per core).
    d = Settings(**OFFLINE_SETTINGS)
    assert d.api_lake_memory_limit and d.api_lake_threads >= 1 and d.api_lake_max_scan_bytes > 0
    # No settings, no engine: an unbounded DuckDB is never created inside the API.
    with pytest.raises(LakeUnavailable):
        LakeEngines().get()


def test_scan_over_the_byte_bound_is_refused_before_duckdb_runs(tmp_path: Path) -> None:
    size = write_partition(tmp_path, DAY).stat().st_size + write_partition(tmp_path, DAY + dt.timedelta(days=3)).stat().st_size
    assert local_lake(tmp_path, max_scan_bytes=size).query(PROBE, {}, scan_from=DAY)[0]["n"] == 6
    with pytest.raises(LakeScanTooLarge):
        local_lake(tmp_path, max_scan_bytes=size - 1).query(PROBE, {}, scan_from=DAY)
    # The bound counts the partitions from scan_from on only.
    assert local_lake(tmp_path, max_scan_bytes=size - 1).query(PROBE, {}, scan_from=DAY + dt.timedelta(days=1))[0]["n"] == 3


def test_scan_too_large_is_a_422_problem(tmp_path: Path) -> None:
    write_partition(tmp_path, DAY)
    c = lake_app(local_lake(tmp_path, max_scan_bytes=10))
    r = c.get("/reports/daily-recon", params={"date": DAY.isoformat(), "source": "lake"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:wallet-lake:problem:lake-scan-too-large"
    # Within the bound the same request answers.
    ok = lake_app(local_lake(tmp_path, max_scan_bytes=10**9)).get(
        "/reports/daily-recon", params={"date": DAY.isoformat(), "source": "lake"}
    )
    assert ok.status_code == 200 and ok.json()["totals"]


def test_lake_range_over_its_bound_is_422_while_postgres_takes_it(tmp_path: Path) -> None:
    c = lake_app(local_lake(tmp_path), api_lake_max_range_days=7)
    week = {"from": "2031-01-01", "to": "2031-01-07"}
    eight = {"from": "2031-01-01", "to": "2031-01-08"}
    assert c.get("/reports/declines", params={**week, "source": "lake"}).status_code == 200
    r = c.get("/reports/declines", params={**eight, "source": "lake"})
    assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "to" and "source=lake" in r.json()["errors"][0]["message"]
    for url in ("/reports/refund-rate", "/reports/latency"):
        assert c.get(url, params={**eight, "source": "lake"}).status_code == 422
    assert c.get("/reports/declines", params=eight).status_code == 503  # postgres: allowed (no database here)


def test_engine_errors_are_lake_unavailable(tmp_path: Path) -> None:
    write_partition(tmp_path, DAY)
    with pytest.raises(LakeUnavailable, match="BinderException"):
        local_lake(tmp_path).query("SELECT no_such_column FROM curated_payments", {}, scan_from=DAY)
    # Past its memory limit DuckDB fails the query (it cannot spill one huge value): a 503, not a 500.
    with pytest.raises(LakeUnavailable, match="OutOfMemory"):
        local_lake(tmp_path, duckdb_memory_limit="16MB", duckdb_threads=1).query(
            "SELECT list(i) AS l FROM range(50000000) t(i)", {}, scan_from=DAY
        )


def test_unreadable_parquet_is_a_503_problem(tmp_path: Path) -> None:
    bad = write_partition(tmp_path, DAY)
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    r = lake_app(local_lake(tmp_path)).get("/reports/daily-recon", params={"date": DAY.isoformat(), "source": "lake"})
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:wallet-lake:problem:lake-unavailable" and r.headers["retry-after"]
