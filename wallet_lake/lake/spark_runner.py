"""The Spark side of a curation run: find the landing hours' raw objects, and run the jobs that
apply transforms.curate.curate() (the same chain the unit tests call) to them.

0. A cheap first job counts the lines of every input split (text only, no JSON): the hour's
   `raw_lines`, and the offsets that turn a row's position into its line number.
1. The curated job: curate() over every line of every hour (dedupe per landing hour), written as
   Parquet partitioned by landing hour, dt, merchant_id: one file per (hour, dt, merchant_id),
   more only past `max_records_per_file`. Observations tapped into curate()'s chain count, in
   the same pass, the duplicates each hour removed and the positions of the invalid lines.
2. The quarantine job reads the text again, keeps only the lines at those positions, numbers them
   and writes curate()'s quarantine of them: one quarantine file per hour.

Spark reads the raw objects where they are (a folder lake, or s3:// on Glue with `direct`), or
from local copies (S3 through a local Spark, e.g. the moto stack)."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from wallet_lake.contracts.landing import hour_token
from wallet_lake.contracts.schema import CURATED_PARTITION_COLUMNS
from wallet_lake.lake.store import LakeStore, S3LakeStore, landing_objects
from wallet_lake.transforms import curate as rules

BATCH_COLUMN = "landing_hour"  # the landing hour token, e.g. 20261124T13, as a batch column


@dataclass
class HourInput:
    token: str
    hour: datetime
    paths: list[str] = field(default_factory=list)  # what Spark reads
    keys: dict[str, str] = field(default_factory=dict)  # Spark path -> source object key
    raw_objects: int = 0
    raw_bytes: int = 0


@dataclass
class SparkCounts:
    """What the jobs counted, per hour token."""

    lines: dict[str, int]
    duplicates: dict[str, int]


def lake_uri(store: LakeStore, key: str) -> str:
    """The Hadoop URI of a lake key (s3://bucket/key, or an absolute path for a folder lake)."""
    if isinstance(store, S3LakeStore):
        return f"s3://{store.bucket}/{key}"
    return str(Path(store.root) / key)


def find_inputs(store: LakeStore, hours: Sequence[datetime], scratch: Path, *, direct: bool, io_threads: int) -> list[HourInput]:
    """The hours' landing objects; copied under `scratch` unless Spark reads them `direct`ly."""
    inputs = [HourInput(hour_token(h), h) for h in hours]
    listed = {i.token: landing_objects(store, i.hour) for i in inputs}
    todo = []
    for i in inputs:
        for n, o in enumerate(listed[i.token]):
            i.raw_objects += 1
            i.raw_bytes += o.size
            path = lake_uri(store, o.key) if direct else str(scratch / "raw" / i.token / f"{n:05d}.ndjson")
            i.paths.append(path)
            i.keys[path] = o.key
            if not direct:
                todo.append((o.key, Path(path)))
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, io_threads)) as pool:
            list(pool.map(lambda t: store.download(t[0], t[1]), todo))
    return inputs


def _source_of(spark_file: str, keys: dict[str, str]) -> str:
    """The source object of a file as input_file_name() renders it (a URI, %-escaped)."""
    name = unquote(spark_file)
    for path, key in keys.items():
        bare = path.split("://", 1)[-1]
        if name.endswith(bare):
            return key
    raise RuntimeError(f"Spark read {spark_file!r}, which is none of the inputs")


@contextmanager
def _input_splits(spark: SparkSession, split_bytes: int):
    """Input splits of `split_bytes` for the curation's reads (restored afterwards)."""
    settings = {"spark.sql.files.maxPartitionBytes": str(split_bytes), "spark.sql.files.openCostInBytes": str(4 << 20)}
    before = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _read_raw(spark: SparkSession, inputs: Sequence[HourInput]) -> DataFrame:
    """value, landing_hour and `_pos` (unique per row and equal between two reads of the same
    inputs: partition index << 33 | row index in the partition)."""
    frames = [spark.read.text(i.paths).withColumn(BATCH_COLUMN, F.lit(i.token)) for i in inputs if i.paths]
    return reduce(DataFrame.unionByName, frames).withColumn("_pos", F.monotonically_increasing_id())


def _count_splits(spark: SparkSession, inputs: Sequence[HourInput]) -> list:
    """Job 0: per (hour, file, split): lines and first position (text only)."""
    return (
        _read_raw(spark, inputs)
        .select(BATCH_COLUMN, F.input_file_name().alias("_file"), F.input_file_block_start().alias("_block"), "_pos")
        .groupBy(BATCH_COLUMN, "_file", "_block")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("_pos").alias("first_pos"))
        .collect()
    )


