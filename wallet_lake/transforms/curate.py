"""raw payment events -> curated payments + quarantine: pure DataFrame functions.

No Dagster, no AWS: the Dagster asset (local Spark) and the Glue job call these the same way.
Input: one row per raw NDJSON line with columns `source_object`, `line_number`, `value` (plus
optional batch columns, e.g. the landing hour when many hours run in one Spark job; dedupe is
then per batch key). The rules (README "Curation rules") in order:
  1. The line must be exactly one JSON object (RFC 8259: no single quotes, no NaN/Infinity
     tokens, nothing but whitespace after the object). Fields are parsed with an explicit schema,
     never inferred; unknown fields are ignored; `status` is trimmed and upper-cased.
  2. Bad rows go to quarantine with every reason that applies (machine-readable codes, REASONS).
  3. Dedupe by payment_id: the first record in contracts.ordering.LATEST_FIRST (created_at to the
     millisecond, then the later lifecycle state, then the record's content), the order Postgres
     and the lake's latest view use too, so a rerun always picks the same row.
  4. Derive dt/hour (UTC of created_at), authorized_to_complete_ms, flags, processed_at, version.
     A risk_score of -0.0 becomes 0.0 (they compare equal, so the order could not tell them apart).
Accounting invariant: raw lines = curated rows + quarantined rows + duplicates removed.

How the JSON types are told apart, in Spark alone (no Python UDF, one full parse per line):
  * `from_json` with a schema typing amount_cents as BIGINT and risk_score as DOUBLE and every
    other field as text, with `_corrupt` as the corrupt-record column. With
    allowNonNumericNumbers=false a DOUBLE field accepts only JSON numbers (not "NaN" strings),
    a BIGINT field only JSON integers; a failed field leaves the others parsed (partial results)
    and sets `_corrupt`.
  * Only when `_corrupt` is set, a second parse with those two fields as text tells a syntax
    error (not_a_json_object) from a wrongly typed field.
  * A text field holds a JSON string's content, or a non-string's JSON text. payment_id and
    merchant_id must be JSON strings: when their text could be a non-string's rendering (starts
    with a digit, '-', '"', '{' or '[', or is true/false), probe parses with the field typed as
    DOUBLE / BOOLEAN / STRUCT / ARRAY decide. These run only for such rows (CASE is lazy).
  * from_json stops after the first JSON value, so content after the object is detected apart:
    when the line's only '}' byte is its last byte the object ends the line; otherwise (nested
    objects, braces in strings, whitespace around) string literals are masked and the bracket
    depth is followed to the end.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import cached_property, wraps
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

from pyspark import SparkContext
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, APPROVED, LIFECYCLE_RANK, REFUNDED
from wallet_lake.contracts.ordering import PARTITION_COLUMN, spark_order
from wallet_lake.contracts.schema import (
    CURATED_FIELDS,
    CURATED_VERSION,
    QUARANTINE_FIELDS,
    RAW_FIELDS,
    RAW_LINE_FIELDS,
    spark_schema,
)
from wallet_lake.transforms.checks import AMOUNT_CENTS_MIN, RISK_SCORE_MAX, RISK_SCORE_MIN

# Rendered from the contracts (contracts.schema), as the Glue catalog's quarantine table is.
RAW_INPUT_SCHEMA = spark_schema(RAW_LINE_FIELDS)
QUARANTINE_SCHEMA = spark_schema(QUARANTINE_FIELDS)

# Every reason code, in the order they are reported.
REASONS: tuple[str, ...] = (
    "not_a_json_object",
    "payment_id_missing", "payment_id_not_a_string", "payment_id_empty",
    "merchant_id_missing", "merchant_id_not_a_string", "merchant_id_empty",
    "amount_cents_missing", "amount_cents_not_an_integer", "amount_cents_negative",
    "currency_invalid",
    "status_not_accepted",
    "created_at_missing", "created_at_unparseable",
    "authorized_at_unparseable", "completed_at_unparseable",
    "risk_score_not_a_number", "risk_score_out_of_range",
)

# Strict JSON (RFC 8259) for every parse; `_corrupt` receives lines that fail.
_CORRUPT = "_corrupt"
JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "columnNameOfCorruptRecord": _CORRUPT,
}
_TYPED = {"amount_cents": T.LongType(), "risk_score": T.DoubleType()}
_MAIN_SCHEMA = T.StructType(
    [T.StructField(f.name, _TYPED.get(f.name, T.StringType())) for f in RAW_FIELDS]
    + [T.StructField(_CORRUPT, T.StringType())]
)
_TEXT_OF_TYPED_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in _TYPED] + [T.StructField(_CORRUPT, T.StringType())])
STRING_ID_FIELDS = ("payment_id", "merchant_id")
_PROBES = {  # JSON token kind -> the type whose converter accepts only that kind
    "number": T.DoubleType(),
    "boolean": T.BooleanType(),
    "object": T.StructType([]),
    "array": T.ArrayType(T.StringType()),
}

# JSON whitespace (RFC 8259): what `trim` removes around a line, a status or an id.
_JSON_WS = " \t\r\n"
# ISO-8601 date-time with seconds, an optional fraction (up to ns; kept to µs) and an optional
# Z or ±HH:MM offset (none: UTC). Years 0001-9999.
TIMESTAMP_PATTERN = r"\A(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?\z"
CURRENCY_PATTERN = r"\A[A-Za-z]{3}\z"  # \z: Java's $ would also match before a final newline
# A JSON string literal; possessive quantifiers keep Java's regex from recursing per character.
_JSON_STRING_LITERAL = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'


_Built = TypeVar("_Built")


def _kept_per_jvm(build: Callable[..., _Built]) -> Callable[..., _Built]:
    """build(*args), kept per Spark JVM, hashable args and ANSI mode. Columns are JVM objects:
    building curate()'s was two thirds of its chain's driver time (Py4J calls, docs/benchmarks.md
    session 30), and a warm worker would build the same ones for every run. A Column holds an
    unresolved expression, not a plan, so one can go into any plan of the JVM that made it (the
    time zone is taken when a plan is analyzed). Two things are fixed when it is built: the ANSI
    mode of its casts and arithmetic (hence part of the key), and its aliases' expression ids (two
    curate() chains in one plan share them, as a self-join does). A new JVM builds again."""
    kept: dict[tuple, tuple[Any, _Built]] = {}

    @wraps(build)
    def cached(*args: Any) -> _Built:
        jvm = SparkContext._jvm  # the gateway's view; it outlives SparkContext.stop()
        if jvm is None:
            return build(*args)
        key = (jvm.org.apache.spark.sql.internal.SQLConf.get().ansiEnabled(), *args)
        hit = kept.get(key)
        if hit is None or hit[0] is not jvm:
            hit = kept[key] = (jvm, build(*args))
        return hit[1]

    return cached


class CurationResult:
    """curate()'s outputs, each built on first use: a job that writes one of them does not pay
    for building the other. Building is the driver's work, not the executors' (docs/benchmarks.md,
    sessions 29 and 30), and a curation run builds twice: the curated job, the quarantine job."""

    def __init__(self, *, valid: Callable[[], DataFrame], curated: Callable[[DataFrame], DataFrame],
                 quarantine: Callable[[], DataFrame]) -> None:
        self._build_valid, self._build_curated, self._build_quarantine = valid, curated, quarantine

    @cached_property
    def valid(self) -> DataFrame:
        """Rows that passed validation, before dedupe (for the accounting check)."""
        return self._build_valid()

    @cached_property
    def curated(self) -> DataFrame:
        return self._build_curated(self.valid)

    @cached_property
    def quarantine(self) -> DataFrame:
        return self._build_quarantine()


def _sql_trim(col: Column) -> Column:
    """col without leading/trailing JSON whitespace (Spark's trim() removes spaces only)."""
    return F.btrim(col, F.lit(_JSON_WS))


def _ends_in_whitespace(col: Column, *, at_start: bool = True, at_end: bool = True) -> Column:
    """Whether col's first (or last) byte is JSON whitespace: O(1) tests that spare the common
    value btrim's work (it allocates two arrays of the value's length per call)."""
    edge = F.lit(False)
    for c in _JSON_WS:
        if at_start:
            edge = edge | col.startswith(c)
        if at_end:
            edge = edge | col.endswith(c)
    return edge


def _trimmed(col: Column) -> Column:
    """_sql_trim(col), trimming only a value that begins or ends with whitespace."""
    return F.when(_ends_in_whitespace(col), _sql_trim(col)).otherwise(col)


def _is_blank(col: Column) -> Column:
    """col is empty or JSON whitespace only; only a value that begins with whitespace is trimmed."""
    return (F.octet_length(col) == 0) | (_ends_in_whitespace(col, at_end=False) & (_sql_trim(col) == ""))


def _is_single_object(value: Column) -> Column:
    """True when nothing but whitespace follows the first JSON value of a syntactically valid
    line that starts with '{' (from_json ignores what follows the first value)."""
    # Fast and exact for a flat object without surrounding whitespace: its only '}' byte is its
    # last byte (0x7D never occurs inside a multi-byte UTF-8 character). A one-character
    # delimiter that is no regex metacharacter takes Java's String.split fast path (an intrinsic
    # indexOf), which costs a fifth of substring_index's byte-by-byte search (docs/benchmarks.md,
    # session 31); character-based instr/length/trim cost microseconds per line.
    fast = value.endswith("}") & (F.size(F.split(value, "}", 3)) == 2)
    trimmed = _sql_trim(value)
    masked = F.regexp_replace(trimmed, _JSON_STRING_LITERAL, '"')
    depth0 = F.struct(F.lit(0).alias("d"), F.lit(False).alias("started"), F.lit(False).alias("extra"))

    def step(acc: Column, c: Column) -> Column:
        delta = F.when(c.isin("{", "["), 1).when(c.isin("}", "]"), -1).otherwise(0)
        return F.struct(
            (acc["d"] + delta).alias("d"),
            F.lit(True).alias("started"),
            (acc["extra"] | (acc["started"] & (acc["d"] == 0))).alias("extra"),
        )

    exact = ~F.aggregate(F.split(masked, ""), depth0, step, lambda acc: acc["extra"])
    return F.when(fast, F.lit(True)).otherwise(exact)


class _ParseColumns(NamedTuple):
    parse: Column
    text_of_typed: Column
    is_object: Column
    normalized: tuple[Column, ...]  # the probes, `_ts_*`, `_status`


@_kept_per_jvm
def _parse_columns() -> _ParseColumns:
    value = F.col("value")
    parse = F.from_json(value, _MAIN_SCHEMA, JSON_OPTIONS).alias("p")
    # Only lines whose parse failed somewhere: syntax error, or a typed field of another type.
    corrupt = F.col(f"p.{_CORRUPT}")
    failed = F.col("p").isNotNull() & corrupt.isNotNull()
    text_of_typed_parse = F.from_json(value, _TEXT_OF_TYPED_SCHEMA, JSON_OPTIONS)
    text_of_typed = F.when(failed, text_of_typed_parse).alias("px")
    # Over `p` and the text only (not `px`), so every column but `p` is made in one projection:
    # each projection writes the whole row again (docs/benchmarks.md, session 31). A failed line
    # (~1 % of a busy hour's) may parse its typed fields as text twice.
    syntax_ok = F.col("p").isNotNull() & (corrupt.isNull() | text_of_typed_parse[_CORRUPT].isNull())
    is_object = F.when(syntax_ok, _is_single_object(value)).otherwise(F.lit(False)).alias("is_object")

    # Probes for payment_id/merchant_id whose text may be a non-string's rendering (lazy: CASE).
    # Only an object's probes are ever read (a non-object has the one reason not_a_json_object).
    ids = [F.col(f"p.{f}") for f in STRING_ID_FIELDS]
    may_be = {
        "number": lambda t: F.substring(t, 1, 1).isin(*list('-0123456789"')),
        "boolean": lambda t: t.isin("true", "false"),
        "object": lambda t: t.startswith("{"),
        "array": lambda t: t.startswith("["),
    }
    probes = []
    for kind, dtype in _PROBES.items():
        schema = T.StructType([T.StructField(f, dtype) for f in STRING_ID_FIELDS])
        maybe_any = F.lit(False)
        for t in ids:
            maybe_any = maybe_any | F.coalesce(may_be[kind](t), F.lit(False))
        probes.append(F.when(maybe_any, F.from_json(value, schema, JSON_OPTIONS)).alias(f"probe_{kind}"))

    def ts(field: str) -> Column:
        text = F.col(f"p.{field}")
        # A trailing Z is cast without it, in the session's zone, which is UTC (SPARK_CONF): the
        # same instant. Spark resolves a zone written in the text per value through two regex
        # compiles (getZoneId): 6 % of a busy hour's curation CPU, for the common case. The
        # pattern allows a Z only at the end, so the text before the first Z is the rest of it (a
        # byte search; substr counts characters twice).
        utc = F.when(text.endswith("Z"), F.substring_index(text, "Z", 1)).otherwise(text)
        return F.when(text.rlike(TIMESTAMP_PATTERN), utc.cast("timestamp"))

    normalized = (
        *probes,
        ts("created_at").alias("_ts_created"), ts("authorized_at").alias("_ts_authorized"),
        ts("completed_at").alias("_ts_completed"), F.upper(_trimmed(F.col("p.status"))).alias("_status"),
    )
    return _ParseColumns(parse, text_of_typed, is_object, normalized)


def parse_lines(raw: DataFrame) -> DataFrame:
    """Every input column plus `p` (the parse), `px` (text of the typed fields, only where the
    parse failed somewhere), `is_object`, the probes and the normalized fields (`_ts_*`,
    `_status`); one row per raw line. Two projections: `p`, then all the rest over it (a
    projection holding from_json is not fused into generated code, and writes its whole row)."""
    c = _parse_columns()
    return raw.select("*", c.parse).select("*", c.text_of_typed, c.is_object, *c.normalized)


@_kept_per_jvm
def _checks(accepted: tuple[str, ...]) -> tuple[tuple[str, Column], ...]:
    """(reason, condition) for every rule but not_a_json_object, over parse_lines' columns."""
    p, px = F.col("p"), F.col("px")
    checks: list[tuple[str, Column]] = []
    for field in STRING_ID_FIELDS:
        text = p[field]
        not_string = F.lit(False)
        for kind in _PROBES:
            not_string = not_string | F.col(f"probe_{kind}")[field].isNotNull()
        checks.append((f"{field}_missing", text.isNull()))
        checks.append((f"{field}_not_a_string", text.isNotNull() & not_string))
        checks.append((f"{field}_empty", text.isNotNull() & ~not_string & _is_blank(text)))
    for field, wrong in (("amount_cents", "not_an_integer"), ("risk_score", "not_a_number")):
        typed, text = p[field], px[field]
        if field == "amount_cents":
            checks.append(("amount_cents_missing", typed.isNull() & (px.isNull() | text.isNull())))
        checks.append((f"{field}_{wrong}", typed.isNull() & px.isNotNull() & text.isNotNull()))
        if field == "amount_cents":
            checks.append(("amount_cents_negative", typed < AMOUNT_CENTS_MIN))
    checks += [
        ("currency_invalid", p["currency"].isNull() | ~p["currency"].rlike(CURRENCY_PATTERN)),
        ("status_not_accepted", F.col("_status").isNull() | ~F.col("_status").isin(list(accepted))),
        ("created_at_missing", p["created_at"].isNull()),
        ("created_at_unparseable", p["created_at"].isNotNull() & F.col("_ts_created").isNull()),
        ("authorized_at_unparseable", p["authorized_at"].isNotNull() & F.col("_ts_authorized").isNull()),
        ("completed_at_unparseable", p["completed_at"].isNotNull() & F.col("_ts_completed").isNull()),
        ("risk_score_out_of_range", (p["risk_score"] < RISK_SCORE_MIN) | (p["risk_score"] > RISK_SCORE_MAX)),
    ]
    order = {r: i for i, r in enumerate(REASONS)}
    checks.sort(key=lambda c: order[c[0]])
    return tuple((code, F.coalesce(cond, F.lit(False))) for code, cond in checks)


def with_validity(parsed: DataFrame, accepted_statuses: Sequence[str] = ACCEPTED_STATUSES) -> DataFrame:
    """parse_lines' output plus `is_valid` (no reason applies)."""
    return parsed.withColumn("is_valid", _is_valid(tuple(accepted_statuses)))


@_kept_per_jvm
def _is_valid(accepted: tuple[str, ...]) -> Column:
    any_bad = F.lit(False)
    for _, cond in _checks(accepted):
        any_bad = any_bad | cond
    # Optimizer barrier: a filter on is_valid would otherwise be pushed below the projections,
    # inlining (and re-evaluating per reference) every from_json of the parse. A column that is
    # not deterministic stops that push; spark_partition_id() >= 0 is always true and cheap.
    return (F.spark_partition_id() >= 0) & F.col("is_object") & ~any_bad


def reasons_column(accepted_statuses: Sequence[str] = ACCEPTED_STATUSES) -> Column:
    """Every reason that applies, in REASONS order; only not_a_json_object for a non-object."""
    return _reasons_column(tuple(accepted_statuses))


@_kept_per_jvm
def _reasons_column(accepted: tuple[str, ...]) -> Column:
    codes = [F.when(cond, F.lit(code)) for code, cond in _checks(accepted)]
    found = F.filter(F.array(*codes), lambda c: c.isNotNull())
    # transform/coalesce only declares the elements non-null (QUARANTINE_SCHEMA); none is null.
    return F.transform(
        F.when(~F.col("is_object"), F.array(F.lit("not_a_json_object"))).otherwise(found), lambda c: F.coalesce(c, F.lit(""))
    )


def run_timestamp(value: datetime) -> Column:
    """`value`, a run's time (the same on every row), as a non-null timestamp column whose value
    stays out of Spark's generated code. Spark writes a timestamp (or long) literal into the
    generated Java as a number, so every run's new processed_at made new classes (4 a warm run)
    that the JIT compiled again, on the same 2 cores as the run (docs/benchmarks.md, session 32).
    An array literal is passed to the code by reference instead, and read at an index the
    optimizer cannot fold (1 on every row), so it cannot become a timestamp literal again. The
    instant is T.TimestampType's conversion of `value`, F.lit(value)'s too from 1583 on (F.lit
    moves older dates through Java's Julian calendar)."""
    held = F.array(F.lit(T.TimestampType().toInternal(value)))
    first = F.spark_partition_id() * 0 + 1
    return F.coalesce(F.timestamp_micros(F.element_at(held, first)), F.lit(_PLACEHOLDER[T.TimestampType]))


def quarantine_rows(
    flagged: DataFrame, *, processed_at: datetime, accepted_statuses: Sequence[str] = ACCEPTED_STATUSES,
    curated_version: int = CURATED_VERSION, batch_columns: Sequence[str] = (),
) -> DataFrame:
    """Invalid lines of with_validity's output, in QUARANTINE_SCHEMA (after the batch columns)."""
    bad = flagged.where(~F.col("is_valid")).withColumn("reasons", reasons_column(accepted_statuses))
    return bad.select(
        *batch_columns,
        F.col("source_object"),
        F.col("line_number"),
        F.col("value").alias("raw_line"),
        F.col("reasons"),
        F.array_join("reasons", ",").alias("reason"),
        run_timestamp(processed_at).alias("quarantined_at"),
        F.lit(curated_version).cast("int").alias("curated_version"),
    )


def valid_rows(flagged: DataFrame, batch_columns: Sequence[str] = ()) -> DataFrame:
    """Valid lines as typed raw fields."""
    return flagged.where(F.col("is_valid")).select(*batch_columns, *_valid_columns())


@_kept_per_jvm
def _valid_columns() -> tuple[Column, ...]:
    p = F.col("p")
    risk = p["risk_score"]
    return (
        p["payment_id"].alias("payment_id"),
        p["merchant_id"].alias("merchant_id"),
        p["user_id"].alias("user_id"),
        p["amount_cents"].alias("amount_cents"),
        F.upper(p["currency"]).alias("currency"),
        F.col("_status").alias("status"),
        p["payment_method"].alias("payment_method"),
        # -0.0 == 0.0 everywhere, so two records differing only there would tie in the order.
        F.when(risk == 0, F.lit(0.0)).otherwise(risk).alias("risk_score"),
        F.col("_ts_authorized").alias("authorized_at"),
        F.col("_ts_completed").alias("completed_at"),
        F.col("_ts_created").alias("created_at"),
        p["source_system"].alias("source_system"),
        p["decline_reason"].alias("decline_reason"),
    )


DEDUPE_RANK = "_n"


def derived_columns() -> dict[str, Column]:
    """The derived curated columns that depend on the record alone (not processed_at or the
    version), as expressions over valid_rows' columns."""
    return {
        "dt": F.to_date("created_at"),
        "hour": F.hour("created_at"),
        "authorized_to_complete_ms": F.when(
            F.col("authorized_at").isNotNull() & F.col("completed_at").isNotNull(),
            (F.unix_micros("completed_at") - F.unix_micros("authorized_at")) / F.lit(1000),
        ).cast("long"),
        "is_approved": F.col("status") == APPROVED,
        "is_refunded": F.col("status") == REFUNDED,
    }


def rank_within_payment(valid: DataFrame, batch_columns: Sequence[str] = ()) -> DataFrame:
    """valid_rows plus `_n`: 1 for the row that survives dedupe, 2.. for the duplicates removed.
    The order is contracts.ordering.LATEST_FIRST over the curated columns, derived ones included
    (processed_at and curated_version are the run's, equal for every row, so they are left out)."""
    return valid.withColumn(DEDUPE_RANK, _dedupe_rank(tuple(batch_columns)))


@_kept_per_jvm
def _dedupe_rank(batch_columns: tuple[str, ...]) -> Column:
    derived = derived_columns()
    order = spark_order(lambda name: derived.get(name, F.col(name)))
    # The window sorts by its partition keys first, comparing an 8-byte prefix of the first one
    # before whole rows. Ids that share a prefix ("pay_" and 4 characters) fall through to full
    # comparisons; a 64-bit hash of the id (a function of it, so the same partitions) first
    # gives a prefix that nearly always decides: 15 % less CPU in the dedupe stage of a 1M-event
    # hour (docs/benchmarks.md). A batch column is constant within an hour, so it goes last.
    window = Window.partitionBy(F.xxhash64(PARTITION_COLUMN), PARTITION_COLUMN, *batch_columns).orderBy(*order)
    return F.row_number().over(window)


def curated_rows(
    ranked: DataFrame, *, processed_at: datetime, curated_version: int = CURATED_VERSION, batch_columns: Sequence[str] = ()
) -> DataFrame:
    """The surviving rows with the derived columns, in the contract's column order, types and
    nullability (after the batch columns)."""
    latest = ranked.where(F.col(DEDUPE_RANK) == 1)
    processed = _curated_column(_PROCESSED_AT, run_timestamp(processed_at))  # the run's: never kept
    return latest.select(*batch_columns, *(processed if c is None else c for c in _curated_columns(curated_version)))


_CURATED_TYPES = {f.name: f for f in spark_schema(CURATED_FIELDS).fields}
_PROCESSED_AT = "processed_at"  # the one curated column that is the run's, not the record's


def _curated_column(name: str, value: Column) -> Column:
    """`value` as the curated column `name`: the contract's type and nullability."""
    f = _CURATED_TYPES[name]
    c = value.cast(f.dataType)
    if not f.nullable:
        # Validation guarantees a value for every non-null field; coalesce only tells Spark's
        # schema so (the placeholder is never taken), so the output schema equals the contract.
        c = F.coalesce(c, F.lit(_PLACEHOLDER[type(f.dataType)]))
    return c.alias(name)


@_kept_per_jvm
def _curated_columns(curated_version: int) -> tuple[Column | None, ...]:
    """The curated columns in the contract's order, None in _PROCESSED_AT's place."""
    derived = {**derived_columns(), "curated_version": F.lit(curated_version)}
    return tuple(None if name == _PROCESSED_AT else _curated_column(name, derived.get(name, F.col(name))) for name in _CURATED_TYPES)


_PLACEHOLDER = {  # typed, non-null literals
    T.StringType: "", T.LongType: 0, T.IntegerType: 0, T.DoubleType: 0.0, T.BooleanType: False,
    T.TimestampType: datetime(1970, 1, 1, tzinfo=timezone.utc), T.DateType: date(1970, 1, 1),
}


# Stages of curate() a Tap sees: every line with `is_valid`; the valid rows with DEDUPE_RANK.
FLAGGED, RANKED = "flagged", "ranked"
Tap = Callable[[str, DataFrame], DataFrame]


def curate(
    raw: DataFrame,
    *,
    processed_at: datetime,
    accepted_statuses: Sequence[str] = ACCEPTED_STATUSES,
    curated_version: int = CURATED_VERSION,
    batch_columns: Sequence[str] = (),
    tap: Tap | None = None,
) -> CurationResult:
    """Apply the curation rules. `processed_at` is passed in (the run's time) so the function
    is deterministic for a given input. The session time zone must be UTC (see SPARK_CONF).
    `batch_columns` (e.g. the landing hour) are carried through; dedupe is per batch key.
    `tap(stage, frame)` returns the frame the chain continues with (FLAGGED, RANKED): the
    production runner attaches Observations there, so it counts invalid lines and duplicates in
    the pass that writes the output, over this very chain. FLAGGED is tapped here, RANKED when
    `curated` is first asked for (CurationResult builds each output on first use)."""
    unknown = set(accepted_statuses) - set(LIFECYCLE_RANK)
    if unknown:
        raise ValueError(f"accepted statuses {sorted(unknown)} have no lifecycle rank")
    tap = tap or (lambda _stage, frame: frame)
    flagged = tap(FLAGGED, with_validity(parse_lines(raw), accepted_statuses))
    return CurationResult(
        valid=lambda: valid_rows(flagged, batch_columns),
        curated=lambda valid: curated_rows(tap(RANKED, rank_within_payment(valid, batch_columns)), processed_at=processed_at,
                                           curated_version=curated_version, batch_columns=batch_columns),
        quarantine=lambda: quarantine_rows(flagged, processed_at=processed_at, accepted_statuses=accepted_statuses,
                                           curated_version=curated_version, batch_columns=batch_columns),
    )


# Spark settings the rules depend on (UTC session) and sane local defaults.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}
