"""The lake query layer reads only the files the manifests list, on the stack's S3 (moto, a
versioned bucket), through the production write-audit-publish steps (lake/wap.py):

- an orphan Parquet file under a listed partition prefix, and the files of a run whose upload is
  in progress (announced, not swapped), are not counted;
- a file deleted after the query chose its files and before DuckDB read it answers 503 through
  the API, never 500;
- a rewrite of an hour while a query runs shows the old version or the new one, never both: at
  every step of the rewrite, a query whose files were chosen before or after the step answers
  exactly the old hour, exactly the new one, or LakeUnavailable (the old files gone).

Each test owns a landing hour of the 22nd century and a merchant of its own; the query counts the
merchant's curated records, so another test's hours never change its answer."""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from wallet_lake.contracts.landing import CURATED_PREFIX, manifest_key
from wallet_lake.lake import wap
from wallet_lake.lake.query import DuckDBLake, LakeQueryConfig, LakeUnavailable
from wallet_lake_tests.api.conftest import ALL_MERCHANTS_KEY, OFFLINE_SETTINGS, offline_key_store, payment
from wallet_lake_tests.lake_support import far_landing_hour, hour_stats, hour_uploads, publish_rows, write_parquet

pytestmark = pytest.mark.integration

COUNT = "SELECT count(*) AS n, coalesce(sum(amount_cents), 0) AS total FROM curated_payments WHERE merchant_id = %(merchant)s"


class Hour:
    """A landing hour of one merchant's records, all created on one day."""

    def __init__(self, store) -> None:
        self.store = store
        self.landing = far_landing_hour()
        self.day = self.landing.date()
        self.merchant = f"m_{uuid.uuid4().hex[:12]}"
        self.prefix = f"{CURATED_PREFIX}dt={self.day.isoformat()}/merchant_id={self.merchant}/"

    def rows(self, n: int, amount: int) -> list[dict]:
        created = self.landing.replace(minute=5)
        return [payment(self.merchant, payment_id=f"{self.merchant}_{i}", currency="EUR", status="APPROVED",
                        amount_cents=amount, created_at=created) for i in range(n)]

    def answer(self, rows: list[dict]) -> tuple[int, int]:
        return len(rows), sum(r["amount_cents"] for r in rows)


@pytest.fixture
def hour(stack_resources):
    h = Hour(stack_resources["lake"].store())
    yield h
    h.store.delete([o.key for o in h.store.list(h.prefix)] + [manifest_key(h.landing)])


@pytest.fixture
def engine() -> DuckDBLake:
    return DuckDBLake(LakeQueryConfig.from_env())


def counted(engine: DuckDBLake, h: Hour, snapshot=None) -> tuple[int, int]:
    snapshot = snapshot if snapshot is not None else engine.snapshot(h.day)
    row = engine.scan(snapshot, COUNT, {"merchant": h.merchant}, scan_from=h.day)[0]
    return row["n"], row["total"]


def test_an_orphan_and_an_upload_in_progress_under_a_listed_partition_are_not_read(hour, engine, tmp_path):
    v1 = hour.rows(3, amount=1)
    publish_rows(hour.store, hour.landing, v1)
    # An orphan (a dead run's file no manifest names) in the very partition the hour lists.
    hour.store.put_file(f"{hour.prefix}orphan-{uuid.uuid4().hex}.parquet", write_parquet(tmp_path / "orphan.parquet", hour.rows(5, amount=100)))
    # Another run of the hour: announced and uploaded, not swapped in yet.
    v2 = hour.rows(4, amount=10)
    uploads = hour_uploads(hour.landing, v2, "t-in-progress", tmp_path)
    wap.announce(hour.store, hour_stats(hour.landing, uploads, v2, "t-in-progress"), uploads, abandoned_after=dt.timedelta(hours=6))
    assert len(hour.store.list(hour.prefix)) == 3  # listing the partition would read all three files
    assert counted(engine, hour) == hour.answer(v1)


def test_a_file_deleted_after_the_query_chose_its_files_is_a_503_not_a_500(hour):
    keys = publish_rows(hour.store, hour.landing, hour.rows(3, amount=7))
    config = LakeQueryConfig.from_env()

    class DeletesAfterTheSnapshot(DuckDBLake):
        """The lake as a concurrent rerun leaves it: the file goes between the choice and the read."""

        def snapshot(self, scan_from, scan_to=None):
            chosen = super().snapshot(scan_from, scan_to)
            hour.store.delete(keys[:1])
            return chosen

    def get(engine: DuckDBLake):
        app = create_app(Settings(**OFFLINE_SETTINGS), key_store=offline_key_store(), lake_engine=lambda: engine)
        with TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY}) as client:
            return client.get("/reports/daily-recon", params={"date": hour.day.isoformat(), "merchant": hour.merchant, "source": "lake"})

    ok = get(DuckDBLake(config))
    assert ok.status_code == 200 and [(t["currency"], t["count"], t["amount_cents"]) for t in ok.json()["totals"]] == [("EUR", 3, 21)], ok.text
    gone = get(DeletesAfterTheSnapshot(config))
    assert gone.status_code == 503 and gone.headers["content-type"] == "application/problem+json", gone.text
    assert gone.json()["type"] == "urn:wallet-lake:problem:lake-unavailable"


def test_a_rewrite_of_an_hour_mid_query_shows_the_old_or_the_new_version_never_both(hour, engine):
    v1, v2 = hour.rows(3, amount=1), hour.rows(4, amount=10)  # a rerun: the same payments and one more
    old, new = hour.answer(v1), hour.answer(v2)
    publish_rows(hour.store, hour.landing, v1)
    before = engine.snapshot(hour.day)
    with tempfile.TemporaryDirectory() as tmp:
        uploads = hour_uploads(hour.landing, v2, "t-rerun", Path(tmp))
        stats = hour_stats(hour.landing, uploads, v2, "t-rerun")
        announced = wap.announce(hour.store, stats, uploads, abandoned_after=dt.timedelta(hours=6))
        assert counted(engine, hour, before) == old and counted(engine, hour) == old  # uploading: still the old hour
        body, version = wap.swap(hour.store, announced)
    # Swapped, not yet deleted: both versions' files are in the partition; a query reads one.
    assert len(hour.store.list(hour.prefix)) == 2
    assert counted(engine, hour, before) == old
    during = engine.snapshot(hour.day)
    assert counted(engine, hour, during) == new
    wap.delete_superseded(hour.store, stats, body, version)
    assert counted(engine, hour, during) == new and counted(engine, hour) == new
    with pytest.raises(LakeUnavailable):  # the old version's files are gone: no answer rather than a mix
        counted(engine, hour, before)
