"""The Spark side of a curation run: find the landing hours' raw objects, and run the jobs that
apply transforms.curate.curate() (the same chain the unit tests call) to them.

1. The curated job: curate() over every line of every hour (dedupe per landing hour), written as
   Parquet partitioned by landing hour, dt, merchant_id: one file per (hour, dt, merchant_id),
   more only past `max_records_per_file`. Observations tapped into curate()'s chain count, in
   the same pass, each hour's lines, the duplicates each hour removed and the positions of the
   invalid lines.
2. Only when some line is invalid, the quarantine job reads the text again, keeps the lines at
   the invalid positions and writes curate()'s quarantine of them: one quarantine file per hour.
   A line's number is the lines of its file's earlier input splits plus its place in its split.
   When the invalid lines are few (`one_pass_bytes` of text at most, the usual hour) the job
   counts every split's lines in the same pass, holding the invalid lines until the counts are
   known; otherwise a count of the splits' lines goes first and the lines stream through.

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
# The curated write's task count when the session sets it (spark_config(): the local launcher and
# the curation worker); unset (Glue), Spark's shuffle partitions as adaptive execution coalesces them.
WRITE_PARTITIONS_CONF = "spark.walletLake.curatedWritePartitions"
LINES_PREFIX = "lines_"  # the curated job's observation of an hour's lines: lines_<token>
NOT_AN_INPUT = "which is none of the inputs"
# Curated columns whose values are (nearly) all distinct in a file: a Parquet dictionary would
# hash and look up every value only to fall back to plain encoding (docs/benchmarks.md, session 31).
PLAIN_ENCODED_COLUMNS = ("payment_id", "created_at", "authorized_at", "completed_at")


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
    """The source object of a file as input_file_name() and inputFiles() render it (a URI,
    %-escaped)."""
    name = unquote(spark_file)
    for path, key in keys.items():
        bare = path.split("://", 1)[-1]
        if name.endswith(bare):
            return key
    raise RuntimeError(f"Spark read {spark_file!r}, {NOT_AN_INPUT}")


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
                   max_records_per_file: int) -> tuple[Observation, Observation, Observation]:
    """Job 1: curate() over every line, written. The observations hold each hour's lines as read
    (LINES_PREFIX + token); the positions of every invalid line (JSON list) and their bytes;
    and, per hour, the duplicates removed."""
    obs_lines = Observation(f"lines_{secrets.token_hex(4)}")
    obs_invalid = Observation(f"curation_{secrets.token_hex(4)}")
    obs_dup = Observation(f"duplicates_{secrets.token_hex(4)}")
    lines = [F.count(F.when(F.col(BATCH_COLUMN) == i.token, 1)).alias(LINES_PREFIX + i.token) for i in inputs]
    raw = _read_raw(spark, inputs).observe(obs_lines, *lines)
    # A line's bytes taken before the parse: the observation then needs no `value` after it, and
    # Spark leaves the text out of every row the parse's projections write (docs/benchmarks.md,
    # session 31).
    raw = raw.select("*", F.octet_length("value").alias("_bytes"), F.lit("").alias("source_object"), F.lit(0).alias("line_number"))
    dup = F.col(rules.DEDUPE_RANK) > 1

    def tap(stage: str, frame: DataFrame) -> DataFrame:
        if stage == rules.FLAGGED:
            bad = ~F.col("is_valid")
            return frame.observe(obs_invalid, F.to_json(F.collect_list(F.when(bad, F.col("_pos")))).alias("invalid"),
                                 F.sum(F.when(bad, F.col("_bytes"))).alias("invalid_bytes"))
        if stage == rules.RANKED:
            per_hour = [F.sum(F.when(dup & (F.col(BATCH_COLUMN) == i.token), 1).otherwise(0)).alias(i.token) for i in inputs]
            return frame.observe(obs_dup, F.lit(0).alias("_"), *per_hour)
        return frame

    curated = rules.curate(raw, processed_at=processed_at, accepted_statuses=accepted_statuses,
                           batch_columns=[BATCH_COLUMN], tap=tap).curated
    parts = [BATCH_COLUMN, *CURATED_PARTITION_COLUMNS]
    # Hashed by the output's partition columns, so each (hour, dt, merchant_id) is one task's, one file.
    tasks = int(spark.conf.get(WRITE_PARTITIONS_CONF, "0"))
    by_parts = curated.repartition(tasks, *parts) if tasks > 0 else curated.repartition(*parts)
    writer = by_parts.write.option("maxRecordsPerFile", max_records_per_file)
    for column in PLAIN_ENCODED_COLUMNS:
        writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    writer.partitionBy(*parts).parquet(out)
    return obs_lines, obs_invalid, obs_dup


def _write_quarantine(spark, inputs, out: str, processed_at: datetime, invalid: Sequence[int],
                      accepted_statuses: Sequence[str], *, one_pass: bool) -> None:
    """Job 2: curate()'s quarantine of only the lines at `invalid` positions, numbered (module
    docstring). Rows of a split are numbered in file order (`_read_raw`), so a line's place in its
    split is its position less the split's first position."""
    raw = _read_raw(spark, inputs)
    keys = {p: k for i in inputs for p, k in i.keys.items()}
    split = raw.withColumn("_file", F.input_file_name()).withColumn("_block", F.input_file_block_start())
    numbered = _numbered_in_one_pass if one_pass else _numbered_after_counting
    rows = numbered(split, _positions_table(spark, invalid))
    # inputFiles() names the files as input_file_name() does.
    sources = _jvm_table(spark, [{"_file": f, "source_object": _source_of(f, keys)} for f in raw.inputFiles()],
                         "_file string, source_object string")
    rows = rows.join(F.broadcast(sources), "_file", "left").withColumn(
        "source_object",
        F.when(F.col("source_object").isNull(), F.raise_error(F.concat(F.lit("Spark read "), F.col("_file"), F.lit(", " + NOT_AN_INPUT))))
        .otherwise(F.col("source_object")),
    ).select(BATCH_COLUMN, "source_object", "line_number", "value")
    q = rules.curate(rows, processed_at=processed_at, accepted_statuses=accepted_statuses, batch_columns=[BATCH_COLUMN]).quarantine
    q.repartition(BATCH_COLUMN).write.partitionBy(BATCH_COLUMN).parquet(out)


