"""End to end: one generated landing hour through S3 -> Dagster/Spark -> Parquet -> Kafka ->
Connect -> Postgres -> API, every output compared with an independent recomputation."""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from wallet_lake_tests.e2e.expected import daily_recon, expected_hour

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def _consume_between(kafka, start: dict[int, int], end: dict[int, int]) -> list[tuple[str, bytes]]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**kafka.client_config(), "group.id": f"t-e2e-{time.time_ns()}", "enable.auto.commit": False})
    c.assign([TopicPartition(kafka.topic, p, start.get(p, 0)) for p in end])
    want = sum(end[p] - start.get(p, 0) for p in end)
    out, deadline = [], time.monotonic() + 60
    while len(out) < want and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        if msg.offset() < end[msg.partition()]:
            out.append((msg.key().decode(), msg.value()))
    c.close()
    assert len(out) == want, f"consumed {len(out)} of {want} messages"
    return out


def test_generated_hour_matches_independent_recomputation_at_every_stage(stack_resources, full_flow):
    lake, kafka, pg = stack_resources["lake"], stack_resources["kafka"], stack_resources["postgres"]
    # 1. The processor landed an hour (the generator CLI writes it to S3 with SSE-KMS), and
    # 2. Dagster materialized the partition through every asset (real code location, real
    #    instance, `dagster asset materialize`): the shared full flow (wallet_lake_tests/full_flow.py).
    hour, pk, lines = full_flow.hour, full_flow.partition, full_flow.lines
    store = lake.store()
    generated = [line for k in full_flow.raw_keys if k != full_flow.probe_key for line in full_flow.lines_by_key[k]]
    _, generated_bad, generated_dups = expected_hour(generated)
    assert generated_bad > 0 and generated_dups > 0, "the generated sample must exercise quarantine and dedupe"
    expected, bad, dups = expected_hour(lines)  # with the flow's one line that is not JSON
    before, after = full_flow.watermarks_before, full_flow.watermarks_after

    # 3. Parquet in the lake: exactly the surviving events, one row each.
    manifest = json.loads(store.get_bytes(f"_manifests/curated/payments/{hour:%Y%m%dT%H}.json"))
    assert manifest["raw_lines"] == len(lines)
    assert manifest["quarantined_rows"] == bad
    assert manifest["duplicates_removed"] == dups
    parquet_rows = {}
    with tempfile.TemporaryDirectory() as d:
        for i, key in enumerate(manifest["curated_keys"]):
            _, _, dt_part, m_part, _ = key.split("/")
            assert key.startswith("curated/payments/dt=")
            store.download(key, Path(d) / f"{i}.parquet")
            for r in pq.read_table(Path(d) / f"{i}.parquet").to_pylist():
                assert r["payment_id"] not in parquet_rows, f"duplicate {r['payment_id']} in Parquet"
                r["dt"], r["merchant_id"] = dt_part.split("=")[1], m_part.split("=")[1]
                parquet_rows[r["payment_id"]] = r
    assert set(parquet_rows) == set(expected)
    for pid, e in expected.items():
        r = parquet_rows[pid]
        assert (r["status"], r["amount_cents"], r["currency"], r["merchant_id"]) == (e["status"], e["amount_cents"], e["currency"], e["merchant_id"]), pid
        assert r["created_at"] == e["created_at"] and r["dt"] == e["dt"].isoformat() and r["hour"] == e["hour"], pid
        assert r["authorized_to_complete_ms"] == e["authorized_to_complete_ms"], pid

    # 4. Kafka: the messages this run published, consumed back: one per surviving payment.
    from wallet_lake.publish.records import decode_payload

    messages = _consume_between(kafka, before, after)
    assert sorted(k for k, _ in messages) == sorted(expected)
    for key, value in messages:
        p, e = decode_payload(value), expected[key]
        assert (p["payment_id"], p["status"], p["amount_cents"], p["created_at"], p["dt"]) == (key, e["status"], e["amount_cents"], e["created_at"], e["dt"])

    # 5. Postgres (filled by the Connect sink): the same rows, timestamps as UTC instants.
    with pg.connect() as conn:
        db_rows = {
            r[0]: r
            for r in conn.execute(
                "SELECT payment_id, merchant_id, status, amount_cents, currency, created_at, dt, hour, authorized_to_complete_ms, decline_reason "
                "FROM curated_payments WHERE payment_id = ANY(%s)",
                (list(expected),),
            ).fetchall()
        }
    assert set(db_rows) == set(expected)
    for pid, e in expected.items():
        assert db_rows[pid][1:] == (
            e["merchant_id"], e["status"], e["amount_cents"], e["currency"], e["created_at"], e["dt"], e["hour"],
            e["authorized_to_complete_ms"], e["decline_reason"],
        ), pid

    # 6. The API's reports for every (dt, merchant) the hour touched, with an all-merchant key.
    from api.keys import create_key
    from api.main import create_app
    from api.settings import load_settings
    from wallet_lake_tests.api.conftest import NO_RATE_LIMITS
    rows = list(expected.values())
    # The reports read per-dt aggregates, which the Postgres asset refreshed for exactly the dts
    # of its hour's rows (nothing here refreshes them).
    import dagster as dg

    from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS

    with dg.DagsterInstance.get() as instance:
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(TABLE_CURATED_PAYMENTS), asset_partitions=[pk]), limit=1
        ).records[0]
    refreshed = record.asset_materialization.metadata["aggregates_refreshed_dts"].value
    assert {r["dt"].isoformat() for r in rows} <= set(refreshed), refreshed

    # 7. The pipeline ledger of the hour equals the recomputation from the NDJSON at every stage:
    #    the Postgres step's check (recorded for the hour's partition) and its metadata, then the API.
    ledger_want = {"raw_lines": len(lines), "curated": len(expected), "quarantined": bad, "duplicates_removed": dups,
                   "published": len(expected), "loaded": len(expected), "counted": len(expected)}
    with dg.DagsterInstance.get() as instance:
        check_key = dg.AssetCheckKey(dg.AssetKey(TABLE_CURATED_PAYMENTS), "pipeline_reconciled")
        checked = [e for e in instance.event_log_storage.get_asset_check_execution_history(check_key, limit=200) if e.run_id == record.run_id]
    assert [(e.partition, e.status.value) for e in checked] == [(pk, "SUCCEEDED")]
    evaluation = checked[0].event.dagster_event.event_specific_data
    assert evaluation.passed and {k: evaluation.metadata[k].value for k in ledger_want} == ledger_want
    per_hour = record.asset_materialization.metadata["pipeline_recon"].value[hour.isoformat()]
    assert {k: per_hour[k] for k in ledger_want} == ledger_want and per_hour["reconciled"] is True

    with pg.connect() as conn:
        key_id, key = create_key(conn, merchant_ids=None, label="e2e")
    try:
        # The checks ask every report for every merchant from one client in a few seconds: a
        # real client would be throttled (api/ratelimit.py, tested on its own); these apps are not.
        settings = load_settings().model_copy(update=NO_RATE_LIMITS)
        _check_reports(create_app(settings), key, rows)
        _check_ledger(create_app(settings), key, hour, ledger_want, manifest["run_id"])
    finally:
        with pg.connect() as conn:
            conn.execute("DELETE FROM api_keys WHERE key_id = %s", (key_id,))


