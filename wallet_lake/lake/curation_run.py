"""Curate landing hours end to end against a LakeStore (the I/O shell around transforms.curate).

One call curates any number of landing hours in one Spark application and one pass of jobs (a
backfill is not a loop of per-hour jobs):

0. Spark reads the hours' raw objects where they are (a folder lake, or s3:// on Glue with
   `in_lake`), or from local copies (S3 through a local Spark, e.g. the moto stack). A cheap
   first job counts the lines of every input split (text only, no JSON): the hour's `raw_lines`
   of the accounting, and the offsets that turn a row's position into its line number.
1. The curated job parses every line once, dedupes per (landing hour, payment_id) and writes
   Parquet partitioned by landing hour, dt, merchant_id: one file per (hour, dt, merchant_id)
   (more only past `max_records_per_file`). An Observation on the same pass counts the duplicates
   each hour removed and collects the positions of the invalid lines.
2. The quarantine job reads the text again but parses only the lines at those positions, and
   writes one quarantine file per hour with the source object and line number of each line.
3. Figures per hour from the files written (Parquet footers and a few columns, pyarrow): curated
   rows and bytes, quarantine counts by reason, and what the blocking checks judge.
4. Publish, per hour, write-audit-publish: an hour whose figures fail a blocking check
   (failed_checks) is not published (its previous state stays). Otherwise: record the run's new
   keys as `pending` in the hour's manifest, upload the new files under run-scoped names
   (lh-<hour>-<run>-NNN.parquet: nothing the current manifest lists is touched), swap the manifest
   (one PUT, which also records the keys it supersedes), delete those files. Readers that go
   through manifests (read_curated_hour, current_curated_keys, the lake query layer) see the old
   hour or the new one, never a mix. Every manifest write is conditional on the version read
   (lake.manifests): a concurrent run of the hour makes this one fail, never overwrite it.
   Each curation first sweeps its hours: files a dead run left (`superseded` after a swap,
   `pending` of a run abandoned before its swap) are deleted.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from wallet_lake.contracts.landing import (
    CURATED_PREFIX,
    MANIFEST_PREFIX,
    QUARANTINE_PREFIX,
    hour_token,
    landing_prefix,
    manifest_key,
)
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.contracts.schema import CURATED_FIELDS, CURATED_PARTITION_COLUMNS, CURATED_VERSION
from wallet_lake.lake import manifests
from wallet_lake.lake.store import LakeStore, LocalLakeStore, S3LakeStore
from wallet_lake.transforms import curate as rules

MANIFEST_FORMAT = 3  # 3: `superseded` (keys the swap made obsolete, until deleted)
BATCH_COLUMN = "landing_hour"  # the landing hour token, e.g. 20261124T13, as a batch column
SCRATCH_PREFIX = "_scratch/curation/"  # in_lake: Spark's output before it is published


@dataclass(frozen=True)
class CurationSettings:
    """Knobs of a curation run (defaults suit the local stack and Glue G.1X workers)."""

    split_bytes: int = 32 << 20  # Spark input split (parallelism of the parse)
    max_records_per_file: int = 2_000_000  # per curated file; more rows in a partition split the file
    io_threads: int = 16  # parallel S3 downloads/uploads
    preview_rows: int = 5
    abandoned_after: timedelta = timedelta(hours=6)  # a pending run older than this is swept
    accepted_statuses: tuple[str, ...] = ACCEPTED_STATUSES
    # Spark reads raw objects and writes its output through the lake's own URIs (s3:// on Glue,
    # where driver and executors share no disk); otherwise through the driver's local disk.
    in_lake: bool = False


@dataclass
class HourStats:
    landing_hour: str
    run_id: str = ""
    processed_at: str = ""
    curated_version: int = CURATED_VERSION
    published: bool = False
    raw_objects: int = 0
    raw_bytes: int = 0
    raw_lines: int = 0
    curated_rows: int = 0
    quarantined_rows: int = 0
    duplicates_removed: int = 0
    curated_files: int = 0
    curated_bytes: int = 0
    quarantine_files: int = 0
    quarantine_bytes: int = 0
    dt_partitions: list[str] = field(default_factory=list)
    partitions: list[list[str]] = field(default_factory=list)  # [dt, merchant_id] written
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # figures for the asset checks (see check_figures)
    failed_checks: dict[str, str] = field(default_factory=dict)
    preview: list[dict] = field(default_factory=list)
    curated_keys: list[str] = field(default_factory=list)
    quarantine_keys: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # batch timings, same for every hour

    @property
    def accounted(self) -> bool:
        return self.raw_lines == self.curated_rows + self.quarantined_rows + self.duplicates_removed

    @property
    def token(self) -> str:
        return hour_token(datetime.fromisoformat(self.landing_hour))

    def summary(self) -> str:
        state = "published" if self.published else "NOT published: " + ", ".join(self.failed_checks)
        return (
            f"{self.landing_hour}: raw {self.raw_lines} = curated {self.curated_rows} + quarantined "
            f"{self.quarantined_rows} + duplicates {self.duplicates_removed} ({self.curated_files} files, {state})"
        )


def new_run_id(processed_at: datetime) -> str:
    """Short, sortable, unique: 20261125T031542-3fa9c1."""
    return f"{processed_at.astimezone(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


# ----------------------------------------------------------------------------------- blocking checks

ACCOUNTING = "every_raw_line_accounted"
SCHEMA = "schema_matches_contract"
UNIQUE = "payment_id_unique_within_hour"
NOT_NULL = "required_columns_not_null"
ACCEPTED = "accepted_values"
BLOCKING_CHECKS = (ACCOUNTING, SCHEMA, UNIQUE, NOT_NULL, ACCEPTED)


def failed_checks(stats: HourStats | dict) -> dict[str, str]:
    """{check: why} for every blocking check the hour's figures fail (empty: publishable).
    The same predicates gate publishing here and become the asset checks in Dagster."""
    s = stats if isinstance(stats, dict) else asdict(stats)
    c = s.get("checks", {})
    out: dict[str, str] = {}
    total = s["curated_rows"] + s["quarantined_rows"] + s["duplicates_removed"]
    if s["raw_lines"] != total:
        out[ACCOUNTING] = f"raw {s['raw_lines']} != curated {s['curated_rows']} + quarantined {s['quarantined_rows']} + duplicates {s['duplicates_removed']}"
    if c.get("schema_errors"):
        out[SCHEMA] = "; ".join(c["schema_errors"])[:500]
    if c.get("duplicate_payment_ids"):
        out[UNIQUE] = f"{c['duplicate_payment_ids']} payment_ids appear more than once"
    if c.get("nulls_in_required_columns"):
        out[NOT_NULL] = json.dumps(c["nulls_in_required_columns"])
    bad = {k: c[k] for k in ("unaccepted_statuses", "bad_currencies", "out_of_range") if c.get(k)}
    if bad:
        out[ACCEPTED] = json.dumps(bad)[:500]
    return out


# ------------------------------------------------------------------------------------ input


@dataclass
class _Input:
    token: str
    hour: datetime
    paths: list[str] = field(default_factory=list)  # what Spark reads
    keys: dict[str, str] = field(default_factory=dict)  # Spark path -> source object key
    raw_objects: int = 0
    raw_bytes: int = 0


def lake_uri(store: LakeStore, key: str) -> str:
    """The Hadoop URI of a lake key (s3://bucket/key, or an absolute path for a folder lake)."""
    if isinstance(store, S3LakeStore):
        return f"s3://{store.bucket}/{key}"
    return str(Path(store.root) / key)


def _inputs(store: LakeStore, hours: Sequence[datetime], scratch: Path, settings: CurationSettings) -> list[_Input]:
    inputs = [_Input(hour_token(h), h) for h in hours]
    listed = {i.token: [o for o in store.list(landing_prefix(i.hour)) if o.key.endswith(".ndjson")] for i in inputs}
    direct = settings.in_lake or isinstance(store, LocalLakeStore)
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
        with ThreadPoolExecutor(max_workers=max(1, settings.io_threads)) as pool:
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


# -------------------------------------------------------------------------------------- Spark


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


def _read_raw(spark: SparkSession, inputs: Sequence[_Input]) -> DataFrame:
    """value, landing_hour and `_pos` (unique per row and equal between two reads of the same
    inputs: partition index << 33 | row index in the partition)."""
    frames = [
        spark.read.text(i.paths).withColumn(BATCH_COLUMN, F.lit(i.token))
        for i in inputs if i.paths
    ]
    return reduce(DataFrame.unionByName, frames).withColumn("_pos", F.monotonically_increasing_id())


def _count_splits(spark: SparkSession, inputs: Sequence[_Input]) -> list:
    """Job 0: per (hour, file, split): lines and first position (text only)."""
    return (
        _read_raw(spark, inputs)
        .select(BATCH_COLUMN, F.input_file_name().alias("_file"), F.input_file_block_start().alias("_block"), "_pos")
        .groupBy(BATCH_COLUMN, "_file", "_block")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("_pos").alias("first_pos"))
        .collect()
    )