def _write_curated(spark, inputs, out: str, processed_at: datetime, accepted_statuses: Sequence[str],
                   max_records_per_file: int) -> tuple[Observation, Observation]:
    """Job 1: curate() over every line, written. The observations hold the positions of every
    invalid line (JSON list) and, per hour, the duplicates removed."""
    raw = _read_raw(spark, inputs).withColumn("source_object", F.lit("")).withColumn("line_number", F.lit(0))
    obs_invalid = Observation(f"curation_{secrets.token_hex(4)}")
    obs_dup = Observation(f"duplicates_{secrets.token_hex(4)}")
    dup = F.col(rules.DEDUPE_RANK) > 1

    def tap(stage: str, frame: DataFrame) -> DataFrame:
        if stage == rules.FLAGGED:
            return frame.observe(obs_invalid, F.to_json(F.collect_list(F.when(~F.col("is_valid"), F.col("_pos")))).alias("invalid"))
        if stage == rules.RANKED:
            per_hour = [F.sum(F.when(dup & (F.col(BATCH_COLUMN) == i.token), 1).otherwise(0)).alias(i.token) for i in inputs]
            return frame.observe(obs_dup, F.lit(0).alias("_"), *per_hour)
        return frame

    curated = rules.curate(raw, processed_at=processed_at, accepted_statuses=accepted_statuses,
                           batch_columns=[BATCH_COLUMN], tap=tap).curated
    parts = [BATCH_COLUMN, *CURATED_PARTITION_COLUMNS]
    curated.repartition(*parts).write.option("maxRecordsPerFile", max_records_per_file).partitionBy(*parts).parquet(out)
    return obs_invalid, obs_dup


def _write_quarantine(spark, inputs, out: str, processed_at: datetime, invalid: list[int], splits: list,
                      accepted_statuses: Sequence[str]) -> None:
    """Job 2: curate()'s quarantine of only the lines at `invalid` positions; line numbers from
    the split counts."""
    by_file: dict[str, list] = {}
    for r in splits:
        by_file.setdefault(r["_file"], []).append(r)
    keys = {p: k for i in inputs for p, k in i.keys.items()}
    offsets = []
    for f, rows in by_file.items():
        before = 0
        source = _source_of(f, keys)
        for r in sorted(rows, key=lambda r: r["_block"]):
            offsets.append((f, r["_block"], source, before - r["first_pos"] + 1))  # line = pos + this
            before += r["lines"]
    offs = spark.createDataFrame(offsets, "_file string, _block long, source_object string, _shift long")
    wanted = spark.createDataFrame([(p,) for p in invalid], "_pos long")
    raw = _read_raw(spark, inputs).join(F.broadcast(wanted), "_pos")
    raw = raw.withColumn("_file", F.input_file_name()).withColumn("_block", F.input_file_block_start())
    raw = raw.join(F.broadcast(offs), ["_file", "_block"])
    raw = raw.withColumn("line_number", F.col("_pos") + F.col("_shift"))
    q = rules.curate(raw, processed_at=processed_at, accepted_statuses=accepted_statuses, batch_columns=[BATCH_COLUMN]).quarantine
    q.repartition(BATCH_COLUMN).write.partitionBy(BATCH_COLUMN).parquet(out)


def run_jobs(spark: SparkSession, inputs: Sequence[HourInput], out: str, processed_at: datetime, *,
             accepted_statuses: Sequence[str], split_bytes: int, max_records_per_file: int) -> SparkCounts:
    """Jobs 0-2 over the hours' inputs; Spark writes under `out` (curated/, quarantine/)."""
    counts = SparkCounts({i.token: 0 for i in inputs}, {i.token: 0 for i in inputs})
    if not any(i.paths for i in inputs):
        return counts
    with _input_splits(spark, split_bytes):
        splits = _count_splits(spark, inputs)
        for r in splits:
            counts.lines[r[BATCH_COLUMN]] += r["lines"]
        obs_invalid, obs_dup = _write_curated(spark, inputs, f"{out}/curated", processed_at, accepted_statuses, max_records_per_file)
        invalid = json.loads(obs_invalid.get["invalid"] or "[]")
        counts.duplicates.update({k: int(v or 0) for k, v in obs_dup.get.items() if k != "_"})
        if invalid:
            _write_quarantine(spark, inputs, f"{out}/quarantine", processed_at, invalid, splits, accepted_statuses)
    return counts
