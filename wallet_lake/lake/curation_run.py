"""Curate landing hours end to end against a LakeStore: the I/O shell around transforms.curate.

One call curates any number of landing hours in one Spark application and one pass of jobs (a
backfill is not a loop of per-hour jobs). Each seam is its own module:

0. sweep: files dead runs left of these hours are deleted (lake/manifests.py), and the local
   scratch folders of killed processes (lake/scratch.py);
1. Spark: find the raw objects and run curate() over them (lake/spark_runner.py);
2. figures per hour from the files written, with pyarrow (lake/figures.py): what the blocking
   checks judge (transforms/checks.py);
3. publish each hour, write-audit-publish (lake/wap.py): an hour failing a blocking check keeps
   its previous state; otherwise its manifest swaps to the new files in one conditional PUT.

Readers never come here: lake/reader.py reads an hour through its manifest with pyarrow alone."""

from __future__ import annotations

import re
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

from pyspark.sql import SparkSession

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.lake import manifests, scratch as local_scratch, spark_runner, wap
from wallet_lake.lake.figures import hour_figures
from wallet_lake.lake.manifests import HourStats
from wallet_lake.lake.store import LakeStore, LocalLakeStore
from wallet_lake.transforms import curate as rules

SCRATCH_PREFIX = "_scratch/curation/"  # in_lake: Spark's output before it is published


@dataclass(frozen=True)
class CurationSettings:
    """Knobs of a curation run (defaults suit the local stack and Glue G.1X workers)."""

    split_bytes: int = 32 << 20  # Spark input split (parallelism of the parse)
    max_records_per_file: int = 2_000_000  # per curated file; more rows in a partition split the file
    # The quarantine numbers its lines in one text pass while their text is at most this, held in
    # memory until the split counts are known; past it, a count goes first (lake/spark_runner.py).
    quarantine_one_pass_bytes: int = 64 << 20
    io_threads: int = 16  # parallel S3 downloads/uploads
    preview_rows: int = 5
    abandoned_after: timedelta = manifests.ABANDONED_AFTER  # a pending run older than this is swept
    accepted_statuses: tuple[str, ...] = ACCEPTED_STATUSES
    # Spark reads raw objects and writes its output through the lake's own URIs (s3:// on Glue,
    # where driver and executors share no disk); otherwise through the driver's local disk.
    in_lake: bool = False


def new_run_id(processed_at: datetime) -> str:
    """A curation run id for a run outside Dagster (CLI, Glue job without a Dagster run id)."""
    return manifests.curation_run_id(processed_at, secrets.token_hex(3))


def curate_landing_hours(
    spark: SparkSession,
    store: LakeStore,
    hours: Sequence[datetime],
    processed_at: datetime,
    *,
    run_id: str | None = None,
    settings: CurationSettings = CurationSettings(),
    log=None,
) -> list[HourStats]:
    """Curate `hours` in one Spark pass and publish each hour atomically; per-hour figures."""
    hours = sorted({h.astimezone(timezone.utc) for h in hours})
    processed_at = processed_at.astimezone(timezone.utc)
    run_id = run_id or new_run_id(processed_at)
    if not re.fullmatch(r"[0-9A-Za-z_.-]+", run_id):
        raise ValueError(f"run_id {run_id!r} may hold only letters, digits and _ . - (it names files)")
    for k, v in rules.SPARK_CONF.items():  # the rules are defined in UTC (session time zone)
        spark.conf.set(k, v)
    local_scratch.sweep(log=log)
    scratch = local_scratch.make(local_scratch.CURATION_PREFIX)
    lake_scratch = f"{SCRATCH_PREFIX}{run_id}/"
    timings: dict[str, float] = {}
    try:
        manifests.sweep_hours(store, hours, abandoned_after=settings.abandoned_after, io_threads=settings.io_threads, log=log)
        t = time.perf_counter()
        direct = settings.in_lake or isinstance(store, LocalLakeStore)
        inputs = spark_runner.find_inputs(store, hours, scratch, direct=direct, io_threads=settings.io_threads)
        timings["inputs"] = time.perf_counter() - t
        out = scratch / "out"
        t = time.perf_counter()
        counts = spark_runner.run_jobs(
            spark, inputs, spark_runner.lake_uri(store, lake_scratch) if settings.in_lake else str(out), processed_at,
            accepted_statuses=settings.accepted_statuses, split_bytes=settings.split_bytes,
            max_records_per_file=settings.max_records_per_file, one_pass_bytes=settings.quarantine_one_pass_bytes,
        )
        if any(i.paths for i in inputs):
            timings["spark"] = time.perf_counter() - t
            if settings.in_lake:  # bring Spark's output to the driver for the figures and the publish
                objs = [o for o in store.list(lake_scratch) if o.key.endswith(".parquet")]
                with ThreadPoolExecutor(max_workers=max(1, settings.io_threads)) as pool:
                    list(pool.map(lambda o: store.download(o.key, out / o.key[len(lake_scratch):]), objs))
        t = time.perf_counter()
        results: list[tuple[HourStats, list[wap.Upload]]] = []
        for i in inputs:
            stats = HourStats(
                landing_hour=i.hour.isoformat(), run_id=run_id, processed_at=processed_at.isoformat(),
                raw_objects=i.raw_objects, raw_bytes=i.raw_bytes, raw_lines=counts.lines[i.token],
                duplicates_removed=counts.duplicates[i.token],
            )
            uploads = hour_figures(stats, out, spark_runner.BATCH_COLUMN, preview_rows=settings.preview_rows)
            results.append((stats, uploads))
        timings["figures"] = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, settings.io_threads)) as pool:
            for stats, uploads in results:
                stats.seconds = {k: round(v, 3) for k, v in timings.items()}  # the batch's, so far
                wap.publish_hour(store, stats, uploads, abandoned_after=settings.abandoned_after, pool=pool, log=log)
                if log:
                    log.info(stats.summary())
        timings["publish"] = time.perf_counter() - t
        for stats, _ in results:
            stats.seconds = {k: round(v, 3) for k, v in timings.items()}
        return [s for s, _ in results]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if settings.in_lake:
            leftovers = [o.key for o in store.list(lake_scratch)]
            if leftovers:
                store.delete(leftovers)


def curate_landing_hour(spark: SparkSession, store: LakeStore, hour: datetime, processed_at: datetime, log=None,
                        *, run_id: str | None = None, settings: CurationSettings = CurationSettings()) -> HourStats:
    """One landing hour (see curate_landing_hours)."""
    return curate_landing_hours(spark, store, [hour], processed_at, run_id=run_id, settings=settings, log=log)[0]