def _write_curated(spark, inputs, out: str, processed_at: datetime, settings: CurationSettings) -> tuple[Observation, Observation]:
    """Job 1. The observation holds, per hour, the duplicates removed, and the positions of
    every invalid line (JSON list)."""
    raw = _read_raw(spark, inputs).withColumn("source_object", F.lit("")).withColumn("line_number", F.lit(0))
    flagged = rules.with_validity(rules.parse_lines(raw), settings.accepted_statuses)
    obs = Observation(f"curation_{secrets.token_hex(4)}")
    flagged = flagged.observe(obs, F.to_json(F.collect_list(F.when(~F.col("is_valid"), F.col("_pos")))).alias("invalid"))
    ranked = rules.rank_within_payment(rules.valid_rows(flagged, [BATCH_COLUMN]), [BATCH_COLUMN])
    obs_dup = Observation(f"duplicates_{secrets.token_hex(4)}")
    dup = F.col(rules.DEDUPE_RANK) > 1
    ranked = ranked.observe(
        obs_dup, F.lit(0).alias("_"), *[F.sum(F.when(dup & (F.col(BATCH_COLUMN) == i.token), 1).otherwise(0)).alias(i.token) for i in inputs]
    )
    curated = rules.curated_rows(ranked, processed_at=processed_at, batch_columns=[BATCH_COLUMN])
    parts = [BATCH_COLUMN, *CURATED_PARTITION_COLUMNS]
    (
        curated.repartition(*parts)
        .write.option("maxRecordsPerFile", settings.max_records_per_file)
        .partitionBy(*parts)
        .parquet(out)
    )
    return obs, obs_dup


