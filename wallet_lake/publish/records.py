"""Curated rows -> Kafka records of payments.curated (pure, no I/O).

The value is the curated record as JSON, typed by the named, versioned Connect schema of
contracts.schema (`SCHEMA_JSON`). The schema is not embedded in every value: the sink's
JsonConverter (schemas.enable=true) takes it once from its `schema.content` setting (Kafka >= 4.2,
KIP-1054; rendered by serving.deploy from the same contract), and every record names it in its
headers (`SCHEMA_HEADERS`) for other consumers. An embedded schema made each value ~2 KB, 70 % of
it the schema, and parsing it was a third of the sink's CPU (docs/benchmarks.md). Timestamps
travel as epoch milliseconds with the Connect Timestamp logical type and dates as days since
epoch, so they keep their UTC meaning end to end. Connect timestamps have millisecond
precision: sub-millisecond digits of a curated timestamp are dropped (floor).

Two encoders produce the same JSON: `curated_record` for one row given as a dict (tests,
hand-built rows) and `curated_records` for an Arrow table (the topic asset), which serializes
in DuckDB's vectorized engine, since per-row json.dumps would cost more than the producer itself.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

from wallet_lake.contracts.schema import CURATED_FIELDS, connect_value_schema

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(1970, 1, 1)
_MS = timedelta(milliseconds=1)
_SCHEMA = connect_value_schema()
SCHEMA_JSON = json.dumps(_SCHEMA, separators=(",", ":"))
# Headers of every record: the schema's name and version (the value holds only the payload).
SCHEMA_HEADERS = [("schema.name", _SCHEMA["name"].encode()), ("schema.version", str(_SCHEMA["version"]).encode())]


def epoch_millis(value: datetime) -> int:
    """Exact epoch milliseconds (integer arithmetic: `timestamp() * 1000` rounds through a float
    and can land one millisecond off). Naive datetimes are UTC instants (as Arrow gives them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - _EPOCH) // _MS


def _to_connect(value, logical_type: str):
    if value is None:
        return None
    if logical_type == "timestamp":
        return epoch_millis(value)
    if logical_type == "date":
        return (value - _EPOCH_DATE).days
    return value


def curated_record(row: dict) -> tuple[bytes, bytes]:
    """(key, value) bytes for one curated row given as {column: python value}."""
    payload = {f.name: _to_connect(row.get(f.name), f.type) for f in CURATED_FIELDS}
    return row["payment_id"].encode(), json.dumps(payload, separators=(",", ":")).encode()


_DUCKDB_TYPES = {
    "string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "float64": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ", "date": "DATE",
}


def _payload_expr(f) -> str:
    col = f'CAST("{f.name}" AS {_DUCKDB_TYPES[f.type]})'
    if f.type == "timestamp":
        # Floor to milliseconds like epoch_millis (DuckDB's epoch_ms rounds: .9995 s would
        # become the next second, possibly the next day, unlike the row's dt).
        us = f"epoch_us({col})"
        col = f"(CASE WHEN {us} >= 0 THEN {us} // 1000 ELSE -((999 - {us}) // 1000) END)"
    elif f.type == "date":
        col = f"({col} - DATE '1970-01-01')"
    return f"'{f.name}': {col}"


def _records_sql(relation: str) -> str:
    payload = ", ".join(_payload_expr(f) for f in CURATED_FIELDS)
    return (
        # encode(): UTF-8 bytes as they are (a CAST to BLOB would read backslashes as escapes).
        f"SELECT encode(payment_id) AS k, "
        f"encode(CAST(to_json({{{payload}}}) AS VARCHAR)) AS v FROM {relation}"
    )


def curated_records(table, batch_rows: int = 50_000) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) bytes for every row of a curated Arrow table, in table order, streamed in
    batches so a million-row hour never holds all its values in Python at once."""
    import duckdb

    missing = [f.name for f in CURATED_FIELDS if f.name not in table.column_names]
    if missing:
        raise ValueError(f"curated table lacks columns {missing}")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC instants, never local time
        con.register("curated", table)
        for batch in con.sql(_records_sql("curated")).to_arrow_reader(batch_rows):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist())
    finally:
        con.close()


def decode_payload(value: bytes) -> dict:
    """The payload of a payments.curated value, timestamps back to aware datetimes (for checks)."""
    payload = json.loads(value)
    for f in CURATED_FIELDS:
        v = payload.get(f.name)
        if v is None:
            continue
        if f.type == "timestamp":
            payload[f.name] = _EPOCH + v * _MS
        elif f.type == "date":
            payload[f.name] = date.fromordinal(_EPOCH_DATE.toordinal() + v)
    return payload
