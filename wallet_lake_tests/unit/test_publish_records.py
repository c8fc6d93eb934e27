"""The payments.curated value: a named, versioned Connect JSON schema and a payload whose
timestamps are exact UTC epoch milliseconds, identical from the row encoder and the Arrow encoder."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from wallet_lake.contracts.schema import CONNECT_SCHEMA_NAME, CONNECT_SCHEMA_VERSION, CURATED_COLUMNS, arrow_schema
from wallet_lake.publish.records import curated_record, curated_records, decode_payload

UTC = timezone.utc


def _row(pid: str, **overrides) -> dict:
    created = datetime(2025, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC)
    row = {
        "payment_id": pid, "merchant_id": "m-1", "user_id": None, "amount_cents": 1234, "currency": "EUR",
        "status": "APPROVED", "payment_method": "card", "risk_score": 0.25, "authorized_at": created - timedelta(seconds=2),
        "completed_at": created, "created_at": created, "source_system": "proc", "decline_reason": 'say "no" – ünïcode\n',
        "dt": date(2025, 6, 30), "hour": 23, "authorized_to_complete_ms": 2000, "is_approved": True, "is_refunded": False,
        "processed_at": datetime(2025, 7, 1, 0, 5, tzinfo=UTC), "curated_version": 1,
    }
    row.update(overrides)
    return row


def test_value_schema_is_named_versioned_and_lists_every_curated_column():
    from wallet_lake.publish.records import SCHEMA_HEADERS, SCHEMA_JSON

    schema = json.loads(SCHEMA_JSON)
    assert (schema["name"], schema["version"], schema["type"]) == (CONNECT_SCHEMA_NAME, CONNECT_SCHEMA_VERSION, "struct")
    assert dict(SCHEMA_HEADERS) == {"schema.name": CONNECT_SCHEMA_NAME.encode(), "schema.version": str(CONNECT_SCHEMA_VERSION).encode()}
    assert [f["field"] for f in schema["fields"]] == list(CURATED_COLUMNS)
    created = next(f for f in schema["fields"] if f["field"] == "created_at")
    assert (created["type"], created["name"]) == ("int64", "org.apache.kafka.connect.data.Timestamp")


def test_timestamps_travel_as_utc_epoch_millis_with_sub_millisecond_digits_floored():
    key, value = curated_record(_row("p-1"))
    payload = json.loads(value)  # the value is the payload; the schema travels in the converter's config
    # 2025-06-30T23:59:59.999999Z -> 1751327999999 ms (computed by hand: 20269 days * 86400000 + 86399999)
    assert payload["created_at"] == 20269 * 86_400_000 + 86_399_999
    assert payload["dt"] == 20269
    assert key == b"p-1"


def test_naive_timestamps_are_read_as_utc_instants():
    aware = curated_record(_row("p-1"))[1]
    naive = curated_record(_row("p-1", created_at=datetime(2025, 6, 30, 23, 59, 59, 999_999), completed_at=datetime(2025, 6, 30, 23, 59, 59, 999_999),
                                authorized_at=datetime(2025, 6, 30, 23, 59, 57, 999_999), processed_at=datetime(2025, 7, 1, 0, 5)))[1]
    assert aware == naive


def test_arrow_encoder_writes_the_same_records_as_the_row_encoder():
    rows = [_row("p-1"), _row("p-2", user_id="u-9", risk_score=None, completed_at=None, authorized_to_complete_ms=None, decline_reason=None, status="PENDING", is_approved=False),
            _row("p-3", risk_score=1.0, amount_cents=0, payment_method=None)]
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    from_arrow = list(curated_records(table, batch_rows=2))
    from_rows = [curated_record(r) for r in rows]
    assert [k for k, _ in from_arrow] == [k for k, _ in from_rows]
    for (_, a), (_, b) in zip(from_arrow, from_rows):
        assert json.loads(a) == json.loads(b)


def test_arrow_encoder_treats_naive_timestamp_columns_as_utc():
    rows = [_row("p-1")]
    naive_schema = pa.schema([pa.field(f.name, pa.timestamp("us") if f.type == pa.timestamp("us", tz="UTC") else f.type) for f in arrow_schema()])
    naive_rows = [{k: (v.replace(tzinfo=None) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]
    got = list(curated_records(pa.Table.from_pylist(naive_rows, schema=naive_schema)))
    assert json.loads(got[0][1]) == json.loads(curated_record(rows[0])[1])


def test_decode_payload_gives_back_utc_instants_and_dates():
    row = _row("p-1")
    p = decode_payload(curated_record(row)[1])
    assert p["created_at"] == datetime(2025, 6, 30, 23, 59, 59, 999_000, tzinfo=UTC)
    assert p["dt"] == date(2025, 6, 30)
    assert p["decline_reason"] == row["decline_reason"]


def test_value_holds_exactly_the_schema_fields_and_nothing_else():
    from wallet_lake.publish.records import SCHEMA_JSON

    _, value = curated_record(_row("p-1"))
    assert list(json.loads(value)) == [f["field"] for f in json.loads(SCHEMA_JSON)["fields"]]