def _write_quarantine(spark, inputs, out: str, processed_at: datetime, invalid: list[int], splits: list, settings: CurationSettings) -> None:
    """Job 2: parse only the lines at `invalid` positions; line numbers from the split counts."""
    base: dict[tuple[str, int], int] = {}
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
    flagged = rules.with_validity(rules.parse_lines(raw), settings.accepted_statuses)
    q = rules.quarantine_rows(flagged, processed_at=processed_at, accepted_statuses=settings.accepted_statuses, batch_columns=[BATCH_COLUMN])
    q.repartition(BATCH_COLUMN).write.partitionBy(BATCH_COLUMN).parquet(out)


# ----------------------------------------------------------------------------- figures (pyarrow)


def _partition_values(rel: str) -> dict[str, str]:
    """{"dt": ..., "merchant_id": ...} of a Hive path such as dt=2026-11-24/merchant_id=m%2F1
    (Spark escapes special characters with %XX)."""
    return {k: unquote(v) for k, v in (seg.split("=", 1) for seg in rel.split("/") if "=" in seg)}


def check_figures(files: Sequence[tuple[Path, dict[str, str]]]) -> tuple[dict, list[dict]]:
    """What the blocking checks judge, from one hour's curated files as written: ({figures},
    preview rows). Reads the footers (schema, row counts, statistics: nulls, min/max) and three
    columns (payment_id, status, currency) of all files at once."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from wallet_lake.contracts.schema import arrow_schema

    expected = pa.schema([f for f in arrow_schema(CURATED_FIELDS) if f.name not in CURATED_PARTITION_COLUMNS])
    schema_errors: list[str] = []
    nulls: dict[str, int] = {f.name: 0 for f in arrow_schema(CURATED_FIELDS) if not f.nullable}
    ranges: dict[str, list] = {}
    bad_dt: list[str] = []
    rows = 0
    preview: list[dict] = []
    for path, parts in files:
        pf = pq.ParquetFile(path)
        md = pf.metadata
        rows += md.num_rows
        if not pf.schema_arrow.equals(expected):
            schema_errors.append(f"{path.name}: {pf.schema_arrow} != contract")
        for name in CURATED_PARTITION_COLUMNS:
            if not parts.get(name):
                nulls[name] = nulls.get(name, 0) + md.num_rows
        col_index = {md.schema.column(i).name: i for i in range(md.num_columns)}
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            for name in list(nulls):
                st = group.column(col_index[name]).statistics if name in col_index else None
                nulls[name] += st.null_count if st is not None and st.has_null_count else 0
            for name in ("amount_cents", "risk_score", "hour", "curated_version", "created_at"):
                st = group.column(col_index[name]).statistics if name in col_index else None
                if st is not None and st.has_min_max:
                    lo, hi = ranges.get(name, [st.min, st.max])
                    ranges[name] = [min(lo, st.min), max(hi, st.max)]
                    day = parts.get("dt")
                    if name == "created_at" and day and not (str(st.min.date()) == day == str(st.max.date())):
                        bad_dt.append(f"{path.name}: created_at {st.min}..{st.max} outside dt={day}")
        if len(preview) < 5 and md.num_rows:
            head = pf.read_row_group(0).slice(0, 5 - len(preview)).to_pylist()
            preview += [{**{k: parts.get(k) for k in CURATED_PARTITION_COLUMNS}, **r} for r in head]
    statuses: set = set()
    currencies: set = set()
    distinct = 0
    if rows:
        t = pq.read_table([str(p) for p, _ in files], columns=["payment_id", "status", "currency"])
        distinct = pc.count_distinct(t.column("payment_id")).as_py()
        statuses = set(pc.unique(t.column("status")).to_pylist())
        currencies = set(pc.unique(t.column("currency")).to_pylist())
    figures = {
        "rows": rows,
        "schema_errors": schema_errors[:5],
        "distinct_payment_ids": distinct,
        "duplicate_payment_ids": rows - distinct,
        "nulls_in_required_columns": {k: v for k, v in nulls.items() if v},
        "statuses": sorted(s for s in statuses if s is not None),
        "unaccepted_statuses": sorted(str(s) for s in statuses if s not in ACCEPTED_STATUSES),
        "bad_currencies": sorted(str(c) for c in currencies if c is None or not re.fullmatch(r"[A-Z]{3}", c))[:20],
        "ranges": {k: [str(v[0]), str(v[1])] for k, v in ranges.items()},
        "out_of_range": _out_of_range(ranges) + bad_dt[:5],
    }
    return figures, [{k: _jsonable(v) for k, v in r.items()} for r in preview]


def _out_of_range(ranges: dict[str, list]) -> list[str]:
    bounds = {"amount_cents": (0, None), "risk_score": (0.0, 1.0), "hour": (0, 23), "curated_version": (CURATED_VERSION, CURATED_VERSION)}
    out = []
    for name, (lo, hi) in bounds.items():
        if name in ranges:
            mn, mx = ranges[name]
            if (lo is not None and mn < lo) or (hi is not None and mx > hi):
                out.append(f"{name} in [{mn}, {mx}], expected [{lo}, {hi if hi is not None else ''}]")
    return out


def _jsonable(v):
    return v.isoformat() if hasattr(v, "isoformat") else v  # datetimes and dates of the preview


def _hour_figures(stats: HourStats, out: Path, settings: CurationSettings) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Fill stats from the hour's files under `out`; return [(local file, lake key)] to upload."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    token = stats.token
    curated_dir = out / "curated" / f"{BATCH_COLUMN}={token}"
    files = sorted(curated_dir.rglob("*.parquet")) if curated_dir.exists() else []
    by_partition: dict[str, list[Path]] = {}
    for f in files:
        by_partition.setdefault(f.parent.relative_to(curated_dir).as_posix(), []).append(f)
    uploads: list[tuple[Path, str]] = []
    inspected: list[tuple[Path, dict[str, str]]] = []
    for rel, group in sorted(by_partition.items()):
        parts = _partition_values(rel)
        stats.partitions.append([parts["dt"], parts["merchant_id"]])
        for i, f in enumerate(group):
            uploads.append((f, f"{CURATED_PREFIX}{rel}/lh-{token}-{stats.run_id}-{i:03d}.parquet"))
            inspected.append((f, parts))
            stats.curated_rows += pq.read_metadata(f).num_rows
            stats.curated_bytes += f.stat().st_size
    stats.curated_files = len(uploads)
    stats.dt_partitions = sorted({p[0] for p in stats.partitions})
    stats.checks, stats.preview = check_figures(inspected)
    stats.preview = stats.preview[: settings.preview_rows]

    q_dir = out / "quarantine" / f"{BATCH_COLUMN}={token}"
    q_uploads: list[tuple[Path, str]] = []
    reasons: dict[str, int] = {}
    for i, f in enumerate(sorted(q_dir.glob("*.parquet")) if q_dir.exists() else []):
        t = pq.read_table(f, columns=["reasons"])
        stats.quarantined_rows += t.num_rows
        stats.quarantine_bytes += f.stat().st_size
        if t.num_rows:
            vc = pc.value_counts(pc.list_flatten(t.column("reasons")))
            for item in vc.to_pylist():
                reasons[item["values"]] = reasons.get(item["values"], 0) + item["counts"]
        q_uploads.append((f, f"{QUARANTINE_PREFIX}{BATCH_COLUMN}={token}/lh-{token}-{stats.run_id}-{i:03d}.parquet"))
    stats.quarantine_files = len(q_uploads)
    stats.quarantine_reasons = dict(sorted(reasons.items()))
    return uploads, q_uploads


# ----------------------------------------------------------------------------------- publish


def read_manifest(store: LakeStore, hour: datetime) -> dict:
    """The hour's manifest, or {} when the hour was never curated."""
    data = store.get_optional(manifest_key(hour))
    return json.loads(data) if data is not None else {}


