"""Daily compaction of the curated lake, and the movers index: the read-optimized lake that
bounded lake queries use (lake/scan_plan.py says how they choose files).

- compact_day: a closed dt's hour files (one per landing hour and merchant) become one file per
  merchant under curated/payments_daily/, holding each payment's latest record of that dt
  (contracts.ordering.LATEST_FIRST, the order every store uses). The day manifest
  (_manifests/curated/payments_daily/dt=D.json) names them and the digest of the hour files they
  were made from; one conditional PUT swaps a new version in, then the files it supersedes are
  deleted. Readers use the day files only while the dt's digest still matches, so a late file or
  a rerun of an hour that wrote to the dt sends readers back to the hour files, never to stale
  rows, until the next compaction.
- build_movers: (payment_id, dt) of every payment whose records span several dts, one small
  Parquet file, with the digest of every dt it was built over; swapped in the same way.

The hour files stay: they are what each landing hour curated (publish, verification, replay and
reruns read them). pyarrow and DuckDB only, never pyspark."""

from __future__ import annotations

import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from urllib.parse import quote

from wallet_lake.contracts.landing import (
    CURATED_PREFIX, DAILY_PREFIX, DAY_MANIFEST_PREFIX, MOVERS_MANIFEST_KEY, MOVERS_PREFIX, day_manifest_key,
)
from wallet_lake.contracts.ordering import PARTITION_COLUMN, lake_order_by_sql
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_PARTITION_COLUMNS
from wallet_lake.lake import scan_plan
from wallet_lake.lake.reader import ManifestIndex, partition_values
from wallet_lake.lake.scan_plan import DAY_MANIFEST_FORMAT, MOVERS_MANIFEST_FORMAT, LakeFile
from wallet_lake.lake.store import ConditionalWriteFailed, LakeStore

IO_THREADS = 16
PARQUET_COMPRESSION = "zstd"


class CompactionConflict(RuntimeError):
    """Another compaction changed the manifest since this one read it; this one wrote nothing
    current (its files are removed) and the other one's version stays whole."""


@dataclass
class DayResult:
    dt: str
    source_files: int = 0
    rows_in: int = 0
    rows_out: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class CompactionResult:
    days: list[DayResult] = field(default_factory=list)
    removed_days: list[str] = field(default_factory=list)
    movers_rows: int | None = None  # None: the index was current, not rebuilt
    movers_seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "days_compacted": len(self.days),
            "rows_in": sum(d.rows_in for d in self.days),
            "rows_out": sum(d.rows_out for d in self.days),
            "files_written": sum(d.files for d in self.days),
            "removed_days": self.removed_days,
            "movers_rows": self.movers_rows,
            "movers_seconds": round(self.movers_seconds, 2),
            "compaction_seconds": round(sum(d.seconds for d in self.days), 2),
        }


def _read_files(store: LakeStore, files: list[LakeFile], prefix: str, columns: list[str] | None = None):
    """The files as one Arrow table with the curated columns (`columns`: a subset); dt and
    merchant_id come from the Hive path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wallet_lake.contracts.schema import arrow_schema

    schema = arrow_schema()
    wanted = [f for f in schema if columns is None or f.name in columns]

    def read(f: LakeFile):
        table = pq.read_table(pa.BufferReader(store.get_bytes(f.key)),
                              columns=[c.name for c in wanted if c.name not in CURATED_PARTITION_COLUMNS])
        parts = partition_values(f.key[len(prefix):].rsplit("/", 1)[0])
        values = {"dt": date.fromisoformat(parts["dt"]), "merchant_id": parts["merchant_id"]}
        return pa.Table.from_arrays(
            [pa.array([values[c.name]] * table.num_rows, c.type) if c.name in values else table.column(c.name).cast(c.type)
             for c in wanted],
            schema=pa.schema(wanted),
        )

    with ThreadPoolExecutor(max_workers=max(1, min(IO_THREADS, len(files)))) as pool:
        tables = list(pool.map(read, files))
    return pa.concat_tables(tables) if tables else pa.schema(wanted).empty_table()


def latest_per_payment(table):
    """Each payment's latest record among `table`'s rows (one dt), ordered by merchant then
    payment (so one merchant's rows are contiguous, and row groups are narrow in payment_id)."""
    import duckdb

    cols = ", ".join(CURATED_COLUMNS)
    con = duckdb.connect(config={"threads": 2})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("records", table)
        return con.sql(
            f"SELECT {cols} FROM records "
            f"QUALIFY row_number() OVER (PARTITION BY {PARTITION_COLUMN} ORDER BY {lake_order_by_sql()}) = 1 "
            f"ORDER BY merchant_id, {PARTITION_COLUMN}"
        ).to_arrow_table()
    finally:
        con.close()


def _parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression=PARQUET_COMPRESSION)
    return buf.getvalue()


