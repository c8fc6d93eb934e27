"""SQL over the lake's curated Parquet: DuckDB embedded (local, tests) or Athena (production).

The reports API runs its report SQL here for `source=lake`. A statement reads relations by name
(curated_payments, curated_payments_latest, report_status_daily, report_status_daily_all,
report_latency_daily); `compose` prefixes it with CTEs that define them over the curated files:
the latest-record view (views.py) and the report relations (contracts/report_relations.py) that
fill the Postgres tables of the same names. One text per report, two engines.

Which files are read: only those the landing hours' manifests list (lake/reader.py
ManifestIndex), each manifest read once per query, so a query sees one version of every hour:
never a run's upload in progress, never the files a rerun superseded, never an orphan under a
partition prefix. Files are immutable (run-scoped names), so a file the snapshot names is either
the version its manifest meant or gone (deleted by a later rerun): the query then fails with
LakeUnavailable (503, retry), it never mixes versions.

Which records are scanned: those of dt >= `scan_from` (the first dt the report asks for). That is
exact for the latest-record view: a payment's later records have later (or equal) created_at,
hence dt, so every record that can be a payment's latest one for a dt >= scan_from is in the scan,
and records of a payment that moved past the range are seen too.

Local: the snapshot's files through pyarrow's S3FileSystem (WL_S3_ENDPOINT_URL, e.g. the moto
server), handed to DuckDB as a pyarrow dataset (hive partitions dt/merchant_id; DuckDB pushes
filters and projections into the scan); DuckDB's own httpfs is not needed. Production:
WL_LAKE_ENGINE=athena runs the same SQL through pyathena (WL_ATHENA_WORKGROUP, WL_ATHENA_OUTPUT,
WL_GLUE_DATABASE, WL_ATHENA_TABLE), restricted to the snapshot's files by Athena's "$path".
Every engine error is LakeUnavailable (the API's 503). Importing this module imports neither
DuckDB nor pyarrow nor pyathena nor boto3 (the API imports it at startup), and never Dagster or
pyspark."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from wallet_lake.contracts.landing import CURATED_PREFIX, DAILY_PREFIX, DAY_MANIFEST_PREFIX, MOVERS_MANIFEST_KEY
from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_PARTITION_COLUMNS, duckdb_types
from wallet_lake.lake.reader import CuratedFile, ManifestIndex, curated_files
from wallet_lake.lake.scan_plan import HourFiles, LakeFile, ScanPlan, plan_scan
from wallet_lake.lake.store import LakeStore, open_lake
from wallet_lake.lake.views import (
    CURATED_RELATION, DAY_RECORDS, HOUR_RECORDS, LATEST_VIEW_NAME, LATEST_VIEW_SQL, ROWS_FROM_PARAM, bounded_latest_ctes,
)
from wallet_lake.contracts.report_relations import relation_ctes
from wallet_lake import sql_placeholders

SCAN_FROM_PARAM = "lake_scan_from"
FILES_PARAM = "lake_files"  # Athena: the snapshot's files, as "$path" values
ATHENA_MAX_QUERY_BYTES = 262_144  # Athena refuses a longer query string


class LakeUnavailable(RuntimeError):
    """The lake cannot answer now: not configured, storage or engine unreachable, timed out, or
    any other engine error (out of memory included)."""


class LakeScanTooLarge(ValueError):
    """The partitions a query would scan hold more bytes than the configured bound."""

    def __init__(self, scan_bytes: int, max_bytes: int) -> None:
        super().__init__(f"the scan would read {scan_bytes} bytes; at most {max_bytes} are allowed")
        self.scan_bytes, self.max_bytes = scan_bytes, max_bytes


@dataclass(frozen=True)
class LakeQueryConfig:
    engine: Literal["duckdb", "athena"]
    bucket: str
    s3_endpoint_url: str | None = None
    region: str | None = None
    timeout_s: float = 60.0
    athena_workgroup: str | None = None
    athena_output: str | None = None
    athena_database: str = "wallet_db"
    athena_table: str = "curated_payments"
    # Type of the dt partition column in the Glue table: "string" (yyyy-MM-dd, compared as text
    # so partition projection prunes) or "date".
    athena_dt_type: Literal["string", "date"] = "string"
    # Athena writes every query's results under athena_output: SSE-KMS under the project's key,
    # like every other object the project writes.
    kms_key_id: str | None = None
    # DuckDB bounds (the reports API sets them from its settings; None keeps DuckDB's defaults:
    # 80% of RAM, one thread per core, no scan bound). Athena bounds itself (workgroup limits).
    duckdb_memory_limit: str | None = None
    duckdb_threads: int | None = None
    max_scan_bytes: int | None = None
    # Local copies of the lake's (immutable) files for DuckDB (lake/file_cache.py); None: read S3
    # through pyarrow datasets.
    cache_dir: str | None = None
    cache_max_bytes: int = 4 * 1024**3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakeQueryConfig:
        from wallet_lake.settings import GlueSettings, LakeSettings, SettingsError, load

        try:
            lake, glue = load(LakeSettings, env), load(GlueSettings, env)
        except SettingsError as exc:  # a lake not configured answers 503, like one unreachable
            raise LakeUnavailable(str(exc)) from None
        return cls(
            engine=lake.lake_engine, bucket=lake.lake_bucket, s3_endpoint_url=lake.s3_endpoint_url, region=lake.aws_region,
            timeout_s=lake.lake_query_timeout_s, athena_workgroup=glue.athena_workgroup, athena_output=glue.athena_output,
            athena_database=glue.glue_database, athena_table=glue.athena_table, athena_dt_type=glue.athena_dt_type,
            kms_key_id=lake.kms_key_id,
        )


def compose(statement: str, curated_source: str) -> str:
    """`statement` with the lake's relations defined ahead of it as CTEs; `curated_source` is a
    SELECT of the curated columns (the engine's scan of the Parquet files)."""
    return compose_ctes(statement, [(CURATED_RELATION, curated_source), (LATEST_VIEW_NAME, LATEST_VIEW_SQL)])


def compose_ctes(statement: str, latest: list[tuple[str, str]]) -> str:
    """`statement` with `latest` (CTEs ending with the latest-record view) and the report
    relations over it defined ahead of it."""
    ctes = [*latest, *relation_ctes(LATEST_VIEW_NAME)]
    defined = ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in ctes)
    body = statement.strip()
    # A statement with CTEs of its own continues the list; the names do not collide.
    if re.match(r"(?is)^with\s", body):
        return f"WITH {defined},\n{body[4:].lstrip()}"
    return f"WITH {defined}\n{body}"