def _publish(store: LakeStore, stats: HourStats, uploads: list[tuple[Path, str]], settings: CurationSettings,
             pool: ThreadPoolExecutor, log=None) -> None:
    """Write-audit-publish one hour (see module doc); an hour failing a blocking check keeps
    its previous state. Raises manifests.ManifestConflict when another writer changed the
    manifest meanwhile (this run's files are then removed; the other run's state stays whole)."""
    hour = datetime.fromisoformat(stats.landing_hour)
    stats.failed_checks = failed_checks(stats)
    if stats.failed_checks:
        stats.published = False
        if log:
            log.error(f"{stats.token} not published: {stats.failed_checks}")
        return
    old, version = manifests.read_versioned(store, hour)
    now = datetime.now(timezone.utc)
    pending, abandoned = manifests.split_pending(old.get("pending", []), now, settings.abandoned_after, except_run=stats.run_id)
    new_keys = [k for _, k in uploads]
    if set(new_keys) != set(stats.curated_keys + stats.quarantine_keys):
        raise RuntimeError(f"{stats.token}: the files to upload are not the files the manifest will list")
    # 1. Announce this run's keys (the manifest still lists the current files), then upload.
    announced = {**old, "pending": pending + [{"run_id": stats.run_id, "started_at": now.isoformat(), "keys": new_keys}]}
    version = manifests.write(store, hour, announced, version, doing="announcing its files")
    list(pool.map(lambda u: store.put_file(u[1], u[0]), uploads))
    # 2. Swap: one PUT makes the new files current and records what they supersede (the previous
    #    files, those of abandoned runs, and any a dead run left), so a run that dies before
    #    step 3 leaves a list to sweep, not orphans.
    superseded = set(old.get("superseded", [])) | manifests.current_keys(old)
    for p in abandoned:
        superseded.update(p.get("keys", []))
    stats.published = True
    body = {**asdict(stats), "manifest_format": MANIFEST_FORMAT, "pending": pending, "superseded": sorted(superseded - set(new_keys))}
    try:
        version = manifests.write(store, hour, body, version, doing="swapping in its files")
    except manifests.ManifestConflict:
        stats.published = False
        store.delete(new_keys)  # this run's own run-scoped files: no manifest lists them as current
        raise
    # 3. Delete the superseded files, then record that they are gone.
    if body["superseded"]:
        store.delete(body["superseded"])
        try:
            manifests.write(store, hour, {**body, "superseded": []}, version, doing="recording its deletes")
        except manifests.ManifestConflict as e:  # the next writer carries the list forward and deletes again
            if log:
                log.warning(str(e))
        if log:
            log.info(f"{stats.token}: removed {len(body['superseded'])} files of earlier runs")


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
    scratch = Path(tempfile.mkdtemp(prefix="wl-curate-"))
    lake_scratch = f"{SCRATCH_PREFIX}{run_id}/"
    timings: dict[str, float] = {}
    try:
        sweep_landing_hours(store, hours, settings, log)
        t = time.perf_counter()
        inputs = _inputs(store, hours, scratch, settings)
        timings["inputs"] = time.perf_counter() - t
        out = scratch / "out"
        spark_out = lake_uri(store, lake_scratch) if settings.in_lake else str(out)
        lines = {i.token: 0 for i in inputs}
        dups = dict(lines)
        if any(i.paths for i in inputs):
            t = time.perf_counter()
            with _input_splits(spark, settings.split_bytes):
                splits = _count_splits(spark, inputs)
                for r in splits:
                    lines[r[BATCH_COLUMN]] += r["lines"]
                obs_invalid, obs_dup = _write_curated(spark, inputs, f"{spark_out}/curated", processed_at, settings)
                invalid = json.loads(obs_invalid.get["invalid"] or "[]")
                dups.update({k: int(v or 0) for k, v in obs_dup.get.items() if k != "_"})
                if invalid:
                    _write_quarantine(spark, inputs, f"{spark_out}/quarantine", processed_at, invalid, splits, settings)
            timings["spark"] = time.perf_counter() - t
            if settings.in_lake:  # bring Spark's output to the driver for the figures and the publish
                objs = [o for o in store.list(lake_scratch) if o.key.endswith(".parquet")]
                with ThreadPoolExecutor(max_workers=max(1, settings.io_threads)) as pool:
                    list(pool.map(lambda o: store.download(o.key, out / o.key[len(lake_scratch):]), objs))
        t = time.perf_counter()
        results: list[tuple[HourStats, list[tuple[Path, str]]]] = []
        for i in inputs:
            stats = HourStats(
                landing_hour=i.hour.isoformat(), run_id=run_id, processed_at=processed_at.isoformat(),
                raw_objects=i.raw_objects, raw_bytes=i.raw_bytes, raw_lines=lines[i.token], duplicates_removed=dups[i.token],
            )
            uploads, q_uploads = _hour_figures(stats, out, settings)
            stats.curated_keys = [k for _, k in uploads]
            stats.quarantine_keys = [k for _, k in q_uploads]
            results.append((stats, uploads + q_uploads))
        timings["figures"] = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, settings.io_threads)) as pool:
            for stats, uploads in results:
                stats.seconds = {k: round(v, 3) for k, v in timings.items()}  # the batch's, so far
                _publish(store, stats, uploads, settings, pool, log)
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


