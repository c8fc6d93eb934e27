"""Curated rows -> Kafka records of payments.curated (pure, no I/O).

The value is a Kafka Connect JSON envelope (JsonConverter, schemas.enable=true) so the JDBC
sink knows every column's type; timestamps travel as epoch milliseconds with the Connect
Timestamp logical type, dates as days since epoch, keeping their UTC meaning end to end."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

from wallet_lake.contracts.schema import CURATED_FIELDS, connect_value_schema

_EPOCH_DATE = date(1970, 1, 1)
_SCHEMA_JSON = json.dumps(connect_value_schema(), separators=(",", ":"))


def _to_connect(value, logical_type: str):
    if value is None:
        return None
    if logical_type == "timestamp":
        if value.tzinfo is None:  # Arrow/Spark timestamps here are UTC instants
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    if logical_type == "date":
        return (value - _EPOCH_DATE).days
    return value


def curated_record(row: dict) -> tuple[bytes, bytes]:
    """(key, value) bytes for one curated row given as {column: python value}."""
    payload = {f.name: _to_connect(row.get(f.name), f.type) for f in CURATED_FIELDS}
    value = '{"schema":' + _SCHEMA_JSON + ',"payload":' + json.dumps(payload, separators=(",", ":")) + "}"
    return row["payment_id"].encode(), value.encode()


def decode_payload(value: bytes) -> dict:
    """The payload of a payments.curated value, timestamps back to aware datetimes (for checks)."""
    payload = json.loads(value)["payload"]
    for f in CURATED_FIELDS:
        v = payload.get(f.name)
        if v is None:
            continue
        if f.type == "timestamp":
            payload[f.name] = datetime.fromtimestamp(v / 1000, tz=timezone.utc)
        elif f.type == "date":
            payload[f.name] = date.fromordinal(_EPOCH_DATE.toordinal() + v)
    return payload
