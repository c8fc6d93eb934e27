"""Timestamps keep their UTC meaning from the curated row to Postgres: the same instants (to the
millisecond the Connect Timestamp type carries), the same UTC wall-clock text in any session time
zone, and dt/hour as curated, also for events a millisecond either side of midnight."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from wallet_lake_tests.integration.sink_support import (
    curated_row, ensure_sink_running, publish_rows, random_day, rows_prefix_fixture, wait_for_shared_sink,
)

pytestmark = pytest.mark.integration
UTC = timezone.utc


prefix = rows_prefix_fixture("utc")


def test_postgres_holds_the_curated_utc_instants_and_wall_clock(stack_resources, prefix):
    res = stack_resources
    ensure_sink_running(res)
    d = random_day()
    before_midnight = datetime(d.year, d.month, d.day, 23, 59, 59, 999_000, tzinfo=UTC)
    rows = {
        f"{prefix}late": (curated_row(f"{prefix}late", before_midnight), before_midnight.strftime("%Y-%m-%dT23:59:59.999"), d, 23),
        f"{prefix}micro": (curated_row(f"{prefix}micro", datetime(d.year, d.month, d.day, 0, 0, 0, 1_999, tzinfo=UTC)),
                           d.strftime("%Y-%m-%dT00:00:00.001"), d, 0),  # 1.999 ms: stored as 1 ms
        f"{prefix}dst": (curated_row(f"{prefix}dst", datetime(2025, 3, 30, 1, 30, tzinfo=UTC)), "2025-03-30T01:30:00.000", date(2025, 3, 30), 1),
    }
    result = publish_rows(res["kafka"], [r for r, *_ in rows.values()])
    wait_for_shared_sink(res, result.end_offsets)

    for tz in ("UTC", "America/New_York", "Pacific/Kiritimati"):
        with res["postgres"].connect() as conn:
            conn.execute(f"SET TIME ZONE '{tz}'")
            got = {
                r[0]: r[1:]
                for r in conn.execute(
                    "SELECT payment_id, created_at, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), dt, hour, "
                    "to_char(authorized_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') FROM curated_payments WHERE payment_id = ANY(%s)",
                    (list(rows),),
                ).fetchall()
            }
        for pid, (row, utc_text, dt, hour) in rows.items():
            created, text, got_dt, got_hour, _ = got[pid]
            assert created == row["created_at"].replace(microsecond=row["created_at"].microsecond // 1000 * 1000), (tz, pid)
            assert (text, got_dt, got_hour) == (utc_text, dt, hour), (tz, pid)
        assert got[f"{prefix}late"][4] == "23:59:58.499"  # authorized_at = created_at - 1.5 s
