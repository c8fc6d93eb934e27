"""Views over the curated Parquet of the lake, as SQL text that DuckDB and Athena (Trino) read alike.

The lake keeps every curated record a landing hour produced, so one payment can have several
(its APPROVED record in one dt partition, its REFUNDED record days later in another).
`curated_payments_latest` keeps one record per payment_id, chosen as the curation dedupe and the
Postgres no-regression trigger choose (README, curation rules): the latest created_at, then the
later lifecycle state (contracts.lifecycle.LIFECYCLE_RANK). A remaining tie (two landing hours
with records of one payment at the same instant and rank) is broken by the records' contents:
status, amount_cents, currency, merchant_id, then the optional columns, each descending with
nulls last; only records equal in all of these are then ordered by curated_version and
processed_at (newest first), which cannot change what a reader sees. So the choice never depends
on which hour was (re)processed last, and a rerun or backfill leaves the view unchanged. Its rows
are the current state, as in the Postgres table.

The view also hides the seconds in which a rerun's new files and its previous files of one hour
are both in S3 (between its manifest swap and the deletion of the old files): equal records
collapse to one. Readers that list files through the manifests
(lake.curation_run.current_curated_keys) never see both.

One text for both engines: ANSI window function, CASE, explicit NULLS LAST (the engines' default
null orders differ)."""

from __future__ import annotations

from wallet_lake.contracts.lifecycle import LIFECYCLE_RANK
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_FIELDS

LATEST_VIEW_NAME = "curated_payments_latest"
# The relation LATEST_VIEW_SQL reads: a table, view or CTE with the curated columns.
CURATED_RELATION = "curated_payments"

LIFECYCLE_RANK_SQL = (
    "CASE status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in LIFECYCLE_RANK.items())
    + " ELSE -1 END"
)

_COLUMNS = ", ".join(CURATED_COLUMNS)

# The order that picks a payment's latest record (first row wins).
_CONTENT_TIE_BREAK = ("status", "amount_cents", "currency", "merchant_id") + tuple(
    f.name for f in CURATED_FIELDS
    if f.nullable and f.name not in ("authorized_to_complete_ms",)  # derived from two listed columns
)
LATEST_ORDER_SQL = ", ".join(
    ["created_at DESC", f"{LIFECYCLE_RANK_SQL} DESC"]
    + [f"{c} DESC NULLS LAST" for c in _CONTENT_TIE_BREAK]
    + ["curated_version DESC", "processed_at DESC"]
)

LATEST_VIEW_SQL = f"""
SELECT {_COLUMNS}
FROM (
    SELECT {_COLUMNS},
           row_number() OVER (
               PARTITION BY payment_id
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