def _check_ledger(app, key: str, hour: datetime, want: dict, curation_run_id: str) -> None:
    """GET /reports/pipeline-recon for the hour's day: the hour reconciled with the expected figures."""
    from fastapi.testclient import TestClient

    with TestClient(app, headers={"X-API-Key": key}) as client:
        resp = client.get("/reports/pipeline-recon", params={"date": hour.date().isoformat()})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["hours"]) == 24
    line = next(h for h in body["hours"] if h["landing_hour"] == hour.strftime("%Y-%m-%dT%H:00:00Z"))
    assert {k: line[k] for k in want} == want
    assert (line["reconciled"], line["first_difference"], line["detail"], line["curation_run_id"]) == (True, None, None, curation_run_id)


def _percentile_cont(values: list[int], p: float) -> tuple[float, int]:
    """(percentile_cont, the larger of the two values it interpolates between)."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo, hi = int(h), min(int(h) + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo]), xs[hi]


def _check_reports(app, key: str, rows: list[dict]) -> None:
    """daily-recon per (dt, merchant), refund-rate and declines per merchant and latency per method
    over the hour's dts, against the same independent recomputation (the hour's day and its
    neighbours hold no other rows: full_flow.free_hour)."""
    from fastapi.testclient import TestClient

    from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR

    first, last = min(r["dt"] for r in rows), max(r["dt"] for r in rows)
    span = {"from": first.isoformat(), "to": last.isoformat()}
    with TestClient(app, headers={"X-API-Key": key}) as client:
        for merchant in sorted({r["merchant_id"] for r in rows}):
            mine = [r for r in rows if r["merchant_id"] == merchant]
            captured = [r for r in mine if r["status"] in ("APPROVED", "REFUNDED", "CHARGEBACK")]
            refunds = client.get("/reports/refund-rate", params={**span, "merchant": merchant}).json()
            assert refunds["captured_count"] == len(captured), merchant
            assert refunds["refunded_count"] == sum(r["status"] == "REFUNDED" for r in mine), merchant
            assert refunds["chargeback_count"] == sum(r["status"] == "CHARGEBACK" for r in mine), merchant
            declined = [r for r in mine if r["status"] == "DECLINED"]
            declines = client.get("/reports/declines", params={**span, "merchant": merchant}).json()
            assert (declines["payment_count"], declines["declined_count"]) == (len(mine), len(declined)), merchant
            reasons: dict = defaultdict(int)
            for r in declined:
                reasons[r["decline_reason"] or "unknown"] += 1
            assert {x["decline_reason"]: x["count"] for x in declines["by_reason"]} == reasons, merchant
        latency = client.get("/reports/latency", params=span).json()
        by_method: dict = defaultdict(list)
        for r in rows:
            if r["authorized_to_complete_ms"] is not None:
                by_method[r["payment_method"] or "unknown"].append(r["authorized_to_complete_ms"])
        assert {m["payment_method"]: m["count"] for m in latency["methods"]} == {k: len(v) for k, v in by_method.items()}
        for m in latency["methods"]:
            values = by_method[m["payment_method"]]
            assert m["max_ms"] == max(values) and m["mean_ms"] == round(sum(values) / len(values), 3)
            for label, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
                exact, upper = _percentile_cont(values, p)
                assert abs(m[label] - exact) <= LATENCY_RELATIVE_ERROR * upper + 0.001, (m["payment_method"], label)
        for dt, merchant in sorted({(r["dt"], r["merchant_id"]) for r in rows}):
            resp = client.get("/reports/daily-recon", params={"date": dt.isoformat(), "merchant": merchant})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            want = daily_recon(rows, dt, merchant)
            got_status = {(x["currency"], x["status"]): (x["count"], int(x["amount_cents"])) for x in body["by_status"]}
            got_totals = {x["currency"]: (x["count"], int(x["amount_cents"])) for x in body["totals"]}
            assert got_status == want["by_status"], (dt, merchant)
            assert got_totals == want["totals"], (dt, merchant)
