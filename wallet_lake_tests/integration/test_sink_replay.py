"""Replay: publishing a landing hour's records again leaves Postgres exactly as it was, row count
and every value; through the Dagster assets too, where the topic asset replays the hour from the
curated Parquet alone (curated_payments is not run and has no raw data to run on)."""

from __future__ import annotations

import io
import json
import random
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS, TOPIC_PAYMENTS_CURATED
from wallet_lake.contracts.landing import CURATED_PREFIX, hour_token, manifest_key, partition_key_for_hour
from wallet_lake.contracts.schema import arrow_schema
from wallet_lake_tests.ledger_support import forget_hours, ledger_of, record_by_hand
from wallet_lake_tests.integration.sink_support import (
    count_rows, curated_row, delete_rows, ensure_sink_running, fetch_rows, publish_rows, random_day, run_prefix, wait_for_shared_sink,
)

pytestmark = pytest.mark.integration
UTC = timezone.utc
STATUSES = ["APPROVED", "DECLINED", "PENDING", "REFUNDED", "FAILED", "CHARGEBACK", "CANCELLED"]


def _hour_rows(prefix: str, n: int) -> list[dict]:
    day = random_day()
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return [
        curated_row(f"{prefix}{i:05d}", start + timedelta(seconds=7 * i, milliseconds=i % 1000), STATUSES[i % len(STATUSES)],
                    merchant_id=f"merchant-{i % 3}", amount_cents=100 * i + 1, currency=["EUR", "USD", "GBP"][i % 3])
        for i in range(n)
    ]


@pytest.fixture
def prefix(stack_resources):
    p = run_prefix("replay")
    yield p
    delete_rows(stack_resources["postgres"], p)


def test_replaying_an_hour_leaves_row_count_and_every_value_unchanged(stack_resources, prefix):
    res = stack_resources
    ensure_sink_running(res)
    rows = _hour_rows(prefix, 400)
    ids = [r["payment_id"] for r in rows]

    first = publish_rows(res["kafka"], rows)
    wait_for_shared_sink(res, first.end_offsets)
    before = fetch_rows(res["postgres"], ids)
    assert count_rows(res["postgres"], ids) == (400, 400)
    assert {pid: (r["status"], r["amount_cents"], r["created_at"]) for pid, r in before.items()} == {
        r["payment_id"]: (r["status"], r["amount_cents"], r["created_at"]) for r in rows
    }

    again = publish_rows(res["kafka"], rows)
    assert again.messages == 400
    wait_for_shared_sink(res, again.end_offsets)
    assert count_rows(res["postgres"], ids) == (400, 400)
    assert fetch_rows(res["postgres"], ids) == before


# ---------------------------------------------------------------- through Dagster
def _free_landing_hour(store) -> datetime:
    rng = random.Random(time.time_ns())
    for _ in range(50):
        hour = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 30))
        if store.get_optional(manifest_key(hour)) is None:
            return hour
    raise RuntimeError("no landing hour of January 2026 without a curated manifest in 50 tries")


def _write_curated_hour(store, hour: datetime, rows: list[dict]) -> list[str]:
    """The curated Parquet + manifest the curated asset would have written for the hour (the
    lake layout: dt and merchant_id in the path, one file per partition, named after the hour)."""
    token, keys = hour_token(hour), []
    schema = arrow_schema()
    file_schema = pa.schema([f for f in schema if f.name not in ("dt", "merchant_id")])
    for (dt, merchant) in sorted({(r["dt"], r["merchant_id"]) for r in rows}):
        part = [{k: v for k, v in r.items() if k not in ("dt", "merchant_id")} for r in rows if (r["dt"], r["merchant_id"]) == (dt, merchant)]
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(part, schema=file_schema), buf)
        key = f"{CURATED_PREFIX}dt={dt.isoformat()}/merchant_id={merchant}/lh-{token}-000.parquet"
        store.put_bytes(key, buf.getvalue())
        keys.append(key)
    manifest = {"landing_hour": hour.isoformat(), "run_id": f"by-hand-{token}", "curated_rows": len(rows), "curated_keys": keys,
                "quarantine_keys": []}
    store.put_bytes(manifest_key(hour), json.dumps(manifest).encode())
    return keys + [manifest_key(hour)]


def test_topic_asset_replays_an_hour_from_curated_parquet_and_postgres_is_unchanged(stack_resources, prefix):
    from wallet_lake.defs.publish.assets import KEYS_CHECK, payments_curated_topic
    from wallet_lake.defs.serving.assets import RECON_CHECK, postgres_curated_payments

    res = stack_resources
    ensure_sink_running(res)
    store = res["lake"].store()
    hour = _free_landing_hour(store)
    rows = _hour_rows(prefix, 300)
    ids = [r["payment_id"] for r in rows]
    written = _write_curated_hour(store, hour, rows)
    lake_before = {k: store.get_bytes(k) for k in written}
    # The ledger rows raw_payments and curated_payments would have recorded for the hour.
    record_by_hand(res["postgres"], hour, f"by-hand-{hour_token(hour)}", raw_lines=300, curated=300, quarantined=0, duplicates_removed=0)
    pk = partition_key_for_hour(hour)
    resources = {k: res[k] for k in ("lake", "kafka", "postgres", "connect")}
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            snapshots, metadata = [], []
            for _ in range(2):  # the run, then its replay
                result = dg.materialize([payments_curated_topic, postgres_curated_payments], partition_key=pk, resources=resources, instance=instance)
                assert result.success
                by_key = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
                topic_md, pg_md = by_key[dg.AssetKey(TOPIC_PAYMENTS_CURATED)], by_key[dg.AssetKey(TABLE_CURATED_PAYMENTS)]
                checks = result.get_asset_check_evaluations()
                assert [(c.check_name, c.passed) for c in checks] == [(KEYS_CHECK, True), (RECON_CHECK, True)]
                # The replay is published and loaded again from the same curation: the hour still reconciles.
                assert ledger_of(res["postgres"], hour)["published"] == ledger_of(res["postgres"], hour)["loaded"] == (300, f"by-hand-{hour_token(hour)}")
                metadata.append((topic_md, pg_md))
                snapshots.append(fetch_rows(res["postgres"], ids))
        for topic_md, pg_md in metadata:
            assert topic_md["messages"].value == 300 and topic_md["bytes"].value > 300 * 300  # ~500-byte values (20 fields)
            offsets = topic_md["end_offsets"].value
            assert offsets and all(int(o) > 0 for o in offsets.values())
            # The Postgres asset waited for exactly the offsets this run's publish recorded.
            assert pg_md["offsets_source"].value == "publish"
            assert {int(p): o for p, o in pg_md["sink_target_offsets"].value.items()} == {int(p): o for p, o in offsets.items()}
            assert pg_md["rows_verified"].value == 300
        assert metadata[1][0]["end_offsets"].value != metadata[0][0]["end_offsets"].value  # really published again
        assert count_rows(res["postgres"], ids) == (300, 300)
        assert snapshots[0] == snapshots[1]
        assert {pid: r["status"] for pid, r in snapshots[1].items()} == {r["payment_id"]: r["status"] for r in rows}
        assert {k: store.get_bytes(k) for k in written} == lake_before  # curated data untouched
    finally:
        store.delete(written)
        forget_hours(res["postgres"], [hour])