@dataclass(frozen=True)
class LakeSnapshot:
    """The files one query reads: the curated files of dt >= scan_from that the hours'
    manifests list, each manifest as read once (one version of every hour)."""

    files: tuple[CuratedFile, ...]

    @property
    def scan_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


class _Manifests:
    """The lake's manifest indexes (hours, compacted days, movers), created on first use (the
    store's client is made then)."""

    def __init__(self, config: LakeQueryConfig, store: LakeStore | None) -> None:
        self.config, self._store = config, store
        self._indexes: tuple[ManifestIndex, ManifestIndex, ManifestIndex] | None = None
        self._lock = threading.Lock()
        self._hour_files: tuple[frozenset, HourFiles] | None = None  # the last hour manifests' HourFiles

    def store(self) -> LakeStore:
        with self._lock:
            if self._store is None:
                c = self.config
                self._store = open_lake(f"s3://{c.bucket}", kms_key_id=c.kms_key_id, s3_endpoint_url=c.s3_endpoint_url, region=c.region)
            return self._store

    def _read(self, *, hours_only: bool = False) -> tuple[list[dict], frozenset, list[dict], dict | None]:
        """The hour manifests and their versions; unless hours_only, the day manifests and the
        movers manifest too (Athena reads the hour files only)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            store = self.store()
            with self._lock:
                if self._indexes is None:
                    self._indexes = (ManifestIndex(store), ManifestIndex(store, prefix=DAY_MANIFEST_PREFIX),
                                     ManifestIndex(store, prefix=MOVERS_MANIFEST_KEY.rsplit("/", 1)[0] + "/"))
            hours, days, movers = self._indexes
            # Hours first: day files and index rows are used only where the digests of these hours
            # match theirs (scan_plan), so the three reads need not be one instant.
            hour_manifests, versions = hours.current_versioned()
            if hours_only:
                return hour_manifests, versions, [], None
            movers_manifest = next((m for m in movers.current() if m.get("file")), None)
            return hour_manifests, versions, days.current(), movers_manifest
        except (OSError, ValueError, BotoCoreError, ClientError) as exc:  # ValueError: a manifest that is not JSON
            raise LakeUnavailable(f"cannot read the lake's manifests ({type(exc).__name__}): {exc}") from exc

    def snapshot(self, scan_from: dt.date | None) -> LakeSnapshot:
        """Every current hour file of dt >= scan_from (the unbounded scan Athena runs)."""
        hour_manifests, _, _, _ = self._read(hours_only=True)
        return LakeSnapshot(tuple(curated_files(hour_manifests, dt_from=scan_from)))

    def plan(self, scan_from: dt.date, scan_to: dt.date | None) -> ScanPlan:
        """The files of a bounded query of the dts [scan_from, scan_to] (None: every later dt)."""
        hour_manifests, versions, day_manifests, movers_manifest = self._read()
        cached = self._hour_files
        if cached is None or cached[0] != versions or len(versions) != len(hour_manifests):
            cached = (versions, HourFiles.of(hour_manifests))
            self._hour_files = cached
        return plan_scan(cached[1], day_manifests, movers_manifest, scan_from, scan_to or dt.date.max)


class LakeQueryEngine(Protocol):
    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date,
              scan_to: dt.date | None = None) -> list[dict[str, Any]]: ...


class DuckDBLake:
    """DuckDB in memory, a fresh connection per query, over pyarrow datasets of exactly the files
    of a ScanPlan (lake/scan_plan.py): the compacted and hour files of the range, and past it
    only payment ids. `query` = `scan(snapshot(...), ...)`; the two steps are apart so a test can
    change the lake between them."""

    def __init__(self, config: LakeQueryConfig, filesystem: Any = None, store: LakeStore | None = None) -> None:
        self.config = config
        self._filesystem = filesystem
        self._manifests = _Manifests(config, store)
        self._cache = None
        self._cache_lock = threading.Lock()

    def file_cache(self):
        """The local copies of lake files (None: not configured, or the lake is a local folder)."""
        if self.config.cache_dir is None or self.local_root() is not None:
            return None
        with self._cache_lock:
            if self._cache is None:
                from wallet_lake.lake.file_cache import FileCache

                self._cache = FileCache(self.config.cache_dir, self.config.cache_max_bytes, self._manifests.store().get_bytes)
            return self._cache

    def local_paths(self, files: list[LakeFile]) -> list[str] | None:
        """Local paths of `files` (a local lake, or the file cache), None when they are read from S3."""
        root = self.local_root()
        if root is not None:
            return [f"{root}/{f.key}" for f in files]
        cache = self.file_cache()
        return cache.local_paths([f.key for f in files]) if cache is not None else None

    def filesystem(self):
        if self._filesystem is None:
            from pyarrow import fs as pafs

            kwargs: dict[str, Any] = {"region": self.config.region or "us-east-1"}
            if self.config.s3_endpoint_url:
                u = urlparse(self.config.s3_endpoint_url)
                kwargs.update(endpoint_override=u.netloc, scheme=u.scheme or "https")
            self._filesystem = pafs.S3FileSystem(**kwargs)
        return self._filesystem

    def _path(self, key: str) -> str:
        return f"{self.config.bucket}/{key}"

    def snapshot(self, scan_from: dt.date, scan_to: dt.date | None = None) -> ScanPlan:
        """The files the query will read; LakeScanTooLarge past max_scan_bytes (before DuckDB runs)."""
        import pyarrow as pa

        plan = self._manifests.plan(scan_from, scan_to)
        unsized = [f for f in plan.files if f.size is None]
        if unsized and self.config.max_scan_bytes is not None:  # manifests older than format 4: ask the store
            try:
                infos = self.filesystem().get_file_info([self._path(f.key) for f in unsized])
            except (OSError, pa.ArrowException) as exc:
                raise LakeUnavailable(f"cannot read the lake: {exc}") from exc
            sizes = {f.key: i.size or 0 for f, i in zip(unsized, infos)}
            for name in ("day_files", "hour_files", "presence_day_files", "presence_hour_files"):
                setattr(plan, name, [LakeFile(f.key, f.dt, sizes.get(f.key, f.size)) for f in getattr(plan, name)])
        if self.config.max_scan_bytes is not None and plan.scan_bytes > self.config.max_scan_bytes:
            raise LakeScanTooLarge(plan.scan_bytes, self.config.max_scan_bytes)
        return plan

    def dataset(self, files: list[LakeFile], prefix: str = CURATED_PREFIX):
        """The files as one pyarrow dataset (dt and merchant_id from the Hive path under `prefix`).
        Nothing is opened until the scan: a file gone by then fails the scan."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        from wallet_lake.contracts.schema import arrow_schema

        schema = arrow_schema()
        partitioning = ds.partitioning(pa.schema([schema.field(c) for c in CURATED_PARTITION_COLUMNS]), flavor="hive")
        return ds.dataset(
            [self._path(f.key) for f in files], schema=schema, format="parquet", filesystem=self.filesystem(),
            partitioning=partitioning, partition_base_dir=self._path(prefix.rstrip("/")),
        )

    def movers(self, plan: ScanPlan):
        """The movers index's rows of plan.movers_dts (an empty table without an index)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        schema = pa.schema([("payment_id", pa.string()), ("dt", pa.date32())])
        if plan.movers_key is None:
            return schema.empty_table()
        local = self.local_paths([LakeFile(plan.movers_key, dt.date.min, None)])
        if local is not None:
            table = pq.read_table(local[0], schema=schema)
        else:
            table = pq.read_table(self._path(plan.movers_key), filesystem=self.filesystem(), schema=schema)
        return table.filter(pc.is_in(table.column("dt"), pa.array(plan.movers_dts, pa.date32())))

    def connect(self):
        """A fresh in-memory DuckDB with the configured memory and thread bounds (given at
        connect time, so they hold before the first statement)."""
        import duckdb

        config: dict[str, Any] = {}
        if self.config.duckdb_memory_limit is not None:
            config["memory_limit"] = self.config.duckdb_memory_limit
        if self.config.duckdb_threads is not None:
            config["threads"] = self.config.duckdb_threads
        return duckdb.connect(config=config)

    def local_root(self) -> str | None:
        """The lake's folder when its files are on this machine (a local lake), else None."""
        from pyarrow import fs as pafs

        return self.config.bucket if isinstance(self.filesystem(), pafs.LocalFileSystem) else None

    def _native_view(self, con, name: str, paths: list[str], columns: tuple[str, ...]) -> None:
        """`name` as a view over `files` through DuckDB's own Parquet reader (dt and merchant_id
        from the Hive path), each column cast to its contract type: several times faster than
        a pyarrow dataset over the many small files of a range."""
        types = duckdb_types()
        if not paths:
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT "
                        + ", ".join(f"CAST(NULL AS {types[c]}) AS {c}" for c in columns) + " WHERE false")
            return
        # Paths are the manifests' keys under the lake's folder, quoted as SQL text (a view takes no
        # parameters).
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT "
                    + ", ".join(f"CAST({c} AS {types[c]}) AS {c}" for c in columns)
                    + f" FROM read_parquet([{listed}], hive_partitioning = true, hive_types = {{'dt': DATE, 'merchant_id': VARCHAR}})")

    def _relations(self, con, plan: ScanPlan) -> None:
        later = ("payment_id", "dt")
        relations = ((DAY_RECORDS, plan.day_files, CURATED_COLUMNS), (HOUR_RECORDS, plan.hour_files, CURATED_COLUMNS),
                     ("lake_presence_days", plan.presence_day_files, later), ("lake_presence_hours", plan.presence_hour_files, later))
        local = self.local_paths(plan.files)
        if local is not None:
            by_key = dict(zip((f.key for f in plan.files), local))
            for name, files, cols in relations:
                self._native_view(con, name, [by_key[f.key] for f in files], cols)
        else:
            con.register(DAY_RECORDS, self.dataset(plan.day_files, DAILY_PREFIX))
            con.register(HOUR_RECORDS, self.dataset(plan.hour_files))
            con.register("lake_presence_days", self.dataset(plan.presence_day_files, DAILY_PREFIX))
            con.register("lake_presence_hours", self.dataset(plan.presence_hour_files))
        con.register("lake_movers", self.movers(plan))

    def scan(self, plan: ScanPlan, statement: str, params: Mapping[str, Any], **_: Any) -> list[dict[str, Any]]:
        import duckdb
        import pyarrow as pa
        from botocore.exceptions import BotoCoreError, ClientError

        sql = sql_placeholders.to_duckdb(compose_ctes(statement, bounded_latest_ctes(range_rows_are_later=plan.rows_from is not None)))
        values = dict(params)
        if plan.rows_from is not None:
            values[ROWS_FROM_PARAM] = plan.rows_from
        try:
            con = self.connect()
        except (OSError, duckdb.Error, pa.ArrowException) as exc:
            raise LakeUnavailable(f"cannot start the lake query ({type(exc).__name__}): {exc}") from exc
        timer = threading.Timer(self.config.timeout_s, con.interrupt)
        try:
            con.execute("SET TimeZone = 'UTC'")  # a Parquet timestamp without a zone is UTC (Spark's INT96)
            self._relations(con, plan)
            timer.start()
            cur = con.execute(sql, values)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except duckdb.InterruptException as exc:
            raise LakeUnavailable(f"lake query exceeded {self.config.timeout_s} s") from exc
        except (OSError, duckdb.Error, pa.ArrowException, BotoCoreError, ClientError) as exc:
            # Every engine error, out-of-memory and a file deleted since the snapshot included, is
            # the lake failing to answer now (503), never an unexpected 500: the statement is the
            # project's own, not the caller's.
            raise LakeUnavailable(f"lake query failed ({type(exc).__name__}): {exc}") from exc
        finally:
            timer.cancel()
            con.close()

    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date,
              scan_to: dt.date | None = None) -> list[dict[str, Any]]:
        return self.scan(self.snapshot(scan_from, scan_to), statement, params)


