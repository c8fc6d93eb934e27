"""The Spark side of a curation run: find the landing hours' raw objects, and run the jobs that
apply transforms.curate.curate() (the same chain the unit tests call) to them.

1. The curated job: curate() over every line of every hour (dedupe per landing hour), written as
   Parquet partitioned by landing hour, dt, merchant_id: one file per (hour, dt, merchant_id),
   more only past `max_records_per_file`. Observations tapped into curate()'s chain count, in
   the same pass, each hour's lines, the duplicates each hour removed and the positions of the
   invalid lines.
2. Only when some line is invalid, the quarantine job reads the text again: in that one pass it
   counts the lines of every input split (which turns a position into a line number: lines of
   the file's earlier splits, plus the row's place in its split) and keeps the lines at the
   invalid positions, then writes curate()'s quarantine of them: one quarantine file per hour.

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

from pyspark.sql import DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from wallet_lake.contracts.landing import hour_token
from wallet_lake.contracts.schema import CURATED_PARTITION_COLUMNS
from wallet_lake.lake.store import LakeStore, S3LakeStore, landing_objects
from wallet_lake.transforms import curate as rules

BATCH_COLUMN = "landing_hour"  # the landing hour token, e.g. 20261124T13, as a batch column
LINES_PREFIX = "lines_"  # the curated job's observation of an hour's lines: lines_<token>


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


def _write_curated(spark, inputs, out: str, processed_at: datetime, accepted_statuses: Sequence[str],
                   max_records_per_file: int) -> tuple[Observation, Observation]:
    """Job 1: curate() over every line, written. The observations hold the positions of every
    invalid line (JSON list) and each hour's lines (LINES_PREFIX + token); and, per hour, the
    duplicates removed."""
    raw = _read_raw(spark, inputs).withColumn("source_object", F.lit("")).withColumn("line_number", F.lit(0))
    obs_invalid = Observation(f"curation_{secrets.token_hex(4)}")
    obs_dup = Observation(f"duplicates_{secrets.token_hex(4)}")
    dup = F.col(rules.DEDUPE_RANK) > 1

    def tap(stage: str, frame: DataFrame) -> DataFrame:
        if stage == rules.FLAGGED:
            # FLAGGED holds one row per line read, so these are the hours' raw_lines.
            lines = [F.count(F.when(F.col(BATCH_COLUMN) == i.token, 1)).alias(LINES_PREFIX + i.token) for i in inputs]
            return frame.observe(obs_invalid, F.to_json(F.collect_list(F.when(~F.col("is_valid"), F.col("_pos")))).alias("invalid"), *lines)
        if stage == rules.RANKED:
            per_hour = [F.sum(F.when(dup & (F.col(BATCH_COLUMN) == i.token), 1).otherwise(0)).alias(i.token) for i in inputs]
            return frame.observe(obs_dup, F.lit(0).alias("_"), *per_hour)
        return frame

    curated = rules.curate(raw, processed_at=processed_at, accepted_statuses=accepted_statuses,
                           batch_columns=[BATCH_COLUMN], tap=tap).curated
    parts = [BATCH_COLUMN, *CURATED_PARTITION_COLUMNS]
    curated.repartition(*parts).write.option("maxRecordsPerFile", max_records_per_file).partitionBy(*parts).parquet(out)
    return obs_invalid, obs_dup


def _write_quarantine(spark, inputs, out: str, processed_at: datetime, invalid: list[int],
                      accepted_statuses: Sequence[str]) -> None:
    """Job 2: curate()'s quarantine of only the lines at `invalid` positions, numbered in one text
    pass: per input split, its lines, its first position and its invalid lines; a split's line
    numbers follow the lines of the same file's earlier splits (rows of a split are numbered in
    file order, `_read_raw`)."""
    raw = _read_raw(spark, inputs)
    keys = {p: k for i in inputs for p, k in i.keys.items()}
    # inputFiles() names the files as input_file_name() does (both the path's URI).
    sources = spark.createDataFrame([(f, _source_of(f, keys)) for f in raw.inputFiles()], "_file string, source_object string")
    wanted = spark.createDataFrame([(p, True) for p in invalid], "_pos long, _wanted boolean")
    split = raw.withColumn("_file", F.input_file_name()).withColumn("_block", F.input_file_block_start())
    per_split = split.join(F.broadcast(wanted), "_pos", "left").groupBy(BATCH_COLUMN, "_file", "_block").agg(
        F.count(F.lit(1)).alias("_lines"),
        F.min("_pos").alias("_first"),
        F.collect_list(F.when(F.col("_wanted"), F.struct("_pos", "value"))).alias("_rows"),
    )
    earlier = Window.partitionBy("_file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    per_split = per_split.withColumn("_before", F.coalesce(F.sum("_lines").over(earlier), F.lit(0)))
    per_split = per_split.join(F.broadcast(sources), "_file", "left").withColumn(
        "source_object",
        F.when(F.col("source_object").isNull(), F.raise_error(F.concat(F.lit("Spark read "), F.col("_file"), F.lit(", which is none of the inputs"))))
        .otherwise(F.col("source_object")),
    )
    rows = per_split.select(BATCH_COLUMN, "source_object", "_before", "_first", F.explode("_rows").alias("_row")).select(
        BATCH_COLUMN, "source_object", F.col("_row.value").alias("value"),
        (F.col("_row._pos") - F.col("_first") + F.col("_before") + 1).alias("line_number"),
    )
    q = rules.curate(rows, processed_at=processed_at, accepted_statuses=accepted_statuses, batch_columns=[BATCH_COLUMN]).quarantine
    q.repartition(BATCH_COLUMN).write.partitionBy(BATCH_COLUMN).parquet(out)


def run_jobs(spark: SparkSession, inputs: Sequence[HourInput], out: str, processed_at: datetime, *,
             accepted_statuses: Sequence[str], split_bytes: int, max_records_per_file: int) -> SparkCounts:
    """Jobs 1-2 over the hours' inputs; Spark writes under `out` (curated/, quarantine/)."""
    counts = SparkCounts({i.token: 0 for i in inputs}, {i.token: 0 for i in inputs})
    if not any(i.paths for i in inputs):
        return counts
    with _input_splits(spark, split_bytes):
        obs_invalid, obs_dup = _write_curated(spark, inputs, f"{out}/curated", processed_at, accepted_statuses, max_records_per_file)
        observed = obs_invalid.get
        invalid = json.loads(observed["invalid"] or "[]")
        counts.lines.update({i.token: int(observed[LINES_PREFIX + i.token] or 0) for i in inputs})
        counts.duplicates.update({k: int(v or 0) for k, v in obs_dup.get.items() if k != "_"})
        if invalid:
            _write_quarantine(spark, inputs, f"{out}/quarantine", processed_at, invalid, accepted_statuses)
    return counts