def sweep_landing_hours(store: LakeStore, hours: Sequence[datetime], settings: CurationSettings = CurationSettings(),
                        log=None) -> list[manifests.SweepResult]:
    """Delete what dead runs left of these hours (manifests.sweep_hour), a few hours at a time."""
    with ThreadPoolExecutor(max_workers=max(1, min(settings.io_threads, len(hours)))) as pool:
        results = list(pool.map(lambda h: manifests.sweep_hour(store, h, abandoned_after=settings.abandoned_after), hours))
    for r in results:
        if log and r.deleted:
            log.info(f"{r.landing_hour}: swept {len(r.deleted)} files a dead run left")
        if log and r.conflict:
            log.warning(r.conflict)
    return results


def curate_landing_hour(spark: SparkSession, store: LakeStore, hour: datetime, processed_at: datetime, log=None,
                        *, run_id: str | None = None, settings: CurationSettings = CurationSettings()) -> HourStats:
    """One landing hour (see curate_landing_hours)."""
    return curate_landing_hours(spark, store, [hour], processed_at, run_id=run_id, settings=settings, log=log)[0]


# ------------------------------------------------------------------------------------ readers


def current_curated_keys(store: LakeStore, hours: Sequence[datetime] | None = None) -> list[str]:
    """The curated files readers should see: those listed by the hours' manifests (every
    curated hour when `hours` is None). Files of a run in progress or of a previous run are not."""
    if hours is None:
        tokens = [o.key[len(MANIFEST_PREFIX) : -len(".json")] for o in store.list(MANIFEST_PREFIX) if o.key.endswith(".json")]
        hours = [datetime.strptime(t, "%Y%m%dT%H").replace(tzinfo=timezone.utc) for t in tokens]
    keys: list[str] = []
    for h in hours:
        keys += read_manifest(store, h).get("curated_keys", [])
    return sorted(keys)


