"""Hand-built curated hours for tests, published the way the pipeline publishes them: Parquet as
the curated job writes it (one file per (dt, merchant_id), the partition columns in the path
only, run-scoped names), made current by the production write-audit-publish (lake/wap.py), so the
hour's manifest lists them with their sizes. Readers that go through manifests (the lake query
layer) see exactly these files."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from wallet_lake.contracts.landing import CURATED_PREFIX, hour_token, manifest_key
from wallet_lake.contracts.schema import CURATED_PARTITION_COLUMNS, arrow_schema
from wallet_lake.lake import wap
from wallet_lake.lake.manifests import HourStats
from wallet_lake.lake.store import LakeStore

FILE_SCHEMA = pa.schema([f for f in arrow_schema() if f.name not in CURATED_PARTITION_COLUMNS])


def far_landing_hour() -> dt.datetime:
    """A random landing hour of the 22nd century: no pipeline run or other test curates it."""
    start = dt.datetime(2101, 1, 1, tzinfo=dt.timezone.utc)
    return start + dt.timedelta(hours=random.Random(uuid.uuid4().int).randrange(24 * 365 * 98))


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{c: r[c] for c in FILE_SCHEMA.names} for r in rows], schema=FILE_SCHEMA), path)
    return path


def hour_uploads(hour: dt.datetime, rows: list[dict], run_id: str, folder: Path) -> list[wap.Upload]:
    """(local Parquet file, run-scoped lake key) per (dt, merchant_id) of the rows."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dt"].isoformat(), r["merchant_id"]), []).append(r)
    uploads = []
    for i, ((day, merchant), part) in enumerate(sorted(groups.items())):
        local = write_parquet(folder / f"{run_id}-{i}.parquet", part)
        # Escaped as Spark escapes a partition value (a '/' in an id is %2F).
        uploads.append((local, f"{CURATED_PREFIX}dt={day}/merchant_id={quote(merchant, safe='')}/lh-{hour_token(hour)}-{run_id}-000.parquet"))
    return uploads


def hour_stats(hour: dt.datetime, uploads: list[wap.Upload], rows: list[dict], run_id: str) -> HourStats:
    """The figures of a clean hour (every line curated) that publish_hour's audit passes."""
    return HourStats(
        landing_hour=hour.isoformat(), run_id=run_id, processed_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        raw_lines=len(rows), curated_rows=len(rows), curated_files=len(uploads), curated_bytes=sum(p.stat().st_size for p, _ in uploads),
        curated_keys=[k for _, k in uploads], file_bytes={k: p.stat().st_size for p, k in uploads},
    )


def publish_rows(store: LakeStore, hour: dt.datetime, rows: list[dict], run_id: str | None = None) -> list[str]:
    """Publish `rows` as landing hour `hour`'s curated files; the keys to delete afterwards (its
    files and its manifest; a previous version's files are deleted by the publish itself)."""
    run_id = run_id or f"t{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as tmp:
        uploads = hour_uploads(hour, rows, run_id, Path(tmp))
        stats = hour_stats(hour, uploads, rows, run_id)
        wap.publish_hour(store, stats, uploads)
    assert stats.published, stats.failed_checks
    return [k for _, k in uploads] + [manifest_key(hour)]
