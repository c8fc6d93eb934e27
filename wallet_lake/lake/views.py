"""Views over the curated Parquet of the lake, as SQL text that DuckDB and Athena (Trino) read alike.

The lake keeps every curated record a landing hour produced, so one payment can have several
(its APPROVED record in one dt partition, its REFUNDED record days later in another).
`curated_payments_latest` keeps one record per payment_id: the first in
contracts.ordering.LATEST_FIRST, the order the curation dedupe and the Postgres no-regression
trigger use too (README, curation rules): created_at to the millisecond, the later lifecycle
state, the newer rules' version, then the records' contents (text as bytes, nulls last), the
latest curation of equal contents, and last the sub-millisecond digits. Records equal under it
are identical, so the choice never depends on which hour was (re)processed last, and a rerun or
backfill with the same inputs leaves the view unchanged. Its rows are the current state, as in
the Postgres table.

The view also hides the seconds in which a rerun's new files and its previous files of one hour
are both in S3 (between its manifest swap and the deletion of the old files): equal records
collapse to one. Readers that list files through the manifests
(lake/reader.py, the lake query layer) never see both.

One text for both engines: ANSI window function, CASE, date_trunc('millisecond', ...), explicit
NULLS LAST (the engines' default null orders differ)."""

from __future__ import annotations

from wallet_lake.contracts.ordering import PARTITION_COLUMN, lake_order_by_sql
from wallet_lake.contracts.schema import CURATED_COLUMNS

LATEST_VIEW_NAME = "curated_payments_latest"
# The relation LATEST_VIEW_SQL reads: a table, view or CTE with the curated columns.
CURATED_RELATION = "curated_payments"

_COLUMNS = ", ".join(CURATED_COLUMNS)

# The order that picks a payment's latest record (first row wins).
LATEST_ORDER_SQL = lake_order_by_sql()

LATEST_VIEW_SQL = f"""
SELECT {_COLUMNS}
FROM (
    SELECT {_COLUMNS},
           row_number() OVER (
               PARTITION BY {PARTITION_COLUMN}
               ORDER BY {LATEST_ORDER_SQL}
           ) AS record_rank
    FROM {CURATED_RELATION}
) AS ranked_records
WHERE record_rank = 1
""".strip()

CREATE_LATEST_VIEW_SQL = f"CREATE OR REPLACE VIEW {LATEST_VIEW_NAME} AS\n{LATEST_VIEW_SQL}"


def latest_view_sql(relation: str = CURATED_RELATION) -> str:
    """LATEST_VIEW_SQL over another relation name (e.g. a schema-qualified table)."""
    return LATEST_VIEW_SQL.replace(f"FROM {CURATED_RELATION}\n", f"FROM {relation}\n")


# --- Bounded: the latest view over the dts of one range (lake/scan_plan.py) ----------------------
# Relations the engine registers: the range's compacted rows (one per payment and dt already),
# its hour files' rows (deduplicated per payment and dt here), and (payment_id, dt) of later
# records from the movers index and from files past the range. A row is its payment's latest
# unless the payment has a record on a later dt: created_at orders records first and dt is its
# date, so a later dt always holds the later record.
DAY_RECORDS = "lake_day_files"
HOUR_RECORDS = "lake_hour_files"
LATER_SOURCES = ("lake_movers", "lake_presence_days", "lake_presence_hours")
# The range's records, one per payment and dt (a statement may read it as curated_payments).
RANGE_RECORDS = CURATED_RELATION
LATER_RECORDS = "lake_later_records"
LAST_DTS = "lake_last_dts"
ROWS_FROM_PARAM = "lake_rows_from"


def bounded_latest_ctes(*, range_rows_are_later: bool) -> list[tuple[str, str]]:
    """(name, SELECT) of the CTEs that define LATEST_VIEW_NAME over the bounded relations;
    `range_rows_are_later`: the range's rows of dts >= %(lake_rows_from)s count as later records
    (scan_plan.ScanPlan.rows_from)."""
    later = [f"SELECT payment_id, dt FROM {name}" for name in LATER_SOURCES]
    if range_rows_are_later:
        later.append(f"SELECT payment_id, dt FROM {RANGE_RECORDS} WHERE dt >= %({ROWS_FROM_PARAM})s")
    return [
        (RANGE_RECORDS, f"""
SELECT {_COLUMNS} FROM {DAY_RECORDS}
UNION ALL
SELECT {_COLUMNS}
FROM (
    SELECT {_COLUMNS},
           row_number() OVER (
               PARTITION BY {PARTITION_COLUMN}, dt
               ORDER BY {LATEST_ORDER_SQL}
           ) AS record_rank
    FROM {HOUR_RECORDS}
) AS ranked_records
WHERE record_rank = 1""".strip()),
        (LATER_RECORDS, "\nUNION ALL\n".join(later)),
        # Each payment's last dt with a record, then an equality join: a NOT EXISTS with the
        # inequality inside was several times slower on DuckDB (docs/benchmarks.md, "Lake").
        (LAST_DTS, f"SELECT {PARTITION_COLUMN}, max(dt) AS last_dt FROM {LATER_RECORDS} GROUP BY {PARTITION_COLUMN}"),
        (LATEST_VIEW_NAME, f"""
SELECT {", ".join(f"r.{c}" for c in CURATED_COLUMNS)}
FROM {RANGE_RECORDS} AS r
LEFT JOIN {LAST_DTS} AS l ON l.{PARTITION_COLUMN} = r.{PARTITION_COLUMN}
WHERE l.last_dt IS NULL OR l.last_dt <= r.dt""".strip()),
    ]