def _read_json(store: LakeStore, key: str) -> tuple[dict, str | None]:
    found = store.get_with_etag(key)
    return (json.loads(found[0]), found[1]) if found is not None else ({}, None)


def _swap(store: LakeStore, key: str, body: dict, etag: str | None, new_files: list[str]) -> None:
    """Conditional PUT of a manifest; on a conflict this run's files are removed."""
    try:
        store.put_bytes_if(key, json.dumps(body, indent=1).encode(), etag)
    except ConditionalWriteFailed as exc:
        store.delete(new_files)
        raise CompactionConflict(f"{key}: {exc}") from exc


def compact_day(store: LakeStore, day: date, hour_files: list[LakeFile], *, run_id: str | None = None, log=None) -> DayResult:
    """Compact one dt from its current hour files (module docstring)."""
    import pyarrow.compute as pc

    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex[:12]
    result = DayResult(day.isoformat(), source_files=len(hour_files))
    previous, etag = _read_json(store, day_manifest_key(day))
    table = _read_files(store, hour_files, CURATED_PREFIX)
    result.rows_in = table.num_rows
    latest = latest_per_payment(table)
    result.rows_out = latest.num_rows
    keep = [c for c in CURATED_COLUMNS if c not in CURATED_PARTITION_COLUMNS]
    uploads: list[tuple[str, bytes]] = []
    for i, merchant in enumerate(sorted(set(latest.column("merchant_id").to_pylist()))):
        rows = latest.filter(pc.equal(latest.column("merchant_id"), merchant)).select(keep)
        key = f"{DAILY_PREFIX}dt={day.isoformat()}/merchant_id={quote(merchant, safe='')}/day-{day:%Y%m%d}-{run_id}-{i:05d}.parquet"
        uploads.append((key, _parquet_bytes(rows)))
    with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:
        list(pool.map(lambda u: store.put_bytes(*u), uploads))
    body = {
        "format": DAY_MANIFEST_FORMAT, "dt": day.isoformat(), "digest": scan_plan.digest(hour_files),
        "source_files": len(hour_files), "rows_in": result.rows_in, "rows": result.rows_out,
        "files": [k for k, _ in uploads], "file_bytes": {k: len(b) for k, b in uploads},
        "run_id": run_id, "compacted_at": datetime.now(timezone.utc).isoformat(),
    }
    _swap(store, day_manifest_key(day), body, etag, [k for k, _ in uploads])
    store.delete(previous.get("files", []))  # readers of the previous version retry (503) if they still read them
    result.files, result.bytes = len(uploads), sum(len(b) for _, b in uploads)
    result.seconds = time.perf_counter() - started
    if log:
        log.info(f"dt={day}: {result.source_files} hour files, {result.rows_in} records -> {result.files} day files, "
                 f"{result.rows_out} records ({result.seconds:.1f} s)")
    return result