def read_curated_hour_table(store: LakeStore, hour: datetime):
    """Curated rows a landing hour produced (from its manifest) as one Arrow table with the
    contract's columns in order; dt and merchant_id come back from the Hive path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wallet_lake.contracts.schema import arrow_schema

    manifest = read_manifest(store, hour)
    if not manifest:
        raise FileNotFoundError(f"landing hour {hour_token(hour)} has no curated manifest: materialize curated_payments first")
    schema = arrow_schema()
    tables = []
    for key in manifest["curated_keys"]:
        table = pq.read_table(pa.BufferReader(store.get_bytes(key)))
        # dt and merchant_id live in the path (Hive partitioning), not in the file.
        parts = _partition_values("/".join(key.split("/")[2:4]))
        path_values = {"dt": datetime.strptime(parts["dt"], "%Y-%m-%d").date(), "merchant_id": parts["merchant_id"]}
        columns = [
            pa.array([path_values[f.name]] * table.num_rows, f.type) if f.name in path_values else table.column(f.name).cast(f.type)
            for f in schema
        ]
        tables.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_curated_hour(store: LakeStore, hour: datetime) -> list[dict]:
    """Curated rows a landing hour produced (from its manifest), as Python dicts."""
    return read_curated_hour_table(store, hour).to_pylist()


def read_quarantine_hour_table(store: LakeStore, hour: datetime):
    """Quarantined rows of a landing hour (from its manifest) as one Arrow table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = read_manifest(store, hour)
    tables = [pq.read_table(pa.BufferReader(store.get_bytes(k))) for k in manifest.get("quarantine_keys", [])]
    return pa.concat_tables(tables) if tables else None
