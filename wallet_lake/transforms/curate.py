"""raw payment events -> curated payments + quarantine: pure DataFrame functions.

No Dagster, no AWS: the Dagster asset (local Spark) and the Glue job call `curate` the same way.
Input: one row per raw NDJSON line with columns `source_object`, `line_number`, `value`.
The rules (README "Curation rules") in order:
  1. The line must be a JSON object; the fields are parsed with an explicit schema, never
     inferred; unknown fields are ignored; `status` is trimmed and upper-cased.
  2. Bad rows go to quarantine with every reason that applies (machine-readable codes).
  3. Dedupe by payment_id: latest created_at, then later lifecycle state, then the greatest raw
     line (byte order), so a rerun always picks the same row.
  4. Derive dt/hour (UTC of created_at), authorized_to_complete_ms, flags, processed_at, version.
Accounting invariant: raw lines = curated rows + quarantined rows + duplicates removed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, LIFECYCLE_RANK
from wallet_lake.contracts.schema import CURATED_FIELDS, CURATED_VERSION, RAW_FIELDS, spark_schema

RAW_INPUT_SCHEMA = T.StructType(
    [
        T.StructField("source_object", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("value", T.StringType(), True),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source_object", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("raw_line", T.StringType(), True),
        T.StructField("reasons", T.ArrayType(T.StringType(), False), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("quarantined_at", T.TimestampType(), False),
        T.StructField("curated_version", T.IntegerType(), False),
    ]
)

# Parse schemas: numbers typed (a JSON string "12" is not an integer), everything else as text
# so "present but unparseable" can be told apart from "missing".
_TYPED = {"amount_cents": T.LongType(), "risk_score": T.DoubleType()}
_PARSE_TYPED = T.StructType([T.StructField(f.name, _TYPED.get(f.name, T.StringType())) for f in RAW_FIELDS])
_PARSE_TEXT = T.StructType([T.StructField(f.name, T.StringType()) for f in RAW_FIELDS])
_STRING_FIELDS_REQUIRED = ("payment_id", "merchant_id")


@dataclass
class CurationResult:
    curated: DataFrame
    quarantine: DataFrame
    # Rows that passed validation, before dedupe (for the accounting check).
    valid: DataFrame


def _is_json_string(field: str) -> Column:
    # Spark's JSON reader turns a number into text for a string field; the raw line tells whether
    # the value was a JSON string. Keys are top-level only in this contract.
    return F.col("value").rlike(r'"' + field + r'"\s*:\s*"')


def _rank(status: Column) -> Column:
    expr = None
    for name, rank in LIFECYCLE_RANK.items():
        expr = (F.when(status == name, F.lit(rank))) if expr is None else expr.when(status == name, F.lit(rank))
    return expr.otherwise(F.lit(-1))


def _reasons(accepted: Sequence[str]) -> Column:
    t, s = F.col("t"), F.col("s")  # typed and text parses
    checks: list[tuple[str, Column]] = [("not_a_json_object", F.col("is_object").isNull() | ~F.col("is_object"))]
    for field in _STRING_FIELDS_REQUIRED:
        checks.append((f"{field}_missing", s[field].isNull()))
        checks.append((f"{field}_not_a_string", s[field].isNotNull() & ~_is_json_string(field)))
        checks.append((f"{field}_empty", s[field].isNotNull() & (F.trim(s[field]) == "")))
    checks += [
        ("amount_cents_missing", s["amount_cents"].isNull()),
        ("amount_cents_not_an_integer", s["amount_cents"].isNotNull() & t["amount_cents"].isNull()),
        ("amount_cents_negative", t["amount_cents"] < 0),
        ("currency_invalid", s["currency"].isNull() | ~s["currency"].rlike(r"^[A-Za-z]{3}$")),
        ("status_not_accepted", s["status"].isNull() | ~F.upper(F.trim(s["status"])).isin(list(accepted))),
        ("created_at_missing", s["created_at"].isNull()),
        ("created_at_unparseable", s["created_at"].isNotNull() & F.col("created_ts").isNull()),
        ("authorized_at_unparseable", s["authorized_at"].isNotNull() & F.col("authorized_ts").isNull()),
        ("completed_at_unparseable", s["completed_at"].isNotNull() & F.col("completed_ts").isNull()),
        ("risk_score_not_a_number", s["risk_score"].isNotNull() & t["risk_score"].isNull()),
        ("risk_score_out_of_range", (t["risk_score"] < 0) | (t["risk_score"] > 1)),
    ]
    # Every check yields its code or null; for a non-object line only the first one applies.
    codes = [F.when(F.coalesce(cond, F.lit(False)), F.lit(code)) for code, cond in checks]
    return F.when(F.col("is_object").isNull() | ~F.col("is_object"), F.array(F.lit("not_a_json_object"))).otherwise(
        F.filter(F.array(*codes[1:]), lambda c: c.isNotNull())
    )


def curate(
    raw: DataFrame,
    *,
    processed_at: datetime,
    accepted_statuses: Sequence[str] = ACCEPTED_STATUSES,
    curated_version: int = CURATED_VERSION,
) -> CurationResult:
    """Apply the curation rules. `processed_at` is passed in (the run's time) so the function
    is deterministic for a given input. The session time zone must be UTC (see spark_conf)."""
    unknown = set(accepted_statuses) - set(LIFECYCLE_RANK)
    if unknown:
        raise ValueError(f"accepted statuses {sorted(unknown)} have no lifecycle rank")

    parsed = (
        raw.withColumn("is_object", F.from_json("value", T.MapType(T.StringType(), T.StringType())).isNotNull())
        .withColumn("t", F.from_json("value", _PARSE_TYPED))
        .withColumn("s", F.from_json("value", _PARSE_TEXT))
        .withColumn("created_ts", F.col("s.created_at").cast("timestamp"))
        .withColumn("authorized_ts", F.col("s.authorized_at").cast("timestamp"))
        .withColumn("completed_ts", F.col("s.completed_at").cast("timestamp"))
    )
    parsed = parsed.withColumn("reasons", _reasons(accepted_statuses)).cache()

    quarantine = parsed.where(F.size("reasons") > 0).select(
        "source_object",
        "line_number",
        F.col("value").alias("raw_line"),
        "reasons",
        F.array_join("reasons", ",").alias("reason"),
        F.lit(processed_at).cast("timestamp").alias("quarantined_at"),
        F.lit(curated_version).cast("int").alias("curated_version"),
    )

    status = F.upper(F.trim(F.col("s.status")))
    valid = parsed.where(F.size("reasons") == 0).select(
        F.col("s.payment_id").alias("payment_id"),
        F.col("s.merchant_id").alias("merchant_id"),
        F.col("s.user_id").alias("user_id"),
        F.col("t.amount_cents").alias("amount_cents"),
        F.upper(F.col("s.currency")).alias("currency"),
        status.alias("status"),
        F.col("s.payment_method").alias("payment_method"),
        F.col("t.risk_score").alias("risk_score"),
        F.col("authorized_ts").alias("authorized_at"),
        F.col("completed_ts").alias("completed_at"),
        F.col("created_ts").alias("created_at"),
        F.col("s.source_system").alias("source_system"),
        F.col("s.decline_reason").alias("decline_reason"),
        F.col("value").alias("_raw_line"),
    )

    order = Window.partitionBy("payment_id").orderBy(
        F.col("created_at").desc(), _rank(F.col("status")).desc(), F.col("_raw_line").desc()
    )
    latest = valid.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1)

    curated = (
        latest.withColumn("dt", F.to_date("created_at"))
        .withColumn("hour", F.hour("created_at"))
        .withColumn(
            "authorized_to_complete_ms",
            F.when(
                F.col("authorized_at").isNotNull() & F.col("completed_at").isNotNull(),
                (F.unix_micros("completed_at") - F.unix_micros("authorized_at")) / F.lit(1000),
            ).cast("long"),
        )
        .withColumn("is_approved", F.col("status") == "APPROVED")
        .withColumn("is_refunded", F.col("status") == "REFUNDED")
        .withColumn("processed_at", F.lit(processed_at).cast("timestamp"))
        .withColumn("curated_version", F.lit(curated_version).cast("int"))
    )
    schema = spark_schema(CURATED_FIELDS)
    curated = curated.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])
    return CurationResult(curated=curated, quarantine=quarantine, valid=valid.drop("_raw_line"))


# Spark settings the rules depend on (UTC session) and sane local defaults.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}