def remove_day(store: LakeStore, day_manifest: dict) -> None:
    """A compacted dt that no hour file names any more (every hour of it was re-curated away):
    its manifest first, so no reader finds files that are about to go."""
    store.delete([day_manifest_key(date.fromisoformat(day_manifest["dt"]))])
    store.delete(day_manifest.get("files", []))


def build_movers(store: LakeStore, plan: scan_plan.ScanPlan, digests: dict[date, str], *, run_id: str | None = None, log=None) -> int:
    """The movers index over the files of `plan` (every dt), recorded with `digests` (the hour
    manifests' digests the plan was made from). Returns its row count."""
    import duckdb

    run_id = run_id or uuid.uuid4().hex[:12]
    previous, etag = _read_json(store, MOVERS_MANIFEST_KEY)
    cols = ["payment_id", "dt"]
    ids = _read_files(store, plan.day_files, DAILY_PREFIX, cols)
    hour_ids = _read_files(store, plan.hour_files, CURATED_PREFIX, cols)
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("day_ids", ids)
        con.register("hour_ids", hour_ids)
        movers = con.sql(
            "WITH present AS (SELECT DISTINCT payment_id, dt FROM (SELECT * FROM day_ids UNION ALL SELECT * FROM hour_ids)) "
            "SELECT payment_id, dt FROM present WHERE payment_id IN "
            "(SELECT payment_id FROM present GROUP BY payment_id HAVING count(*) > 1) ORDER BY dt, payment_id"
        ).to_arrow_table()
    finally:
        con.close()
    key = f"{MOVERS_PREFIX}movers-{run_id}.parquet"
    data = _parquet_bytes(movers)
    store.put_bytes(key, data)
    body = {
        "format": MOVERS_MANIFEST_FORMAT, "file": key, "file_bytes": len(data), "rows": movers.num_rows,
        "dt_digests": {d.isoformat(): h for d, h in sorted(digests.items())},
        "run_id": run_id, "built_at": datetime.now(timezone.utc).isoformat(),
    }
    _swap(store, MOVERS_MANIFEST_KEY, body, etag, [key])
    if previous.get("file"):
        store.delete([previous["file"]])
    if log:
        log.info(f"movers index: {movers.num_rows} (payment, dt) rows over {len(digests)} dts")
    return movers.num_rows


def compact_lake(store: LakeStore, *, closed_before: date, log=None) -> CompactionResult:
    """Compact every dt before `closed_before` whose day manifest is missing or stale, drop day
    manifests of dts that no longer exist, then rebuild the movers index if any dt's digest
    differs from the one it was built over. Idempotent: a second call with no new hour files
    does nothing."""
    result = CompactionResult()
    hours = ManifestIndex(store).current()
    days = {m["dt"]: m for m in ManifestIndex(store, prefix=DAY_MANIFEST_PREFIX).current()}
    by_dt = scan_plan.hour_files_by_dt(hours)
    digests = scan_plan.dt_digests(by_dt)
    for d in sorted(by_dt):
        if d < closed_before and days.get(d.isoformat(), {}).get("digest") != digests[d]:
            result.days.append(compact_day(store, d, by_dt[d], log=log))
    for name, m in days.items():
        if date.fromisoformat(name) not in by_dt:
            remove_day(store, m)
            result.removed_days.append(name)
    movers, _ = _read_json(store, MOVERS_MANIFEST_KEY)
    if movers.get("dt_digests") != {d.isoformat(): h for d, h in sorted(digests.items())} or movers.get("format") != MOVERS_MANIFEST_FORMAT:
        started = time.perf_counter()
        days_now = ManifestIndex(store, prefix=DAY_MANIFEST_PREFIX).current()
        everything = scan_plan.plan_scan(hours, days_now, None, min(by_dt), max(by_dt)) if by_dt else scan_plan.ScanPlan(date.min, date.min)
        result.movers_rows = build_movers(store, everything, digests, log=log)
        result.movers_seconds = time.perf_counter() - started
    return result