class AthenaLake:
    """Athena through pyathena: the same composed SQL over the Glue table of curated Parquet,
    restricted to the snapshot's files ("$path"). Athena bounds the run time itself (workgroup
    limits); results land in WL_ATHENA_OUTPUT."""

    def __init__(self, config: LakeQueryConfig, store: LakeStore | None = None) -> None:
        if not (config.athena_workgroup or config.athena_output):
            raise LakeUnavailable("Athena needs WL_ATHENA_WORKGROUP or WL_ATHENA_OUTPUT")
        self.config = config
        self._manifests = _Manifests(config, store)

    def source_sql(self) -> str:
        c = self.config
        cols = ", ".join("CAST(dt AS DATE) AS dt" if col == "dt" else col for col in CURATED_COLUMNS)
        # A string dt is compared with the bound as text (ISO dates sort as text; see query()),
        # so that partition pruning applies; "$path" keeps the files no manifest lists out.
        return (f'SELECT {cols} FROM "{c.athena_database}"."{c.athena_table}" '
                f'WHERE dt >= %({SCAN_FROM_PARAM})s AND "$path" IN %({FILES_PARAM})s')

    def composed(self, statement: str) -> str:
        return compose(statement, self.source_sql())

    def file_paths(self, snapshot: LakeSnapshot) -> list[str]:
        """The "$path" values of the snapshot's files; an empty snapshot binds one no object has
        (IN () is not SQL)."""
        return [f"s3://{self.config.bucket}/{f.key}" for f in snapshot.files] or [""]

    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date,
              scan_to: dt.date | None = None) -> list[dict[str, Any]]:
        """Every hour file of dt >= scan_from (scan_to unused: Athena reads the Glue table of the
        hour files, and its "$path" list cannot name a compacted copy of the same rows)."""
        from pyathena import connect
        from pyathena.error import Error as AthenaError
        from pyathena.formatter import DefaultParameterFormatter

        c = self.config
        bound = scan_from.isoformat() if c.athena_dt_type == "string" else scan_from
        values = {**params, SCAN_FROM_PARAM: bound, FILES_PARAM: self.file_paths(self._manifests.snapshot(scan_from))}
        sql = self.composed(statement)
        if len(DefaultParameterFormatter().format(sql, values).encode()) > ATHENA_MAX_QUERY_BYTES:
            raise LakeUnavailable(f"the scan names {len(values[FILES_PARAM])} files, more than one Athena query can list")
        try:
            encryption = {"encryption_option": "SSE_KMS", "kms_key": c.kms_key_id} if c.kms_key_id else {}
            with connect(
                work_group=c.athena_workgroup, s3_staging_dir=c.athena_output, region_name=c.region,
                schema_name=c.athena_database, **encryption,
            ) as conn:
                cur = conn.cursor()
                cur.execute(sql, values)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        except AthenaError as exc:
            raise LakeUnavailable(f"Athena query failed: {exc}") from exc


def open_lake_engine(config: LakeQueryConfig | None = None) -> LakeQueryEngine:
    """The engine WL_LAKE_ENGINE names (duckdb by default)."""
    config = config or LakeQueryConfig.from_env()
    return AthenaLake(config) if config.engine == "athena" else DuckDBLake(config)
