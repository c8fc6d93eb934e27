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
