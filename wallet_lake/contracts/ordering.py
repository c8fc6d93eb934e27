"""Which record of a payment is its latest: one total order, defined once, rendered for every store.

Three places pick a payment's latest record: the Spark dedupe of a landing hour
(transforms/curate.py), the lake's latest-record view for DuckDB and Athena (lake/views.py) and
the Postgres no-regression trigger (serving/contract_sql.py, committed as a migration). They all
render `LATEST_FIRST` below, so they agree on every pair of records, ties included; so do the
benchmark's DuckDB reference curation (bench/curated.py) and Python readers (`python_compare`).

The order is defined on what every store can hold:
  * Timestamps compare truncated (floored) to the millisecond first: Postgres gets milliseconds
    from the sink (Connect Timestamp), the lake keeps microseconds. The sub-millisecond digits
    come last, after every other key, so they only separate records that Postgres holds as
    identical rows.
  * Text compares as UTF-8 bytes (Spark, DuckDB and Trino do by default; Postgres needs
    COLLATE "C", since a database's default collation may order otherwise).
  * Every key says where nulls go; the engines' defaults differ.
  * It covers every curated column but payment_id (the partition): two records equal under the
    whole order are identical in every column, so which one survives cannot matter.
  * Content decides before the time of curation, so a rerun or backfill of an hour with the
    same inputs never changes which record wins; only among records that say the same thing
    does the most recent curation (processed_at) win. The rules' version (curated_version) comes
    right after the lifecycle rank, so records made by fixed rules replace the old rules' ones.

Import-time checks keep it total when the contract gains a column."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any, Literal

from wallet_lake.contracts.lifecycle import LIFECYCLE_RANK, lifecycle_rank
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_FIELDS, TIMESTAMP_COLUMNS

if TYPE_CHECKING:  # pyspark is imported only by the Spark renderer
    from pyspark.sql import Column

Transform = Literal["value", "ms", "lifecycle_rank"]

# Records of one payment are ordered among themselves.
PARTITION_COLUMN = "payment_id"


@dataclass(frozen=True)
class OrderKey:
    column: str
    # "value": the column as stored; "ms": a timestamp floored to the millisecond;
    # "lifecycle_rank": contracts.lifecycle.LIFECYCLE_RANK of the status.
    transform: Transform = "value"
    descending: bool = True  # the first record in the order is the latest, the one kept
    nulls_last: bool = True  # a record that has a value comes before one that has none
    # Equal for every record of one curation run (the Spark dedupe sees one run only).
    run_constant: bool = False


# Latest first. Every key descending, nulls last.
LATEST_FIRST: tuple[OrderKey, ...] = (
    # 1. When the event happened, to the millisecond.
    OrderKey("created_at", "ms"),
    # 2. The later lifecycle state (PENDING < APPROVED = DECLINED = FAILED = CANCELLED < REFUNDED < CHARGEBACK).
    OrderKey("status", "lifecycle_rank"),
    # 3. The newer curation rules: after a rule fix (CURATED_VERSION bumped) the re-curated
    #    record replaces what the old rules made of the same event, in Postgres as in the lake.
    OrderKey("curated_version", run_constant=True),
    # 4. What the record says: any two different records are ordered, whatever their arrival.
    OrderKey("status"),
    OrderKey("amount_cents"),
    OrderKey("currency"),
    OrderKey("merchant_id"),
    OrderKey("user_id"),
    OrderKey("payment_method"),
    OrderKey("risk_score"),
    OrderKey("authorized_at", "ms"),
    OrderKey("completed_at", "ms"),
    OrderKey("source_system"),
    OrderKey("decline_reason"),
    OrderKey("authorized_to_complete_ms"),
    OrderKey("dt"),
    OrderKey("hour"),
    OrderKey("is_approved"),
    OrderKey("is_refunded"),
    # 5. When it was curated: the most recent curation of the same content.
    OrderKey("processed_at", "ms", run_constant=True),
    # 6. Sub-millisecond digits, which only the lake keeps.
    OrderKey("created_at"),
    OrderKey("authorized_at"),
    OrderKey("completed_at"),
    OrderKey("processed_at", run_constant=True),
)

_FIELDS = {f.name: f for f in CURATED_FIELDS}


def _check(keys: tuple[OrderKey, ...]) -> None:
    """The order is total over the curated columns, and what a millisecond store holds decides
    everything before the sub-millisecond keys."""
    problems = []
    columns = {k.column for k in keys}
    if columns != set(CURATED_COLUMNS) - {PARTITION_COLUMN}:
        problems.append(f"keys must cover exactly the curated columns but {PARTITION_COLUMN}: "
                        f"missing {sorted(set(CURATED_COLUMNS) - columns - {PARTITION_COLUMN})}, "
                        f"unknown {sorted(columns - set(CURATED_COLUMNS))}")
    full = [i for i, k in enumerate(keys) if k.column in TIMESTAMP_COLUMNS and k.transform == "value"]
    tail = keys[full[0]:] if full else ()
    if {k.column for k in tail} != set(TIMESTAMP_COLUMNS) or len(tail) != len(full):
        problems.append("the keys must end with every timestamp at full precision, and only those")
    head = keys[: full[0]] if full else keys
    for k in head:
        if k.transform == "ms" and k.column not in TIMESTAMP_COLUMNS:
            problems.append(f"{k.column}: 'ms' applies to timestamps only")
    missing_ms = set(TIMESTAMP_COLUMNS) - {k.column for k in head if k.transform == "ms"}
    if missing_ms:
        problems.append(f"timestamps without a millisecond key before the tail: {sorted(missing_ms)}")
    if problems:
        raise RuntimeError("contracts.ordering.LATEST_FIRST is not a total order every store can hold: " + "; ".join(problems))


_check(LATEST_FIRST)


def _is_text(column: str) -> bool:
    return _FIELDS[column].type == "string"


def _nullable(key: OrderKey) -> bool:
    return key.transform != "lifecycle_rank" and _FIELDS[key.column].nullable


def _direction_sql(key: OrderKey) -> str:
    return f"{'DESC' if key.descending else 'ASC'} NULLS {'LAST' if key.nulls_last else 'FIRST'}"


# --- lake: DuckDB and Athena (Trino) read one text --------------------------------------------


def lifecycle_rank_case_sql(status: str) -> str:
    """CASE expression of the lifecycle rank of `status` (-1 for a status the contract does not
    know: curation admits none, so the lake never holds one)."""
    whens = " ".join(f"WHEN '{s}' THEN {rank}" for s, rank in LIFECYCLE_RANK.items())
    return f"CASE {status} {whens} ELSE -1 END"


def _lake_expr(key: OrderKey, ref: Callable[[str], str]) -> str:
    col = ref(key.column)
    if key.transform == "ms":
        return f"date_trunc('millisecond', {col})"
    if key.transform == "lifecycle_rank":
        return lifecycle_rank_case_sql(col)
    return col  # VARCHAR compares as bytes in DuckDB and Trino


def lake_order_by_sql(ref: Callable[[str], str] = str) -> str:
    """The ORDER BY list (without the keywords) for DuckDB and Athena/Trino; `ref` maps a
    column to its reference (e.g. a qualified name)."""
    return ", ".join(f"{_lake_expr(k, ref)} {_direction_sql(k)}" for k in LATEST_FIRST)


# --- Python -------------------------------------------------------------------------------------


def _python_value(key: OrderKey, record: Mapping[str, Any]) -> Any:
    value = record[key.column]
    if value is None:
        return None
    if key.transform == "ms":
        return value - timedelta(microseconds=value.microsecond % 1000)  # microsecond >= 0: a floor
    if key.transform == "lifecycle_rank":
        return lifecycle_rank(value)
    if isinstance(value, str):
        return value.encode("utf-8")  # bytes, as the engines compare text
    return value


def python_compare(a: Mapping[str, Any], b: Mapping[str, Any], *, include_run_constant: bool = True) -> int:
    """-1 when record `a` comes first in the order (is the later one), 1 when `b` does, 0 when
    they are equal under it: the order for Python readers (tools, tests), over curated records as
    dicts (timestamps as datetimes)."""
    for k in LATEST_FIRST:
        if k.run_constant and not include_run_constant:
            continue
        x, y = _python_value(k, a), _python_value(k, b)
        if x == y:
            continue
        if x is None or y is None:
            return (1 if x is None else -1) * (1 if k.nulls_last else -1)
        return (-1 if x > y else 1) * (1 if k.descending else -1)
    return 0


def python_latest(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The record of one payment the order keeps (the first one)."""
    return min(records, key=cmp_to_key(python_compare))


