"""Did a published landing hour reach Postgres? Every curated payment_id of one version of the
hour (its manifest's, read through lake/reader.py with pyarrow) must be in curated_payments with
a created_at at least as new as curated. What the Postgres asset checks once the sink caught up;
no Dagster here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from wallet_lake.lake.reader import curated_table, published_manifest
from wallet_lake.lake.store import LakeStore
from wallet_lake.serving import ledger

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_VERIFY_CHUNK = 50_000  # payment_ids per query


def floor_millis(ts: datetime) -> datetime:
    """The instant the sink stores for a curated timestamp (Connect Timestamps carry milliseconds)."""
    return _EPOCH + ((ts - _EPOCH) // _MS) * _MS


def stale_or_missing(expected: dict[str, datetime], found: dict[str, datetime]) -> list[str]:
    """payment_ids absent from Postgres or stored with an older created_at than curated. Pure."""
    return sorted(pid for pid, created in expected.items() if pid not in found or found[pid] < floor_millis(created))


@dataclass
class HourVerified:
    hour: datetime
    curation_run_id: str | None  # the curation whose rows were checked (the manifest read)
    expected: int  # curated payment_ids of the hour
    missing: list[str]  # of those, absent from Postgres or older there (sorted)
    by_dt: dict[date, int]  # the ledger's `loaded`, per dt of the rows in Postgres
    touched_dts: set[date] = field(default_factory=set)  # dts of the hour's rows in Postgres
    verified_at: datetime | None = None  # the database's clock when the rows were read


def verify_hour(conn, store: LakeStore, hour: datetime) -> HourVerified:
    """Compare the hour's curated payment_ids with the rows Postgres holds (`conn`: psycopg)."""
    manifest = published_manifest(store, hour)
    table = curated_table(store, manifest).select(["payment_id", "created_at"])
    expected = dict(zip(table.column("payment_id").to_pylist(), table.column("created_at").to_pylist()))
    ids = list(expected)
    found: dict[str, datetime] = {}
    found_dt: dict[str, date] = {}
    for i in range(0, len(ids), _VERIFY_CHUNK):
        chunk = ids[i : i + _VERIFY_CHUNK]
        for pid, created, day in conn.execute("SELECT payment_id, created_at, dt FROM curated_payments WHERE payment_id = ANY(%s)", (chunk,)):
            found[pid] = created
            found_dt[pid] = day
    verified_at = conn.execute(ledger.CLOCK_SQL).fetchone()[0]
    missing = stale_or_missing(expected, found)
    return HourVerified(
        hour=hour, curation_run_id=manifest.get("run_id"), expected=len(expected), missing=missing,
        by_dt=ledger.loaded_by_dt(expected, found_dt, missing), touched_dts=set(found_dt.values()), verified_at=verified_at,
    )
