"""The curation rules of `wallet_lake.transforms.curate`, one test per rule, on hand-written lines.

Every input is an explicit raw NDJSON line written below and every expectation is worked out by
hand (timestamps as epoch microseconds of a UTC instant, via Python's datetime, never via Spark).
To stay fast, the single-line rules share one `curate` run (`main`): every line registered with
`main_line(...)` at import time goes into that run, and each test looks its lines up by raw line
(quarantine) or payment_id (curated). Lines are unique within the run; valid lines use their own
payment_id unless a test is about dedupe. Runs that need other arguments or another input order
(custom statuses, rerun, accounting, known bugs) have their own small `curate` call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wallet_lake.contracts.lifecycle import LIFECYCLE_RANK
from wallet_lake.contracts.schema import CURATED_VERSION, spark_schema
from wallet_lake.transforms.curate import QUARANTINE_SCHEMA, RAW_INPUT_SCHEMA, SPARK_CONF, curate

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROCESSED_AT = datetime(2026, 11, 25, 3, 15, 42, 123456, tzinfo=UTC)
MAIN_SOURCE = "landing/payments/dt=2026-11-24/hour=10/main.ndjson"


def utc_us(year, month, day, hour=0, minute=0, second=0, microsecond=0) -> int:
    """Epoch microseconds of a UTC wall-clock time (the expected value, computed in Python)."""
    instant = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)
    return (instant - EPOCH) // timedelta(microseconds=1)


PROCESSED_AT_US = utc_us(2026, 11, 25, 3, 15, 42, 123456)

# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------

_MAIN: list[tuple[str, int, str | None]] = []


def main_line(value: str | None, *, source_object: str = MAIN_SOURCE, line_number: int | None = None):
    """Register a raw line for the shared `main` run and return it unchanged."""
    _MAIN.append((source_object, len(_MAIN) + 1 if line_number is None else line_number, value))
    return value


def _collect(df: DataFrame) -> list[dict]:
    # Timestamps come back as epoch micros so the checks never depend on the Python process zone.
    cols = [
        F.unix_micros(F.col(f.name)).alias(f.name) if isinstance(f.dataType, T.TimestampType) else F.col(f.name)
        for f in df.schema.fields
    ]
    return [row.asDict() for row in df.select(cols).collect()]


@dataclass
class Outcome:
    raw_count: int
    curated: list[dict]
    quarantine: list[dict]
    valid_ids: list[str]
    curated_schema: T.StructType
    quarantine_schema: T.StructType

    def row(self, payment_id: str) -> dict:
        rows = [r for r in self.curated if r["payment_id"] == payment_id]
        assert len(rows) == 1, f"expected one curated row for {payment_id!r}, got {rows}"
        return rows[0]

    def has_row(self, payment_id: str) -> bool:
        return any(r["payment_id"] == payment_id for r in self.curated)

    def rejected(self, raw_line: str | None) -> dict:
        rows = [r for r in self.quarantine if r["raw_line"] == raw_line]
        assert len(rows) == 1, f"expected one quarantine row for {raw_line!r}, got {rows}"
        return rows[0]

    def is_quarantined(self, raw_line: str | None) -> bool:
        return any(r["raw_line"] == raw_line for r in self.quarantine)


def run(spark, entries, *, partitions: int | None = None, **kwargs) -> Outcome:
    """curate() over the entries (raw lines, or (source_object, line_number, line) tuples)."""
    rows = [e if isinstance(e, tuple) else (MAIN_SOURCE, i + 1, e) for i, e in enumerate(entries)]
    raw = spark.createDataFrame(rows, RAW_INPUT_SCHEMA)
    if partitions:
        raw = raw.repartition(partitions)
    result = curate(raw, processed_at=PROCESSED_AT, **kwargs)
    return Outcome(
        raw_count=len(rows),
        curated=_collect(result.curated),
        quarantine=_collect(result.quarantine),
        valid_ids=[r.payment_id for r in result.valid.select("payment_id").collect()],
        curated_schema=result.curated.schema,
        quarantine_schema=result.quarantine.schema,
    )


def assert_reasons(outcome: Outcome, line: str | None, expected: list[str]) -> None:
    """The line is quarantined with exactly these reasons (each once) and `reason` joins them."""
    q = outcome.rejected(line)
    assert sorted(q["reasons"]) == sorted(expected)
    assert len(q["reasons"]) == len(set(q["reasons"]))
    assert q["reason"] == ",".join(q["reasons"])


def params(*cases):
    """pytest params; the line (first value) of each is registered for the main run."""
    out = []
    for case_id, *values in cases:
        main_line(values[0])
        out.append(pytest.param(*values, id=case_id))
    return out


# --------------------------------------------------------------------------------------------
# Lines of the shared run. Valid template (created_at last, so status is the first difference
# between two lines of one payment that differ only in status):
# {"payment_id":"..","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}
# --------------------------------------------------------------------------------------------

NOT_AN_OBJECT = params(
    ("plain_text", "this is not json"),
    ("truncated_object", '{"payment_id":"q-trunc","merchant_id":"m-1","amount_cents":1250'),
    ("json_array", "[1, 2, 3]"),
    ("array_of_a_valid_object", '[{"payment_id":"q-arr","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}]'),
    ("json_string", '"a json string"'),
    ("json_number", "1250"),
    ("json_null", "null"),
    ("empty_line", ""),
    ("null_value", None),
)

STRING_FIELD_REJECTS = params(
    ("payment_id_missing", '{"merchant_id":"m-1","amount_cents":1201,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "payment_id_missing"),
    ("payment_id_null", '{"payment_id":null,"merchant_id":"m-1","amount_cents":1202,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "payment_id_missing"),
    ("payment_id_empty", '{"payment_id":"","merchant_id":"m-1","amount_cents":1203,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "payment_id_empty"),
    ("payment_id_number", '{"payment_id":12345,"merchant_id":"m-1","amount_cents":1204,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "payment_id_not_a_string"),
    ("merchant_id_missing", '{"payment_id":"q-merchant-missing","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "merchant_id_missing"),
    ("merchant_id_null", '{"payment_id":"q-merchant-null","merchant_id":null,"amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "merchant_id_missing"),
    ("merchant_id_empty", '{"payment_id":"q-merchant-empty","merchant_id":"","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "merchant_id_empty"),
    ("merchant_id_number", '{"payment_id":"q-merchant-number","merchant_id":42,"amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "merchant_id_not_a_string"),
)

AMOUNT_REJECTS = params(
    ("missing", '{"payment_id":"q-amount-missing","merchant_id":"m-1","currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "amount_cents_missing"),
    ("null", '{"payment_id":"q-amount-null","merchant_id":"m-1","amount_cents":null,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "amount_cents_missing"),
    ("string_12", '{"payment_id":"q-amount-string","merchant_id":"m-1","amount_cents":"12","currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "amount_cents_not_an_integer"),
    ("float_12_5", '{"payment_id":"q-amount-float","merchant_id":"m-1","amount_cents":12.5,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "amount_cents_not_an_integer"),
    ("negative", '{"payment_id":"q-amount-negative","merchant_id":"m-1","amount_cents":-1,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "amount_cents_negative"),
)
ZERO_AMOUNT = main_line('{"payment_id":"v-zero-amount","merchant_id":"m-1","amount_cents":0,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}')

CURRENCY_REJECTS = params(
    ("two_letters_US", '{"payment_id":"q-cur-us","merchant_id":"m-1","amount_cents":1250,"currency":"US","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
    ("letters_and_digit_usd1", '{"payment_id":"q-cur-usd1","merchant_id":"m-1","amount_cents":1250,"currency":"usd1","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
    ("missing", '{"payment_id":"q-cur-missing","merchant_id":"m-1","amount_cents":1250,"status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
    ("null", '{"payment_id":"q-cur-null","merchant_id":"m-1","amount_cents":1250,"currency":null,"status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
)
LOWER_CASE_CURRENCY = main_line('{"payment_id":"v-lower-currency","merchant_id":"m-1","amount_cents":1250,"currency":"usd","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}')

STATUS_REJECTS = params(
    ("SETTLED", '{"payment_id":"q-status-settled","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"SETTLED","created_at":"2026-11-24T10:00:00Z"}'),
    ("missing", '{"payment_id":"q-status-missing","merchant_id":"m-1","amount_cents":1250,"currency":"USD","created_at":"2026-11-24T10:00:00Z"}'),
    ("null", '{"payment_id":"q-status-null","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":null,"created_at":"2026-11-24T10:00:00Z"}'),
)
PADDED_LOWER_STATUS = main_line('{"payment_id":"v-padded-status","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":" approved ","created_at":"2026-11-24T10:00:00Z"}')

TIMESTAMP_REJECTS = params(
    ("created_at_missing", '{"payment_id":"q-created-missing","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED"}', "created_at_missing"),
    ("created_at_null", '{"payment_id":"q-created-null","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":null}', "created_at_missing"),
    ("created_at_words", '{"payment_id":"q-created-words","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"yesterday at noon"}', "created_at_unparseable"),
    ("created_at_month_13", '{"payment_id":"q-created-month13","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-13-24T10:00:00Z"}', "created_at_unparseable"),
    ("authorized_at_words", '{"payment_id":"q-authorized-words","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"soon","created_at":"2026-11-24T10:00:00Z"}', "authorized_at_unparseable"),
    ("completed_at_hour_25", '{"payment_id":"q-completed-hour25","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","completed_at":"2026-11-24T25:00:00Z","created_at":"2026-11-24T10:00:00Z"}', "completed_at_unparseable"),
)
OPTIONALS_MISSING = main_line('{"payment_id":"v-optionals-missing","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}')
OPTIONALS_NULL = main_line('{"payment_id":"v-optionals-null","merchant_id":"m-1","user_id":null,"amount_cents":1250,"currency":"USD","status":"APPROVED","payment_method":null,"risk_score":null,"authorized_at":null,"completed_at":null,"created_at":"2026-11-24T10:00:00Z","source_system":null,"decline_reason":null}')

RISK_REJECTS = params(
    ("string_0_5", '{"payment_id":"q-risk-string","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":"0.5","created_at":"2026-11-24T10:00:00Z"}', "risk_score_not_a_number"),
    ("below_zero", '{"payment_id":"q-risk-below","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":-0.01,"created_at":"2026-11-24T10:00:00Z"}', "risk_score_out_of_range"),
    ("above_one", '{"payment_id":"q-risk-above","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":1.01,"created_at":"2026-11-24T10:00:00Z"}', "risk_score_out_of_range"),
)
RISK_BOUNDS = params(
    ("zero", '{"payment_id":"v-risk-0","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":0,"created_at":"2026-11-24T10:00:00Z"}', "v-risk-0", 0.0),
    ("one", '{"payment_id":"v-risk-1","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":1.0,"created_at":"2026-11-24T10:00:00Z"}', "v-risk-1", 1.0),
)

EVERY_REASON = main_line('{"payment_id":7,"merchant_id":"","amount_cents":-5,"currency":"US","status":"SETTLED","risk_score":1.5,"authorized_at":"x","completed_at":"y","created_at":"yesterday"}')
EMPTY_OBJECT = main_line("{}")

BYTES_SOURCE = "s3://wallet-landing/payments/dt=2026-11-24/hour=10/part-00007.ndjson"
ODD_BYTES_OBJECT = main_line(
    '  {"payment_id" : "q-bytes",  "merchant_id":"m-1","amount_cents":"12","currency":"EUR","status":"APPROVED",'
    r'"created_at":"2026-11-24T10:00:00Z","note":"café ☕ \u00e9 \"quoted\" \\ back"}' "\t ",
    source_object=BYTES_SOURCE, line_number=7,
)
ODD_BYTES_TEXT = main_line("not json: ünïcödé\tand a tab ", source_object=BYTES_SOURCE, line_number=42)

# One instant, 2026-11-24T10:00:00.000Z (authorized 09:59:58.500Z, completed 10:00:01.250Z),
# written with Z, +02:00, -05:00 and no offset.
SAME_INSTANT = params(
    ("Z", '{"payment_id":"t-z","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T09:59:58.500Z","completed_at":"2026-11-24T10:00:01.250Z","created_at":"2026-11-24T10:00:00Z"}', "t-z"),
    ("plus_02_00", '{"payment_id":"t-plus2","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T11:59:58.500+02:00","completed_at":"2026-11-24T12:00:01.250+02:00","created_at":"2026-11-24T12:00:00+02:00"}', "t-plus2"),
    ("minus_05_00", '{"payment_id":"t-minus5","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T04:59:58.500-05:00","completed_at":"2026-11-24T05:00:01.250-05:00","created_at":"2026-11-24T05:00:00-05:00"}', "t-minus5"),
    ("no_offset_is_utc", '{"payment_id":"t-naive","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T09:59:58.500","completed_at":"2026-11-24T10:00:01.250","created_at":"2026-11-24T10:00:00"}', "t-naive"),
)

PARTITION_CASES = params(
    ("late_minus_02_is_next_utc_day", '{"payment_id":"t-dt-minus2","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T23:30:00-02:00"}', "t-dt-minus2", date(2026, 11, 25), 1),
    ("early_plus_02_is_previous_utc_day", '{"payment_id":"t-dt-plus2","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-25T00:30:00+02:00"}', "t-dt-plus2", date(2026, 11, 24), 22),
    ("utc_midnight", '{"payment_id":"t-dt-midnight","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T00:00:00Z"}', "t-dt-midnight", date(2026, 11, 24), 0),
    ("utc_last_hour", '{"payment_id":"t-dt-last","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T23:59:59.999999Z"}', "t-dt-last", date(2026, 11, 24), 23),
)

EXTRA_FIELDS = main_line('{"payment_id":"v-extra","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z","fee_cents":"not checked","tags":[1,"two",null],"meta":{"region":"eu","amount_cents":"x"},"note":null}')

FULL_RECORD = main_line('{"payment_id":"v-full","merchant_id":"m-9","user_id":"u-7","amount_cents":1999,"currency":"eur","status":"Declined","payment_method":"card","risk_score":0.42,"authorized_at":"2026-11-24T10:00:00.250Z","completed_at":"2026-11-24T11:00:03.001+01:00","created_at":"2026-11-24T09:59:59.750Z","source_system":"proc-a","decline_reason":"insufficient_funds"}')

DURATION_CASES = params(
    ("across_offsets", '{"payment_id":"x-ms-offsets","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T10:00:00.250Z","completed_at":"2026-11-24T11:00:03.001+01:00","created_at":"2026-11-24T10:00:00Z"}', "x-ms-offsets", 2751),
    ("across_midnight", '{"payment_id":"x-ms-midnight","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T23:59:59.500Z","completed_at":"2026-11-25T00:00:00.750Z","created_at":"2026-11-24T23:59:59Z"}', "x-ms-midnight", 1250),
    ("one_day", '{"payment_id":"x-ms-day","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-23T10:00:00Z","completed_at":"2026-11-24T10:00:00Z","created_at":"2026-11-24T10:00:00Z"}', "x-ms-day", 86_400_000),
    ("same_instant", '{"payment_id":"x-ms-zero","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T12:00:00+02:00","completed_at":"2026-11-24T10:00:00Z","created_at":"2026-11-24T10:00:00Z"}', "x-ms-zero", 0),
)
DURATION_NULL_CASES = params(
    ("no_completed_at", '{"payment_id":"x-ms-no-completed","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T10:00:00Z","created_at":"2026-11-24T10:00:00Z"}', "x-ms-no-completed"),
    ("no_authorized_at", '{"payment_id":"x-ms-no-authorized","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","completed_at":"2026-11-24T10:00:00Z","created_at":"2026-11-24T10:00:00Z"}', "x-ms-no-authorized"),
    ("null_completed_at", '{"payment_id":"x-ms-null-completed","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","authorized_at":"2026-11-24T10:00:00Z","completed_at":null,"created_at":"2026-11-24T10:00:00Z"}', "x-ms-null-completed"),
    ("neither", '{"payment_id":"x-ms-neither","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "x-ms-neither"),
)

FLAG_CASES = params(
    ("APPROVED", '{"payment_id":"f-approved","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}', "f-approved", True, False),
    ("REFUNDED", '{"payment_id":"f-refunded","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T10:00:00Z"}', "f-refunded", False, True),
    ("PENDING", '{"payment_id":"f-pending","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"PENDING","created_at":"2026-11-24T10:00:00Z"}', "f-pending", False, False),
    ("DECLINED", '{"payment_id":"f-declined","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"DECLINED","created_at":"2026-11-24T10:00:00Z"}', "f-declined", False, False),
    ("CHARGEBACK", '{"payment_id":"f-chargeback","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"CHARGEBACK","created_at":"2026-11-24T10:00:00Z"}', "f-chargeback", False, False),
)

# Dedupe scenarios: several events of one payment_id (the order: contracts.ordering.LATEST_FIRST).
# Where the amount differs, it is chosen so the LOSING line is the greater raw line and the greater
# amount, proving the earlier keys decide, not raw order or content.
REFUND_LATER = [
    main_line('{"payment_id":"d-refund","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T11:00:00Z"}'),
    main_line('{"payment_id":"d-refund","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
]
LATEST_BEATS_LIFECYCLE = [  # loser: later lifecycle state, 1 ms earlier, greater raw line and amount
    main_line('{"payment_id":"d-latest","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T10:00:00.000Z"}'),
    main_line('{"payment_id":"d-latest","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00.001Z"}'),
]
LATEST_BY_INSTANT = [  # 11:00+02:00 (09:00Z) is earlier than 10:00Z although its text is greater
    main_line('{"payment_id":"d-latest-offset","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T11:00:00+02:00"}'),
    main_line('{"payment_id":"d-latest-offset","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
]
EQUAL_CREATED_AT = [pytest.param(*values, id=case_id) for case_id, *values in (
    ("PENDING_then_APPROVED", "d-tie-pa",
     '{"payment_id":"d-tie-pa","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"PENDING","created_at":"2026-11-24T10:00:00Z"}',
     '{"payment_id":"d-tie-pa","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}',
     "APPROVED"),
    ("APPROVED_then_REFUNDED", "d-tie-ar",
     '{"payment_id":"d-tie-ar","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}',
     '{"payment_id":"d-tie-ar","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T10:00:00Z"}',
     "REFUNDED"),
    ("REFUNDED_then_CHARGEBACK", "d-tie-rc",
     '{"payment_id":"d-tie-rc","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T10:00:00Z"}',
     '{"payment_id":"d-tie-rc","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"CHARGEBACK","created_at":"2026-11-24T10:00:00Z"}',
     "CHARGEBACK"),
    ("PENDING_then_CHARGEBACK_same_instant_other_offset", "d-tie-offset",
     '{"payment_id":"d-tie-offset","merchant_id":"m-1","amount_cents":9000,"currency":"USD","status":"PENDING","created_at":"2026-11-24T10:00:00Z"}',
     '{"payment_id":"d-tie-offset","merchant_id":"m-1","amount_cents":1000,"currency":"USD","status":"CHARGEBACK","created_at":"2026-11-24T11:00:00+01:00"}',
     "CHARGEBACK"),
)]
for _param in EQUAL_CREATED_AT:
    main_line(_param.values[1])
    main_line(_param.values[2])
FULL_TIE = [  # same created_at, same rank (APPROVED = DECLINED = FAILED): the greatest status in bytes wins
    main_line('{"payment_id":"d-full-tie","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"DECLINED","created_at":"2026-11-24T10:00:00Z"}'),
    main_line('{"payment_id":"d-full-tie","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"FAILED","created_at":"2026-11-24T10:00:00Z"}'),
    main_line('{"payment_id":"d-full-tie","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
]
# Byte order, not UTF-16 order: U+FF21 is EF BC A1 in UTF-8 and U+1F600 is F0 9F 98 80, so the
# emoji user_id is greater by bytes (it would be smaller comparing UTF-16 code units, D83D < FF21).
BYTE_ORDER_TIE = [
    main_line('{"payment_id":"d-byte-tie","merchant_id":"m-1","user_id":"u-😀","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
    main_line('{"payment_id":"d-byte-tie","merchant_id":"m-1","user_id":"u-Ａ","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'),
]
DEDUPE_LINES = [
    *REFUND_LATER, *LATEST_BEATS_LIFECYCLE, *LATEST_BY_INSTANT,
    *[line for p in EQUAL_CREATED_AT for line in p.values[1:3]],
    *FULL_TIE, *BYTE_ORDER_TIE,
]
DEDUPE_IDS = ["d-refund", "d-latest", "d-latest-offset", "d-tie-pa", "d-tie-ar", "d-tie-rc", "d-tie-offset", "d-full-tie", "d-byte-tie"]


@pytest.fixture(scope="module")
def main(spark) -> Outcome:
    values = [v for _, _, v in _MAIN]
    assert len(values) == len(set(values)), "lines of the shared run must be unique"
    return run(spark, list(_MAIN))


# --------------------------------------------------------------------------------------------
# 1. JSON object, explicit schema, unknown fields ignored
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", NOT_AN_OBJECT)
def test_line_that_is_not_a_json_object_is_quarantined_only_as_not_a_json_object(main, line):
    q = main.rejected(line)
    assert q["reasons"] == ["not_a_json_object"]
    assert q["reason"] == "not_a_json_object"
    assert not main.has_row("q-arr") and not main.has_row("q-trunc")


def test_unknown_extra_fields_are_ignored(main):
    assert not main.is_quarantined(EXTRA_FIELDS)
    row = main.row("v-extra")
    assert (row["merchant_id"], row["amount_cents"], row["currency"], row["status"]) == ("m-1", 1250, "USD", "APPROVED")
    assert row["created_at"] == utc_us(2026, 11, 24, 10)
    assert not {"fee_cents", "tags", "meta", "note"} & set(row)


# --------------------------------------------------------------------------------------------
# 2. Validation: every reason, machine-readable
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "reason"), STRING_FIELD_REJECTS)
def test_payment_id_and_merchant_id_must_be_non_empty_strings(main, line, reason):
    assert_reasons(main, line, [reason])


@pytest.mark.parametrize(("line", "reason"), AMOUNT_REJECTS)
def test_amount_cents_missing_non_integer_or_negative_is_quarantined(main, line, reason):
    assert_reasons(main, line, [reason])


def test_string_amount_is_quarantined_as_not_an_integer(main):
    assert_reasons(main, AMOUNT_REJECTS[2].values[0], ["amount_cents_not_an_integer"])
    assert '"amount_cents":"12"' in AMOUNT_REJECTS[2].values[0]


def test_zero_amount_is_valid(main):
    assert not main.is_quarantined(ZERO_AMOUNT)
    assert main.row("v-zero-amount")["amount_cents"] == 0


@pytest.mark.parametrize("line", CURRENCY_REJECTS)
def test_currency_not_three_letters_is_quarantined_as_currency_invalid(main, line):
    assert_reasons(main, line, ["currency_invalid"])


def test_lower_case_currency_is_valid_and_upper_cased(main):
    assert not main.is_quarantined(LOWER_CASE_CURRENCY)
    assert main.row("v-lower-currency")["currency"] == "USD"


@pytest.mark.parametrize("line", STATUS_REJECTS)
def test_status_not_accepted_is_quarantined(main, line):
    assert_reasons(main, line, ["status_not_accepted"])


def test_padded_lower_case_status_is_valid_and_trimmed_upper_cased(main):
    assert not main.is_quarantined(PADDED_LOWER_STATUS)
    row = main.row("v-padded-status")
    assert row["status"] == "APPROVED"
    assert row["is_approved"] is True


def test_custom_accepted_statuses_restrict_status(spark):
    refunded = '{"payment_id":"c-refunded","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T10:00:00Z"}'
    approved = '{"payment_id":"c-approved","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"approved","created_at":"2026-11-24T10:00:00Z"}'
    pending = '{"payment_id":"c-pending","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"PENDING","created_at":"2026-11-24T10:00:00Z"}'
    out = run(spark, [refunded, approved, pending], accepted_statuses=("PENDING", "APPROVED"))
    assert_reasons(out, refunded, ["status_not_accepted"])
    assert {r["payment_id"]: r["status"] for r in out.curated} == {"c-approved": "APPROVED", "c-pending": "PENDING"}


def test_accepted_status_without_lifecycle_rank_is_rejected(spark):
    raw = spark.createDataFrame([], RAW_INPUT_SCHEMA)
    with pytest.raises(ValueError, match="SETTLED"):
        curate(raw, processed_at=PROCESSED_AT, accepted_statuses=("APPROVED", "SETTLED"))


def test_each_output_is_built_only_when_used(spark, monkeypatch):
    """A job writes one output: building the other is driver work it must not pay for (the
    curated job never builds the quarantine, the quarantine job never ranks)."""
    import wallet_lake.transforms.curate as rules

    def must_not_build(*_args, **_kwargs):
        raise AssertionError("built an output that was not asked for")

    line = '{"payment_id":"lazy-1","merchant_id":"m-1","amount_cents":5,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'
    raw = spark.createDataFrame([(MAIN_SOURCE, 1, line)], RAW_INPUT_SCHEMA)
    stages: list[str] = []

    def tap(stage, frame):
        stages.append(stage)
        return frame

    with monkeypatch.context() as m:
        m.setattr(rules, "quarantine_rows", must_not_build)
        curated = curate(raw, processed_at=PROCESSED_AT, tap=tap).curated
        assert [r["payment_id"] for r in curated.collect()] == ["lazy-1"]
    assert stages == [rules.FLAGGED, rules.RANKED]

    stages.clear()
    with monkeypatch.context() as m:
        m.setattr(rules, "rank_within_payment", must_not_build)
        m.setattr(rules, "curated_rows", must_not_build)
        assert curate(raw, processed_at=PROCESSED_AT, tap=tap).quarantine.count() == 0
    assert stages == [rules.FLAGGED]


def test_a_jvm_builds_the_rules_columns_once_and_every_plan_reuses_them(spark, monkeypatch):
    """The warm curation worker curates hour after hour in one JVM: the second curate() builds
    no parse, check or curated column again (Py4J calls while the executors wait), and its
    outputs are still right."""
    good = '{"payment_id":"kept-1","merchant_id":"m-1","amount_cents":5,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'
    raw = spark.createDataFrame([(MAIN_SOURCE, 1, good), (MAIN_SOURCE, 2, "[]")], RAW_INPUT_SCHEMA)
    first = curate(raw, processed_at=PROCESSED_AT)
    first.curated, first.quarantine  # noqa: B018 (builds and keeps the JVM's columns)
    built: list[str] = []
    for name in ("from_json", "when", "to_date", "xxhash64"):  # parse, checks, curated columns, dedupe
        real = getattr(F, name)
        monkeypatch.setattr(F, name, lambda *a, _real=real, _name=name, **k: built.append(_name) or _real(*a, **k))
    later = PROCESSED_AT + timedelta(hours=1)
    again = curate(raw, processed_at=later)
    assert [(r["payment_id"], r["processed_at"]) for r in again.curated.collect()] == [("kept-1", later.replace(tzinfo=None))]
    assert [(r["line_number"], r["reasons"]) for r in again.quarantine.collect()] == [(2, ["not_a_json_object"])]
    assert not built, f"built again: {sorted(set(built))}"


@pytest.mark.parametrize(("line", "reason"), TIMESTAMP_REJECTS)
def test_missing_or_unparseable_timestamps_are_quarantined(main, line, reason):
    assert_reasons(main, line, [reason])


@pytest.mark.parametrize(("line", "payment_id"), [
    pytest.param(OPTIONALS_MISSING, "v-optionals-missing", id="missing"),
    pytest.param(OPTIONALS_NULL, "v-optionals-null", id="null"),
])
def test_missing_or_null_optional_fields_are_valid(main, line, payment_id):
    assert not main.is_quarantined(line)
    row = main.row(payment_id)
    for name in ("user_id", "payment_method", "risk_score", "authorized_at", "completed_at", "source_system",
                 "decline_reason", "authorized_to_complete_ms"):
        assert row[name] is None, name


@pytest.mark.parametrize(("line", "reason"), RISK_REJECTS)
def test_risk_score_string_or_outside_unit_interval_is_quarantined(main, line, reason):
    assert_reasons(main, line, [reason])


@pytest.mark.parametrize(("line", "payment_id", "score"), RISK_BOUNDS)
def test_risk_score_bounds_zero_and_one_are_valid(main, line, payment_id, score):
    assert not main.is_quarantined(line)
    assert main.row(payment_id)["risk_score"] == score


def test_every_applicable_reason_is_reported_and_joined(main):
    assert_reasons(main, EVERY_REASON, [
        "payment_id_not_a_string", "merchant_id_empty", "amount_cents_negative", "currency_invalid",
        "status_not_accepted", "created_at_unparseable", "authorized_at_unparseable",
        "completed_at_unparseable", "risk_score_out_of_range",
    ])
    assert_reasons(main, EMPTY_OBJECT, [
        "payment_id_missing", "merchant_id_missing", "amount_cents_missing", "currency_invalid",
        "status_not_accepted", "created_at_missing",
    ])


def test_quarantine_keeps_source_object_line_number_and_raw_line_byte_for_byte(main):
    for line, number, reasons in ((ODD_BYTES_OBJECT, 7, ["amount_cents_not_an_integer"]),
                                  (ODD_BYTES_TEXT, 42, ["not_a_json_object"])):
        q = main.rejected(line)
        assert (q["source_object"], q["line_number"]) == (BYTES_SOURCE, number)
        assert q["raw_line"].encode("utf-8") == line.encode("utf-8")
        assert q["reasons"] == reasons
    null_line = main.rejected(None)
    assert (null_line["source_object"], null_line["raw_line"]) == (MAIN_SOURCE, None)


def test_quarantine_row_records_processed_at_and_curated_version(main):
    assert main.quarantine
    assert {q["quarantined_at"] for q in main.quarantine} == {PROCESSED_AT_US}
    assert {q["curated_version"] for q in main.quarantine} == {CURATED_VERSION}
    assert [(f.name, f.dataType.simpleString()) for f in main.quarantine_schema.fields] == [
        (f.name, f.dataType.simpleString()) for f in QUARANTINE_SCHEMA.fields
    ]


# --------------------------------------------------------------------------------------------
# Timestamps: every offset normalizes to UTC; dt/hour from created_at in UTC
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "payment_id"), SAME_INSTANT)
def test_offsets_z_plus_minus_and_none_normalize_to_the_same_utc_instant(main, line, payment_id):
    row = main.row(payment_id)
    assert row["created_at"] == utc_us(2026, 11, 24, 10, 0, 0)
    assert row["authorized_at"] == utc_us(2026, 11, 24, 9, 59, 58, 500_000)
    assert row["completed_at"] == utc_us(2026, 11, 24, 10, 0, 1, 250_000)
    assert (row["dt"], row["hour"], row["authorized_to_complete_ms"]) == (date(2026, 11, 24), 10, 2750)


@pytest.mark.parametrize(("line", "payment_id", "dt", "hour"), PARTITION_CASES)
def test_dt_and_hour_come_from_created_at_in_utc(main, line, payment_id, dt, hour):
    row = main.row(payment_id)
    assert (row["dt"], row["hour"]) == (dt, hour)


def test_spark_conf_pins_a_utc_session_time_zone(spark):
    assert SPARK_CONF["spark.sql.session.timeZone"] == "UTC"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


# --------------------------------------------------------------------------------------------
# 3. Dedupe
# --------------------------------------------------------------------------------------------


def test_one_curated_row_per_valid_payment_id(main):
    curated_ids = [r["payment_id"] for r in main.curated]
    assert len(curated_ids) == len(set(curated_ids))
    assert set(curated_ids) == set(main.valid_ids)
    for pid in DEDUPE_IDS:
        assert main.valid_ids.count(pid) >= 2 and curated_ids.count(pid) == 1


def test_refund_later_same_payment_replaces_approved(main):
    row = main.row("d-refund")
    assert (row["status"], row["created_at"]) == ("REFUNDED", utc_us(2026, 11, 24, 11))
    assert (row["is_refunded"], row["is_approved"]) == (True, False)


def test_latest_created_at_wins_over_later_lifecycle_state_and_content(main):
    assert max(LATEST_BEATS_LIFECYCLE) == LATEST_BEATS_LIFECYCLE[0]  # the loser is the greater line
    row = main.row("d-latest")
    assert (row["status"], row["amount_cents"], row["created_at"]) == ("APPROVED", 1000, utc_us(2026, 11, 24, 10, 0, 0, 1000))


def test_latest_created_at_is_compared_as_utc_instants_not_text(main):
    assert max(LATEST_BY_INSTANT) == LATEST_BY_INSTANT[0]
    row = main.row("d-latest-offset")
    assert (row["status"], row["amount_cents"], row["created_at"]) == ("APPROVED", 1000, utc_us(2026, 11, 24, 10))


@pytest.mark.parametrize(("payment_id", "loser_line", "winner_line", "winner"), EQUAL_CREATED_AT)
def test_equal_created_at_later_lifecycle_state_wins(main, payment_id, loser_line, winner_line, winner):
    assert max(loser_line, winner_line) == loser_line  # raw order alone would pick the loser
    assert LIFECYCLE_RANK[winner] > LIFECYCLE_RANK[json.loads(loser_line)["status"]]
    row = main.row(payment_id)
    assert (row["status"], row["amount_cents"]) == (winner, 1000)


def test_created_at_and_rank_tie_is_broken_by_content(main):
    assert b"FAILED" > b"DECLINED" > b"APPROVED"
    assert main.row("d-full-tie")["status"] == "FAILED"


def test_content_tie_compares_text_in_utf8_byte_order(main):
    emoji, fullwidth = BYTE_ORDER_TIE
    assert emoji.encode("utf-8") > fullwidth.encode("utf-8")
    assert emoji.encode("utf-16-be") < fullwidth.encode("utf-16-be")
    assert main.row("d-byte-tie")["user_id"] == "u-😀"


def test_dedupe_picks_the_same_rows_when_input_order_changes(spark, main):
    reordered = [("landing/rerun.ndjson", 500 - i, line) for i, line in enumerate(reversed(DEDUPE_LINES))]
    rerun = run(spark, reordered, partitions=3)
    expected = sorted((main.row(pid) for pid in DEDUPE_IDS), key=lambda r: r["payment_id"])
    assert sorted(rerun.curated, key=lambda r: r["payment_id"]) == expected


# --------------------------------------------------------------------------------------------
# 4. Derived columns and the output contract
# --------------------------------------------------------------------------------------------


def test_valid_line_maps_every_raw_field_and_derives_the_rest(main):
    assert main.row("v-full") == {
        "payment_id": "v-full",
        "merchant_id": "m-9",
        "user_id": "u-7",
        "amount_cents": 1999,
        "currency": "EUR",
        "status": "DECLINED",
        "payment_method": "card",
        "risk_score": 0.42,
        "authorized_at": utc_us(2026, 11, 24, 10, 0, 0, 250_000),
        "completed_at": utc_us(2026, 11, 24, 10, 0, 3, 1_000),
        "created_at": utc_us(2026, 11, 24, 9, 59, 59, 750_000),
        "source_system": "proc-a",
        "decline_reason": "insufficient_funds",
        "dt": date(2026, 11, 24),
        "hour": 9,
        "authorized_to_complete_ms": 2751,
        "is_approved": False,
        "is_refunded": False,
        "processed_at": PROCESSED_AT_US,
        "curated_version": CURATED_VERSION,
    }


@pytest.mark.parametrize(("line", "payment_id", "ms"), DURATION_CASES)
def test_authorized_to_complete_ms_is_exact_milliseconds(main, line, payment_id, ms):
    assert main.row(payment_id)["authorized_to_complete_ms"] == ms


@pytest.mark.parametrize(("line", "payment_id"), DURATION_NULL_CASES)
def test_authorized_to_complete_ms_is_null_when_either_side_is_null(main, line, payment_id):
    assert not main.is_quarantined(line)
    assert main.row(payment_id)["authorized_to_complete_ms"] is None


@pytest.mark.parametrize(("line", "payment_id", "approved", "refunded"), FLAG_CASES)
def test_is_approved_and_is_refunded_follow_status(main, line, payment_id, approved, refunded):
    row = main.row(payment_id)
    assert (row["is_approved"], row["is_refunded"]) == (approved, refunded)


def test_processed_at_and_curated_version_are_stamped_on_every_row(main):
    assert main.curated
    assert {r["processed_at"] for r in main.curated} == {PROCESSED_AT_US}
    assert {r["curated_version"] for r in main.curated} == {CURATED_VERSION}


def test_curated_columns_and_types_equal_the_contract_schema(main):
    got = [(f.name, f.dataType) for f in main.curated_schema.fields]
    assert got == [(f.name, f.dataType) for f in spark_schema().fields]


# --------------------------------------------------------------------------------------------
# Accounting invariant
# --------------------------------------------------------------------------------------------


def test_raw_lines_equal_curated_plus_quarantined_plus_duplicates(spark, main):
    lines = [
        '{"payment_id":"a-1","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}',
        '{"payment_id":"a-1","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T11:00:00Z"}',
        '{"payment_id":"a-1","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"REFUNDED","created_at":"2026-11-24T11:00:00Z"}',
        '{"payment_id":"a-2","merchant_id":"m-2","amount_cents":500,"currency":"EUR","status":"PENDING","created_at":"2026-11-24T10:05:00Z"}',
        "garbage line",
        '{"payment_id":"a-4","merchant_id":"m-1","amount_cents":"12","currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}',
        '{"payment_id":"a-3","merchant_id":"m-1","amount_cents":700,"currency":"USD","status":"PENDING","created_at":"2026-11-24T10:10:00Z"}',
        '{"payment_id":"a-3","merchant_id":"m-1","amount_cents":700,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:10:00Z"}',
    ]
    out = run(spark, lines)
    # By hand: 8 lines = 3 curated (a-1, a-2, a-3) + 2 quarantined + 3 duplicates (6 valid - 3 ids).
    assert (out.raw_count, len(out.curated), len(out.quarantine)) == (8, 3, 2)
    assert (len(out.valid_ids), len(set(out.valid_ids))) == (6, 3)
    assert {r["payment_id"]: r["status"] for r in out.curated} == {"a-1": "REFUNDED", "a-2": "PENDING", "a-3": "APPROVED"}
    for o in (out, main):
        duplicates = len(o.valid_ids) - len(set(o.valid_ids))
        assert o.raw_count == len(o.curated) + len(o.quarantine) + duplicates


# --------------------------------------------------------------------------------------------
# Formerly known bugs (object followed by more content, "usd\n", "NaN"/"Infinity" strings, a
# nested payment_id hiding a top-level number): fixed in curate.py; their lines share one run.
# --------------------------------------------------------------------------------------------

JOINED_RECORDS = (
    '{"payment_id":"e-joined-1","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'
    '{"payment_id":"e-joined-2","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'
)
STRAY_BRACE = '{"payment_id":"e-brace","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}}'
CURRENCY_NEWLINE = r'{"payment_id":"e-cur-newline","merchant_id":"m-1","amount_cents":1250,"currency":"usd\n","status":"APPROVED","created_at":"2026-11-24T10:00:00Z"}'
RISK_NAN = '{"payment_id":"e-risk-nan","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":"NaN","created_at":"2026-11-24T10:00:00Z"}'
RISK_INFINITY = '{"payment_id":"e-risk-inf","merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","risk_score":"Infinity","created_at":"2026-11-24T10:00:00Z"}'
NESTED_PAYMENT_ID = '{"payment_id":7,"merchant_id":"m-1","amount_cents":1250,"currency":"USD","status":"APPROVED","created_at":"2026-11-24T10:00:00Z","meta":{"payment_id":"p-7"}}'


@pytest.fixture(scope="module")
def bugs(spark) -> Outcome:
    return run(spark, [JOINED_RECORDS, STRAY_BRACE, CURRENCY_NEWLINE, RISK_NAN, RISK_INFINITY, NESTED_PAYMENT_ID])


@pytest.mark.parametrize(("line", "payment_id"), [
    pytest.param(JOINED_RECORDS, "e-joined-1", id="two_records_run_together"),
    pytest.param(STRAY_BRACE, "e-brace", id="stray_closing_brace"),
])
def test_object_followed_by_more_content_is_not_a_json_object(bugs, line, payment_id):
    assert not bugs.has_row(payment_id)
    assert bugs.rejected(line)["reasons"] == ["not_a_json_object"]


def test_currency_with_trailing_newline_is_quarantined_as_currency_invalid(bugs):
    assert not bugs.has_row("e-cur-newline")
    assert_reasons(bugs, CURRENCY_NEWLINE, ["currency_invalid"])


@pytest.mark.parametrize("line", [pytest.param(RISK_NAN, id="NaN"), pytest.param(RISK_INFINITY, id="Infinity")])
def test_string_nan_or_infinity_risk_score_is_quarantined_as_not_a_number(bugs, line):
    assert_reasons(bugs, line, ["risk_score_not_a_number"])


def test_number_payment_id_is_not_a_string_even_with_a_nested_string_payment_id(bugs):
    assert not bugs.has_row("7")
    assert_reasons(bugs, NESTED_PAYMENT_ID, ["payment_id_not_a_string"])