# --- Spark --------------------------------------------------------------------------------------


def spark_order(resolve: Callable[[str], Column], *, include_run_constant: bool = False) -> list[Column]:
    """Sort columns for a Spark window (first row = latest). `resolve` gives the Column of a
    curated column (derived ones may be expressions). Keys equal within one curation run are left
    out unless asked for: the dedupe of one run cannot be decided by them."""
    from pyspark.sql import functions as F

    out = []
    for k in LATEST_FIRST:
        if k.run_constant and not include_run_constant:
            continue
        col = resolve(k.column)
        if k.transform == "ms":
            col = F.date_trunc("millisecond", col)
        elif k.transform == "lifecycle_rank":
            expr = None
            for status, rank in LIFECYCLE_RANK.items():
                expr = (F.when if expr is None else expr.when)(col == status, F.lit(rank))
            col = expr.otherwise(F.lit(-1))
        # Spark compares strings as UTF-8 bytes.
        if k.descending:
            out.append(col.desc_nulls_last() if k.nulls_last else col.desc_nulls_first())
        else:
            out.append(col.asc_nulls_last() if k.nulls_last else col.asc_nulls_first())
    return out


# --- Postgres -----------------------------------------------------------------------------------

POSTGRES_RANK_FUNCTION = "payment_lifecycle_rank"


def _pg_expr(key: OrderKey, row: str) -> str:
    col = f"{row}.{key.column}"
    if key.transform == "ms":
        return f"date_trunc('milliseconds', {col})"
    if key.transform == "lifecycle_rank":
        return f"{POSTGRES_RANK_FUNCTION}({col})"
    if _is_text(key.column):
        return f'{col} COLLATE "C"'  # bytes, whatever the database's collation
    return col


def postgres_first_sql(a: str, b: str, *, indent: str = "") -> str:
    """A boolean expression: row `a` comes strictly before row `b` in the order (false when they
    are equal under it). The first key on which they differ decides; IS DISTINCT FROM and the
    explicit null branches keep NULLs from turning a comparison into NULL."""
    lines = ["CASE"]
    for k in LATEST_FIRST:
        x, y = _pg_expr(k, a), _pg_expr(k, b)
        before = f"{x} {'>' if k.descending else '<'} {y}"
        if _nullable(k):
            # They differ, so at most one is null; the comparison is then NULL and the null one
            # goes where the key says.
            before = f"coalesce({before}, {y if k.nulls_last else x} IS NULL)"
        lines.append(f"    WHEN {x} IS DISTINCT FROM {y} THEN {before}")
    lines.append("    ELSE false")
    lines.append("END")
    return "\n".join(indent + line if i else line for i, line in enumerate(lines))
