"""The raw, curated and quarantine record contracts, declared once and rendered for every reader.

Each field has one logical type; renderers turn the list into a Spark StructType (the transform
and the Glue job), a Kafka Connect JSON schema (the topic value the JDBC sink reads), Postgres
column types (checked against the migrations by a test), Arrow types (lake readers) and Hive
types (the Glue catalog, lake/catalog.py).
Imports of pyspark/pyarrow are local so the API can import this module without them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# string_array: a list of non-null strings (the quarantine's reasons); Spark, Arrow and Hive only.
LogicalType = Literal["string", "int64", "int32", "float64", "boolean", "timestamp", "date", "string_array"]

# Bump whenever a curation rule changes: every curated row records the version that made it.
# 2: dedupe by contracts.ordering.LATEST_FIRST (created_at to the ms, content before raw line
#    order); risk_score -0.0 stored as 0.0.
CURATED_VERSION = 2

# Name and version of the Kafka Connect schema of the payments.curated value.
CONNECT_SCHEMA_NAME = "io.walletlake.payments.CuratedPayment"
CONNECT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Field:
    name: str
    type: LogicalType
    nullable: bool
    doc: str


RAW_FIELDS: tuple[Field, ...] = (
    Field("payment_id", "string", False, "Processor's payment identifier; the dedupe and upsert key."),
    Field("merchant_id", "string", False, "Merchant the payment belongs to."),
    Field("user_id", "string", True, "Paying user."),
    Field("amount_cents", "int64", False, "Amount in minor units of currency (never negative)."),
    Field("currency", "string", False, "ISO-4217 three-letter code, upper case."),
    Field("status", "string", False, "Lifecycle status, one of contracts.lifecycle.ACCEPTED_STATUSES."),
    Field("payment_method", "string", True, "card, wallet, bank_transfer, ..."),
    Field("risk_score", "float64", True, "Processor risk score in [0, 1]."),
    Field("authorized_at", "timestamp", True, "When the authorization completed (UTC)."),
    Field("completed_at", "timestamp", True, "When the payment completed (UTC)."),
    Field("created_at", "timestamp", False, "When this event was created (UTC); orders events of a payment."),
    Field("source_system", "string", True, "Upstream system that emitted the event."),
    Field("decline_reason", "string", True, "Why a DECLINED payment was declined, when known."),
)

DERIVED_FIELDS: tuple[Field, ...] = (
    Field("dt", "date", False, "UTC date of created_at; lake partition."),
    Field("hour", "int32", False, "UTC hour (0-23) of created_at."),
    Field("authorized_to_complete_ms", "int64", True, "completed_at - authorized_at in ms; null if either is null."),
    Field("is_approved", "boolean", False, "status = APPROVED."),
    Field("is_refunded", "boolean", False, "status = REFUNDED."),
    Field("processed_at", "timestamp", False, "UTC time of the curation run that produced the row."),
    Field("curated_version", "int32", False, "Version of the curation rules (CURATED_VERSION)."),
)

CURATED_FIELDS: tuple[Field, ...] = RAW_FIELDS + DERIVED_FIELDS
CURATED_COLUMNS: tuple[str, ...] = tuple(f.name for f in CURATED_FIELDS)
TIMESTAMP_COLUMNS: tuple[str, ...] = tuple(f.name for f in CURATED_FIELDS if f.type == "timestamp")

# Lake partition columns of curated Parquet, outermost first.
CURATED_PARTITION_COLUMNS: tuple[str, ...] = ("dt", "merchant_id")

# Where a raw line came from: the curation reads lines with it, and every quarantined line keeps it.
SOURCE_OBJECT = Field("source_object", "string", False, "Landing object the line came from.")
LINE_NUMBER = Field("line_number", "int64", False, "1-based line number in that object.")
# The curation's input: one row per landed line (the line unparsed).
RAW_LINE_FIELDS: tuple[Field, ...] = (SOURCE_OBJECT, LINE_NUMBER, Field("value", "string", True, "The line as it landed."))

# A quarantined raw line: what landed, where, and every rule it breaks.
QUARANTINE_FIELDS: tuple[Field, ...] = (
    SOURCE_OBJECT,
    LINE_NUMBER,
    Field("raw_line", "string", True, "The line as it landed."),
    Field("reasons", "string_array", False, "Every rule the line breaks (README, curation rules)."),
    Field("reason", "string", False, "reasons joined with commas."),
    Field("quarantined_at", "timestamp", False, "processed_at of the run that quarantined it."),
    Field("curated_version", "int32", False, "Version of the curation rules."),
)
QUARANTINE_COLUMNS: tuple[str, ...] = tuple(f.name for f in QUARANTINE_FIELDS)
# Lake partition of quarantine Parquet: one folder per landing hour.
QUARANTINE_PARTITION_FIELD = Field("landing_hour", "string", False, "Landing hour YYYYMMDDTHH (UTC).")

_SPARK = {
    "string": "StringType", "int64": "LongType", "int32": "IntegerType", "float64": "DoubleType",
    "boolean": "BooleanType", "timestamp": "TimestampType", "date": "DateType",
}
_POSTGRES = {
    "string": "text", "int64": "bigint", "int32": "integer", "float64": "double precision",
    "boolean": "boolean", "timestamp": "timestamp with time zone", "date": "date",
}
# Kafka Connect types; timestamps and dates travel as logical types so the sink writes
# timestamptz/date columns with their UTC meaning (int64 millis / int32 days since epoch).
_CONNECT = {
    "string": ("string", None), "int64": ("int64", None), "int32": ("int32", None),
    "float64": ("double", None), "boolean": ("boolean", None),
    "timestamp": ("int64", "org.apache.kafka.connect.data.Timestamp"),
    "date": ("int32", "org.apache.kafka.connect.data.Date"),
}


def spark_schema(fields: tuple[Field, ...] = CURATED_FIELDS):
    """Spark StructType for the given fields."""
    from pyspark.sql import types as T

    def spark_type(t: LogicalType):
        if t == "string_array":
            return T.ArrayType(T.StringType(), containsNull=False)
        return getattr(T, _SPARK[t])()

    return T.StructType([T.StructField(f.name, spark_type(f.type), f.nullable) for f in fields])


def postgres_columns(fields: tuple[Field, ...] = CURATED_FIELDS) -> dict[str, tuple[str, bool]]:
    """{column: (postgres type, nullable)} as the migrations must create them."""
    return {f.name: (_POSTGRES[f.type], f.nullable) for f in fields}


def connect_value_schema(fields: tuple[Field, ...] = CURATED_FIELDS) -> dict:
    """Kafka Connect JSON schema (JsonConverter, schemas.enable=true) of the topic value."""
    out = []
    for f in fields:
        ctype, logical = _CONNECT[f.type]
        entry: dict = {"field": f.name, "type": ctype, "optional": f.nullable}
        if logical:
            entry["name"] = logical
            entry["version"] = 1
        out.append(entry)
    return {
        "type": "struct",
        "name": CONNECT_SCHEMA_NAME,
        "version": CONNECT_SCHEMA_VERSION,
        "optional": False,
        "fields": out,
    }


_DUCKDB = {
    "string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "float64": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ", "date": "DATE", "string_array": "VARCHAR[]",
}


def duckdb_types(fields: tuple[Field, ...] = CURATED_FIELDS) -> dict[str, str]:
    """{column: DuckDB type}, for reading Parquet with DuckDB's own reader (lake/query.py)."""
    return {f.name: _DUCKDB[f.type] for f in fields}


def arrow_schema(fields: tuple[Field, ...] = CURATED_FIELDS):
    """pyarrow schema of curated Parquet as written by Spark (timestamps in UTC, microseconds)."""
    import pyarrow as pa

    types = {
        "string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(),
        "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
        # Spark writes a Parquet list whose element is named "element".
        "string_array": pa.list_(pa.field("element", pa.string(), nullable=False)),
    }
    return pa.schema([pa.field(f.name, types[f.type], f.nullable) for f in fields])
