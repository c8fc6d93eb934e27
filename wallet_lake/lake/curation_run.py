"""Curate one landing hour end to end against a LakeStore (the I/O shell around transforms.curate).

Reads the hour's raw objects, runs the pure rules in Spark, writes curated Parquet (one file per
dt/merchant_id partition the hour touched) and the quarantine, then swaps the hour's manifest.
Files are named after the landing hour, so a rerun overwrites its own files, and the previous
manifest says which of its old files to delete: a rerun replaces exactly that hour's rows."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from wallet_lake.contracts.landing import (
    CURATED_PREFIX,
    QUARANTINE_PREFIX,
    hour_token,
    landing_prefix,
    manifest_key,
)
from wallet_lake.lake.store import LakeStore
from wallet_lake.transforms.curate import curate


@dataclass
class HourStats:
    landing_hour: str
    raw_objects: int = 0
    raw_lines: int = 0
    curated_rows: int = 0
    quarantined_rows: int = 0
    duplicates_removed: int = 0
    curated_files: int = 0
    dt_partitions: list[str] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    curated_keys: list[str] = field(default_factory=list)
    quarantine_keys: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        return self.raw_lines == self.curated_rows + self.quarantined_rows + self.duplicates_removed


def read_raw_lines(spark: SparkSession, files: dict[str, str]) -> DataFrame:
    """One row per line of the given files ({path: source object key}), with the 1-based line
    number within its file (monotonic ids follow file order within a split). File base names
    must be unique: they link Spark's input file back to its source object."""
    if not files:
        from wallet_lake.transforms.curate import RAW_INPUT_SCHEMA

        return spark.createDataFrame([], RAW_INPUT_SCHEMA)
    mapping = spark.createDataFrame([(p.rsplit("/", 1)[-1], k) for p, k in files.items()], "path string, source_object string")
    df = (
        spark.read.text(list(files))
        .withColumn("path", F.element_at(F.split(F.input_file_name(), "/"), -1))
        .withColumn("_id", F.monotonically_increasing_id())
    )
    df = df.withColumn("line_number", F.row_number().over(Window.partitionBy("path").orderBy("_id")).cast("long"))
    return df.join(F.broadcast(mapping), "path").select("source_object", "line_number", "value")


def curate_landing_hour(spark: SparkSession, store: LakeStore, hour: datetime, processed_at: datetime, log=None) -> HourStats:
    token = hour_token(hour)
    stats = HourStats(landing_hour=hour.astimezone(timezone.utc).isoformat())
    objects = [o for o in store.list(landing_prefix(hour)) if o.key.endswith(".ndjson")]
    stats.raw_objects = len(objects)
    scratch = Path(tempfile.mkdtemp(prefix=f"wl-curate-{token}-"))
    try:
        files: dict[str, str] = {}
        for i, o in enumerate(objects):
            local = scratch / "landing" / f"{i:05d}.ndjson"
            store.download(o.key, local)
            files[str(local)] = o.key
        raw = read_raw_lines(spark, files).cache()
        stats.raw_lines = raw.count()
        result = curate(raw, processed_at=processed_at)
        out = scratch / "out"
        # One file per dt/merchant_id partition: repartition on the partition columns first.
        result.curated.repartition("dt", "merchant_id").write.partitionBy("dt", "merchant_id").parquet(str(out / "curated"))
        result.quarantine.coalesce(1).write.parquet(str(out / "quarantine"))

        # Count what was actually written, not what was planned: the accounting check is
        # then about the files readers will see.
        written = spark.read.parquet(str(out / "curated")) if any((out / "curated").rglob("*.parquet")) else None
        stats.curated_rows = written.count() if written is not None else 0
        q = spark.read.parquet(str(out / "quarantine"))
        stats.quarantined_rows = q.count()
        stats.quarantine_reasons = {r["reason"]: r["count"] for r in q.select(F.explode("reasons").alias("reason")).groupBy("reason").count().collect()}
        # Duplicates counted on the validated rows themselves (rows minus distinct ids), so the
        # accounting check compares four independent counts.
        dup = result.valid.agg(F.count("*").alias("n"), F.countDistinct("payment_id").alias("ids")).first()
        stats.duplicates_removed = dup["n"] - dup["ids"]
        raw.unpersist()

        new_keys: list[str] = []
        for part_dir in sorted({p.parent for p in (out / "curated").rglob("*.parquet")}):
            rel = part_dir.relative_to(out / "curated").as_posix()  # dt=YYYY-MM-DD/merchant_id=M
            for i, f in enumerate(sorted(part_dir.glob("*.parquet"))):
                key = f"{CURATED_PREFIX}{rel}/lh-{token}-{i:03d}.parquet"
                store.put_file(key, f)
                new_keys.append(key)
        q_keys = []
        for i, f in enumerate(sorted((out / "quarantine").glob("*.parquet"))):
            key = f"{QUARANTINE_PREFIX}landing_hour={token}/part-{i:03d}.parquet"
            store.put_file(key, f)
            q_keys.append(key)
        stats.curated_keys, stats.quarantine_keys = new_keys, q_keys
        stats.curated_files = len(new_keys)
        stats.dt_partitions = sorted({k.split("/")[2] for k in new_keys})

        # Swap the manifest, then delete the previous run's files that this run did not rewrite.
        old = read_manifest(store, hour)
        store.put_bytes(manifest_key(hour), json.dumps(asdict(stats), indent=1).encode())
        stale = set(old.get("curated_keys", []) + old.get("quarantine_keys", [])) - set(new_keys) - set(q_keys)
        if stale:
            store.delete(sorted(stale))
            if log:
                log.info(f"removed {len(stale)} files of the previous run of {token}")
        return stats
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_manifest(store: LakeStore, hour: datetime) -> dict:
    """The hour's manifest, or {} when the hour was never curated."""
    data = store.get_optional(manifest_key(hour))
    return json.loads(data) if data is not None else {}


def read_curated_hour(store: LakeStore, hour: datetime) -> list[dict]:
    """Curated rows a landing hour produced (from its manifest), as Python dicts."""
    import pyarrow.parquet as pq

    manifest = read_manifest(store, hour)
    if not manifest:
        raise FileNotFoundError(f"landing hour {hour_token(hour)} has no curated manifest: materialize curated_payments first")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        for i, key in enumerate(manifest["curated_keys"]):
            local = Path(d) / f"{i}.parquet"
            store.download(key, local)
            table = pq.read_table(local)
            # dt and merchant_id live in the path (Hive partitioning), not in the file.
            parts = dict(seg.split("=", 1) for seg in key.split("/")[2:4])
            for r in table.to_pylist():
                r["dt"] = datetime.strptime(parts["dt"], "%Y-%m-%d").date()
                r["merchant_id"] = parts["merchant_id"]
                rows.append(r)
    return rows