# Invalid positions sent as one literal up to this many (~1 MB of JSON). A literal lives in the
# driver's plan: millions of them (an hour, or a backfill, of bad data) would exhaust its heap, so
# more go through createDataFrame, whose Python workers cost ~0.25 s but stream the rows.
POSITIONS_IN_A_LITERAL = 100_000


def _positions_table(spark: SparkSession, positions: Sequence[int], *, literal_at_most: int = POSITIONS_IN_A_LITERAL) -> DataFrame:
    """`_pos` (each of `positions`) with `_wanted` true."""
    if len(positions) > literal_at_most:
        return spark.createDataFrame([(p, True) for p in positions], "_pos long, _wanted boolean")
    listed = F.from_json(F.lit(json.dumps(list(positions))), "array<bigint>", {"mode": "FAILFAST"})
    return spark.range(1, numPartitions=1).select(F.explode(listed).alias("_pos"), F.lit(True).alias("_wanted"))


def _jvm_table(spark: SparkSession, rows: Sequence[dict], ddl: str) -> DataFrame:
    """A small table made in the JVM from one JSON literal. createDataFrame of Python rows goes
    through an RDD that Python workers unpickle: a job of 0.2-0.3 s each time here, where a
    broadcast of these tables needs none (docs/benchmarks.md, session 31)."""
    table = F.from_json(F.lit(json.dumps(rows)), f"array<struct<{ddl}>>", {"mode": "FAILFAST"})
    return spark.range(1, numPartitions=1).select(F.inline(table))


def _numbered_in_one_pass(split: DataFrame, wanted: DataFrame) -> DataFrame:
    """One text pass: per split its lines, first position and wanted lines (held in memory until
    the counts are known, so only for few), then the lines of the file's earlier splits."""
    per_split = split.join(F.broadcast(wanted), "_pos", "left").groupBy(BATCH_COLUMN, "_file", "_block").agg(
        F.count(F.lit(1)).alias("_lines"),
        F.min("_pos").alias("_first"),
        F.collect_list(F.when(F.col("_wanted"), F.struct("_pos", "value"))).alias("_rows"),
    )
    earlier = Window.partitionBy("_file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    per_split = per_split.withColumn("_before", F.coalesce(F.sum("_lines").over(earlier), F.lit(0)))
    return per_split.select(BATCH_COLUMN, "_file", "_before", "_first", F.explode("_rows").alias("_row")).select(
        BATCH_COLUMN, "_file", F.col("_row.value").alias("value"),
        (F.col("_row._pos") - F.col("_first") + F.col("_before") + 1).alias("line_number"),
    )


def _numbered_after_counting(split: DataFrame, wanted: DataFrame) -> DataFrame:
    """A count of every split's lines first (a text pass of its own), then the wanted lines
    stream through a join with each split's offset: nothing held but the counts."""
    counts = (split.groupBy("_file", "_block").agg(F.count(F.lit(1)).alias("lines"), F.min("_pos").alias("first"))
              .collect())
    offsets, before = [], {}
    for r in sorted(counts, key=lambda r: (r["_file"], r["_block"])):
        offsets.append((r["_file"], r["_block"], before.get(r["_file"], 0) - r["first"] + 1))  # line = pos + this
        before[r["_file"]] = before.get(r["_file"], 0) + r["lines"]
    shift = _jvm_table(split.sparkSession, [{"_file": f, "_block": b, "_shift": n} for f, b, n in offsets],
                       "_file string, _block long, _shift long")
    rows = split.join(F.broadcast(wanted), "_pos").join(F.broadcast(shift), ["_file", "_block"])
    return rows.select(BATCH_COLUMN, "_file", "value", (F.col("_pos") + F.col("_shift")).alias("line_number"))


def run_jobs(spark: SparkSession, inputs: Sequence[HourInput], out: str, processed_at: datetime, *,
             accepted_statuses: Sequence[str], split_bytes: int, max_records_per_file: int,
             one_pass_bytes: int) -> SparkCounts:
    """Jobs 1-2 over the hours' inputs; Spark writes under `out` (curated/, quarantine/)."""
    counts = SparkCounts({i.token: 0 for i in inputs}, {i.token: 0 for i in inputs})
    if not any(i.paths for i in inputs):
        return counts
    with _input_splits(spark, split_bytes):
        obs_lines, obs_invalid, obs_dup = _write_curated(spark, inputs, f"{out}/curated", processed_at, accepted_statuses,
                                                         max_records_per_file)
        counts.lines.update({i.token: int(obs_lines.get[LINES_PREFIX + i.token] or 0) for i in inputs})
        observed = obs_invalid.get
        # A set: a task Spark ran again adds its positions again (the accounting check then sees
        # its lines counted twice, and the hour is not published).
        invalid = sorted(set(json.loads(observed["invalid"] or "[]")))
        counts.duplicates.update({k: int(v or 0) for k, v in obs_dup.get.items() if k != "_"})
        if invalid:
            _write_quarantine(spark, inputs, f"{out}/quarantine", processed_at, invalid, accepted_statuses,
                              one_pass=int(observed["invalid_bytes"] or 0) <= one_pass_bytes)
    return counts
