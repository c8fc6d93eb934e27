"""The lake's Glue Data Catalog, created through the Glue API (moto locally), idempotently.

Tables in WL_GLUE_DATABASE:

- `raw_payments`: the landing NDJSON (JSON SerDe, malformed lines read as nulls) partitioned by
  `dt` = YYYY/MM/DD/HH, one partition per landing folder raw/payments/dt=YYYY/MM/DD/HH/. Partition
  projection (`storage.location.template`) maps the slashes of the folder name, which a crawler
  cannot name. Timestamps are strings here (the raw text, any offset): the curated table has the
  typed values. Query with `WHERE dt = '2026/11/24/13'` or a BETWEEN of such strings.
- `curated_payments`: the curated Parquet, partitioned by `dt` (DATE) and `merchant_id`.
  Partitions are registered as written (BatchCreatePartition after each curation run), not
  projected: `injected` projection of merchant_id would make Athena refuse every query that does
  not name one merchant (the latest view, any cross-merchant report), and an `enum` would need the
  merchant list kept in the table. Registration costs one call per new (dt, merchant_id).
- `curated_payments_quarantine`: the quarantine Parquet (contracts.schema.QUARANTINE_FIELDS: raw
  line, source object, line number, reasons) partitioned by `landing_hour` = YYYYMMDDTHH,
  projected (one dimension, no listing).
- `curated_payments_latest`: an Athena view (TableType VIRTUAL_VIEW, Presto view encoding) of
  lake.views.LATEST_VIEW_SQL, the same text the local DuckDB query layer runs.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Iterable
from urllib.parse import unquote

from wallet_lake.contracts.landing import CURATED_PREFIX, QUARANTINE_PREFIX, RAW_PREFIX
from wallet_lake.contracts.schema import (
    CURATED_FIELDS,
    CURATED_PARTITION_COLUMNS,
    QUARANTINE_FIELDS,
    QUARANTINE_PARTITION_FIELD,
    RAW_FIELDS,
)
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.store import S3LakeStore
from wallet_lake.lake.views import LATEST_VIEW_NAME, LATEST_VIEW_SQL

RAW_TABLE = "raw_payments"
CURATED_TABLE = "curated_payments"
QUARANTINE_TABLE = "curated_payments_quarantine"
LATEST_VIEW = LATEST_VIEW_NAME
PROJECTION_START_HOUR = "2026-01-01T00"  # first landing hour the projections enumerate

_HIVE = {"string": "string", "int64": "bigint", "int32": "int", "float64": "double", "boolean": "boolean",
         "timestamp": "timestamp", "date": "date", "string_array": "array<string>"}
_PRESTO = {"string": "varchar", "int64": "bigint", "int32": "integer", "float64": "double", "boolean": "boolean",
           "timestamp": "timestamp(3)", "date": "date"}

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", "Parameters": {"serialization.format": "1"}},
}

def _columns(fields) -> list[dict]:
    return [{"Name": f.name, "Type": _HIVE[f.type], "Comment": f.doc[:255]} for f in fields]


def raw_table_input(bucket: str, projection_start: str = PROJECTION_START_HOUR) -> dict:
    start = projection_start.replace("-", "/").replace("T", "/")
    raw_types = {"timestamp": "string"}  # the raw text, with whatever offset it was written in
    return {
        "Name": RAW_TABLE,
        "Description": "Landing NDJSON payment events, one partition per landing hour (dt = YYYY/MM/DD/HH).",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "json",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy/MM/dd/HH",
            "projection.dt.range": f"{start},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "HOURS",
            "storage.location.template": f"s3://{bucket}/{RAW_PREFIX}dt=${{dt}}/",
        },
        "PartitionKeys": [{"Name": "dt", "Type": "string", "Comment": "Landing hour YYYY/MM/DD/HH (UTC)."}],
        "StorageDescriptor": {
            "Columns": [{"Name": f.name, "Type": raw_types.get(f.type, _HIVE[f.type]), "Comment": f.doc[:255]} for f in RAW_FIELDS],
            "Location": f"s3://{bucket}/{RAW_PREFIX}",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                "Parameters": {"ignore.malformed.json": "true", "case.insensitive": "false"},
            },
        },
    }


def curated_table_input(bucket: str) -> dict:
    data = [f for f in CURATED_FIELDS if f.name not in CURATED_PARTITION_COLUMNS]
    parts = [f for name in CURATED_PARTITION_COLUMNS for f in CURATED_FIELDS if f.name == name]
    return {
        "Name": CURATED_TABLE,
        "Description": "Curated payments (one row per payment_id per landing hour); partitions registered as written.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "SNAPPY"},
        "PartitionKeys": _columns(parts),
        "StorageDescriptor": {"Columns": _columns(data), "Location": f"s3://{bucket}/{CURATED_PREFIX}", **_PARQUET},
    }


def quarantine_table_input(bucket: str, projection_start: str = PROJECTION_START_HOUR) -> dict:
    start = projection_start.replace("-", "")
    part = QUARANTINE_PARTITION_FIELD.name
    return {
        "Name": QUARANTINE_TABLE,
        "Description": "Quarantined raw lines with their reasons, per landing hour (YYYYMMDDTHH).",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "projection.enabled": "true",
            f"projection.{part}.type": "date",
            f"projection.{part}.format": "yyyyMMdd'T'HH",
            f"projection.{part}.range": f"{start},NOW",
            f"projection.{part}.interval": "1",
            f"projection.{part}.interval.unit": "HOURS",
            "storage.location.template": f"s3://{bucket}/{QUARANTINE_PREFIX}{part}=${{{part}}}/",
        },
        "PartitionKeys": _columns((QUARANTINE_PARTITION_FIELD,)),
        "StorageDescriptor": {
            "Columns": _columns(QUARANTINE_FIELDS),
            "Location": f"s3://{bucket}/{QUARANTINE_PREFIX}",
            **_PARQUET,
        },
    }


def presto_view_text(database: str, sql: str = LATEST_VIEW_SQL) -> str:
    """The ViewOriginalText Athena writes for a view: base64 of the Presto view JSON."""
    view = {
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": f.name, "type": _PRESTO[f.type]} for f in CURATED_FIELDS],
    }
    return "/* Presto View: " + base64.b64encode(json.dumps(view).encode()).decode() + " */"


def decode_presto_view(text: str) -> dict:
    body = text.removeprefix("/* Presto View: ").removesuffix(" */")
    return json.loads(base64.b64decode(body))


def latest_view_input(database: str) -> dict:
    return {
        "Name": LATEST_VIEW,
        "Description": "Latest record per payment_id across landing hours (lake.views.LATEST_VIEW_SQL).",
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": presto_view_text(database),
        "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {"Columns": _columns(CURATED_FIELDS), "SerdeInfo": {}},
    }


def ensure_table(glue, database: str, table_input: dict) -> str:
    """Create the table, or update it to `table_input`: "created" | "updated"."""
    try:
        glue.get_table(DatabaseName=database, Name=table_input["Name"])
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=table_input)
        return "created"
    glue.update_table(DatabaseName=database, TableInput=table_input)
    return "updated"


def ensure_catalog(glue, database: str, bucket: str) -> dict[str, str]:
    """Every table and the view (the database must exist: lake.provision.ensure_glue_database)."""
    return {
        t["Name"]: ensure_table(glue, database, t)
        for t in (raw_table_input(bucket), curated_table_input(bucket), quarantine_table_input(bucket), latest_view_input(database))
    }


def partitions_of_keys(keys: Iterable[str]) -> dict[tuple[str, str], str]:
    """{(dt, merchant_id): folder} of curated object keys (folder names as written, %-escaped)."""
    out: dict[tuple[str, str], str] = {}
    for key in keys:
        if not key.startswith(CURATED_PREFIX):
            continue
        folder = key.rsplit("/", 1)[0] + "/"
        segs = dict(s.split("=", 1) for s in folder[len(CURATED_PREFIX):].strip("/").split("/"))
        out[(unquote(segs["dt"]), unquote(segs["merchant_id"]))] = folder
    return out


def register_curated_partitions(glue, database: str, bucket: str, keys: Iterable[str]) -> int:
    """Register the (dt, merchant_id) partitions of these curated keys (existing ones are left
    as they are); the number newly created."""
    table = glue.get_table(DatabaseName=database, Name=CURATED_TABLE)["Table"]
    sd = table["StorageDescriptor"]
    wanted = partitions_of_keys(keys)
    inputs = [
        {"Values": [dt, merchant], "StorageDescriptor": {**{k: v for k, v in sd.items() if k != "Location"}, "Location": f"s3://{bucket}/{folder}"}}
        for (dt, merchant), folder in sorted(wanted.items())
    ]
    created = 0
    for i in range(0, len(inputs), 100):
        batch = inputs[i : i + 100]
        resp = glue.batch_create_partition(DatabaseName=database, TableName=CURATED_TABLE, PartitionInputList=batch)
        errors = [e for e in resp.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if errors:
            raise RuntimeError(f"could not register curated partitions: {errors[:3]}")
        created += len(batch) - len(resp.get("Errors", []))
    return created


def register_published_hours(glue, database: str, store: S3LakeStore, hours: Iterable[datetime], log=None) -> int:
    """Register the partitions of these published hours' current files (their manifests'),
    creating the catalog's tables first when the database has none yet; the number of partitions
    newly created."""
    keys = [k for hour in hours for k in read_manifest(store, hour).get("curated_keys", [])]
    try:
        glue.get_table(DatabaseName=database, Name=CURATED_TABLE)
    except glue.exceptions.EntityNotFoundException:
        created = ensure_catalog(glue, database, store.bucket)
        if log:
            log.info(f"created the catalog tables in {database}: {created}")
    return register_curated_partitions(glue, database, store.bucket, keys)
