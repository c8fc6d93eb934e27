"""Reading and removing pipeline ledger rows in tests (plain SQL, not the pipeline's code)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def ledger_of(postgres, hour: datetime) -> dict[str, tuple[int, str | None]]:
    """{stage: (row_count, curation_run_id)} of one landing hour."""
    with postgres.connect() as conn:
        rows = conn.execute(
            "SELECT stage, row_count, curation_run_id FROM pipeline_ledger WHERE landing_hour = %s", (hour,)
        ).fetchall()
    return {stage: (n, curation) for stage, n, curation in rows}


def forget_hours(postgres, hours: Iterable[datetime]) -> None:
    """Remove the ledger rows of a test's landing hours."""
    hours = sorted(set(hours))
    with postgres.connect() as conn:
        conn.execute("DELETE FROM pipeline_ledger_loaded_dts WHERE landing_hour = ANY(%s)", (hours,))
        conn.execute("DELETE FROM pipeline_ledger WHERE landing_hour = ANY(%s)", (hours,))


def record_by_hand(postgres, hour: datetime, curation_run_id: str, **figures: int) -> None:
    """Ledger rows as raw_payments (raw_lines) and curated_payments (curated, quarantined,
    duplicates_removed) would record them, for an hour a test curated by hand."""
    with postgres.connect() as conn:
        for stage, n in figures.items():
            conn.execute(
                "INSERT INTO pipeline_ledger (landing_hour, stage, row_count, curation_run_id, run_id) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (landing_hour, stage) DO UPDATE SET row_count = EXCLUDED.row_count, curation_run_id = EXCLUDED.curation_run_id",
                (hour, stage, n, None if stage == "raw_lines" else curation_run_id, "by-hand"),
            )
