"""Write-audit-publish of a landing hour, without Spark: the figures the blocking checks judge
(from hand-built Parquet files), the check predicates, and an hour that fails them keeping its
previous state."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wallet_lake.contracts.landing import manifest_key
from wallet_lake.contracts.schema import CURATED_PARTITION_COLUMNS, CURATED_VERSION, arrow_schema
from wallet_lake.lake import curation_run as cr
from wallet_lake.lake import manifests, wap
from wallet_lake.lake.figures import check_figures
from wallet_lake.lake.reader import current_curated_keys, partition_values
from wallet_lake.transforms import checks
from wallet_lake.lake.store import LocalLakeStore

UTC = timezone.utc
HOUR = datetime(2026, 7, 9, 14, tzinfo=UTC)


def row(pid: str, **over) -> dict:
    r = {
        "payment_id": pid, "user_id": None, "amount_cents": 100, "currency": "EUR", "status": "APPROVED",
        "payment_method": "card", "risk_score": 0.5, "authorized_at": None, "completed_at": None,
        "created_at": datetime(2026, 7, 9, 14, 5, tzinfo=UTC), "source_system": None, "decline_reason": None,
        "hour": 14, "authorized_to_complete_ms": None, "is_approved": True, "is_refunded": False,
        "processed_at": datetime(2026, 7, 9, 15, tzinfo=UTC), "curated_version": CURATED_VERSION,
    }
    r.update(over)
    return r


def write(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    data = pa.schema([f for f in arrow_schema() if f.name not in CURATED_PARTITION_COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or data), path)
    return path


PARTS = {"dt": "2026-07-09", "merchant_id": "m-1"}


def test_figures_of_clean_files_fail_no_check(tmp_path):
    figures, preview = check_figures([(write(tmp_path / "a.parquet", [row("p1"), row("p2")]), PARTS)])
    assert figures["rows"] == 2 and figures["duplicate_payment_ids"] == 0
    assert not figures["schema_errors"] and not figures["out_of_range"] and not figures["bad_currencies"]
    assert [p["payment_id"] for p in preview] == ["p1", "p2"] and preview[0]["dt"] == "2026-07-09"
    stats = {"raw_lines": 2, "curated_rows": 2, "quarantined_rows": 0, "duplicates_removed": 0, "checks": figures}
    assert checks.failed_checks(stats) == {}


def test_duplicates_bad_values_and_created_at_outside_dt_are_found(tmp_path):
    files = [
        (write(tmp_path / "a.parquet", [row("p1"), row("p2", status="SETTLED", currency="eur", hour=24)]), PARTS),
        (write(tmp_path / "b.parquet", [row("p1", amount_cents=-1, risk_score=1.5,
                                            created_at=datetime(2026, 7, 10, 0, 1, tzinfo=UTC))]), PARTS),
    ]
    figures, _ = check_figures(files)
    assert figures["duplicate_payment_ids"] == 1
    assert figures["unaccepted_statuses"] == ["SETTLED"] and figures["bad_currencies"] == ["eur"]
    assert any(s.startswith("amount_cents") for s in figures["out_of_range"])
    assert any(s.startswith("risk_score") for s in figures["out_of_range"])
    assert any(s.startswith("hour") for s in figures["out_of_range"])
    assert any("outside dt=2026-07-09" in s for s in figures["out_of_range"])
    failed = checks.failed_checks({"raw_lines": 3, "curated_rows": 3, "quarantined_rows": 0, "duplicates_removed": 0, "checks": figures})
    assert set(failed) == {checks.UNIQUE, checks.ACCEPTED}


def test_a_nullable_file_schema_or_nulls_in_required_columns_fail(tmp_path):
    loose = pa.schema([f.with_nullable(True) for f in arrow_schema() if f.name not in CURATED_PARTITION_COLUMNS])
    figures, _ = check_figures([(write(tmp_path / "a.parquet", [row("p1"), row(None)], loose), PARTS)])
    assert figures["schema_errors"] and figures["nulls_in_required_columns"] == {"payment_id": 1}
    assert figures["distinct_payment_ids"] == 1  # a null is no id: counted apart, above
    failed = checks.failed_checks({"raw_lines": 2, "curated_rows": 2, "quarantined_rows": 0, "duplicates_removed": 0, "checks": figures})
    assert {checks.SCHEMA, checks.NOT_NULL} <= set(failed)


def test_accounting_fails_when_lines_are_missing():
    failed = checks.failed_checks({"raw_lines": 10, "curated_rows": 7, "quarantined_rows": 1, "duplicates_removed": 1, "checks": {}})
    assert set(failed) == {checks.ACCOUNTING} and "raw 10" in failed[checks.ACCOUNTING]


def test_an_hour_failing_a_blocking_check_is_not_published(tmp_path):
    store = LocalLakeStore(tmp_path / "lake")
    previous = {"landing_hour": HOUR.isoformat(), "curated_keys": ["curated/payments/dt=2026-07-09/merchant_id=m-1/old.parquet"],
                "quarantine_keys": [], "run_id": "old"}
    store.put_bytes(manifest_key(HOUR), json.dumps(previous).encode())
    store.put_bytes(previous["curated_keys"][0], b"old")
    new_file = write(tmp_path / "new.parquet", [row("p1")])
    stats = manifests.HourStats(landing_hour=HOUR.isoformat(), run_id="new", raw_lines=5, curated_rows=1)  # 4 lines unaccounted
    wap.publish_hour(store, stats, [(new_file, "curated/payments/dt=2026-07-09/merchant_id=m-1/new.parquet")])
    assert not stats.published and checks.ACCOUNTING in stats.failed_checks
    assert json.loads(store.get_bytes(manifest_key(HOUR))) == previous
    assert store.get_optional("curated/payments/dt=2026-07-09/merchant_id=m-1/new.parquet") is None
    assert store.get_bytes(previous["curated_keys"][0]) == b"old"


def test_a_publishable_hour_swaps_its_manifest_and_deletes_the_previous_files_and_abandoned_ones(tmp_path):
    store = LocalLakeStore(tmp_path / "lake")
    old_key, abandoned_key = "curated/payments/dt=2026-07-09/merchant_id=m-1/old.parquet", "curated/payments/dt=2026-07-09/merchant_id=m-1/dead.parquet"
    store.put_bytes(old_key, b"old")
    store.put_bytes(abandoned_key, b"dead")
    store.put_bytes(manifest_key(HOUR), json.dumps({
        "curated_keys": [old_key], "quarantine_keys": [],
        "pending": [{"run_id": "crashed", "started_at": "2026-07-01T00:00:00+00:00", "keys": [abandoned_key]}],
    }).encode())
    new_file = write(tmp_path / "new.parquet", [row("p1")])
    figures, _ = check_figures([(new_file, PARTS)])
    new_key = "curated/payments/dt=2026-07-09/merchant_id=m-1/new.parquet"
    stats = manifests.HourStats(landing_hour=HOUR.isoformat(), run_id="new", raw_lines=1, curated_rows=1, checks=figures, curated_keys=[new_key])
    wap.publish_hour(store, stats, [(new_file, new_key)])
    manifest = json.loads(store.get_bytes(manifest_key(HOUR)))
    assert stats.published and manifest["curated_keys"] == [new_key] and manifest["pending"] == []
    assert manifest == {**asdict(stats), "manifest_format": manifests.MANIFEST_FORMAT, "pending": [], "superseded": []}
    assert store.get_optional(old_key) is None and store.get_optional(abandoned_key) is None
    assert current_curated_keys(store) == [new_key]


@pytest.mark.parametrize("bad", ["a/b", "x y", "../x"])
def test_run_ids_must_be_safe_file_name_parts(bad):
    with pytest.raises(ValueError):
        cr.curate_landing_hours(None, LocalLakeStore(Path("/nonexistent")), [HOUR], datetime.now(UTC), run_id=bad)


def test_partition_values_are_unescaped_like_spark_escapes_them():
    assert partition_values("dt=2026-07-09/merchant_id=m%2F1%3Dx") == {"dt": "2026-07-09", "merchant_id": "m/1=x"}
    assert date.fromisoformat(partition_values("dt=2026-07-09/merchant_id=a")["dt"]) == date(2026, 7, 9)
