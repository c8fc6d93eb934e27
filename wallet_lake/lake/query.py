"""SQL over the lake's curated Parquet: DuckDB embedded (local, tests) or Athena (production).

The reports API runs its report SQL here for `source=lake`. A statement reads relations by name
(curated_payments, curated_payments_latest, report_status_daily, report_status_daily_all,
report_latency_daily); `compose` prefixes it with CTEs that define them over the curated files:
the latest-record view (views.py) and the report relations (contracts/report_relations.py) that
fill the Postgres tables of the same names. One text per report, two engines.

Which records are scanned: those of dt >= `scan_from` (the first dt the report asks for). That is
exact for the latest-record view: a payment's later records have later (or equal) created_at,
hence dt, so every record that can be a payment's latest one for a dt >= scan_from is in the scan,
and records of a payment that moved past the range are seen too.

Local: pyarrow's S3FileSystem (WL_S3_ENDPOINT_URL, e.g. the moto server) lists the dt= partitions
from scan_from on and hands DuckDB a pyarrow dataset (hive partitions dt/merchant_id; DuckDB
pushes filters and projections into the scan); DuckDB's own httpfs is not needed. Production:
WL_LAKE_ENGINE=athena runs the same SQL through pyathena (WL_ATHENA_WORKGROUP, WL_ATHENA_OUTPUT,
WL_GLUE_DATABASE, WL_ATHENA_TABLE). Importing this module imports neither DuckDB nor pyarrow nor
pyathena (the API imports it at startup), and never Dagster or pyspark."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from wallet_lake.contracts.schema import CURATED_COLUMNS, CURATED_PARTITION_COLUMNS
from wallet_lake.lake.views import CURATED_RELATION, LATEST_VIEW_NAME, LATEST_VIEW_SQL
from wallet_lake.contracts.report_relations import relation_ctes

CURATED_PREFIX = "curated/payments"
SCAN_FROM_PARAM = "lake_scan_from"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


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
    ctes = [
        (CURATED_RELATION, curated_source),
        (LATEST_VIEW_NAME, LATEST_VIEW_SQL),
        *relation_ctes(LATEST_VIEW_NAME),
    ]
    defined = ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in ctes)
    body = statement.strip()
    # A statement with CTEs of its own continues the list; the names do not collide.
    if re.match(r"(?is)^with\s", body):
        return f"WITH {defined},\n{body[4:].lstrip()}"
    return f"WITH {defined}\n{body}"


def to_duckdb_placeholders(sql: str) -> str:
    """%(name)s (psycopg, pyathena) -> $name (DuckDB)."""
    return _PLACEHOLDER.sub(lambda m: f"${m.group(1)}", sql)


class LakeQueryEngine(Protocol):
    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date) -> list[dict[str, Any]]: ...


class DuckDBLake:
    """DuckDB in memory, a fresh connection per query (so new files are always seen) over a
    pyarrow dataset of the curated partitions from scan_from on."""

    def __init__(self, config: LakeQueryConfig, filesystem: Any = None) -> None:
        self.config = config
        self._filesystem = filesystem

    def filesystem(self):
        if self._filesystem is None:
            from pyarrow import fs as pafs

            kwargs: dict[str, Any] = {"region": self.config.region or "us-east-1"}
            if self.config.s3_endpoint_url:
                u = urlparse(self.config.s3_endpoint_url)
                kwargs.update(endpoint_override=u.netloc, scheme=u.scheme or "https")
            self._filesystem = pafs.S3FileSystem(**kwargs)
        return self._filesystem

    def dataset(self, scan_from: dt.date):
        """The curated files of the partitions dt >= scan_from, as one pyarrow dataset."""
        import pyarrow as pa
        import pyarrow.dataset as ds
        from pyarrow import fs as pafs

        from wallet_lake.contracts.schema import arrow_schema

        fs = self.filesystem()
        base = f"{self.config.bucket}/{CURATED_PREFIX}"
        files: list[str] = []
        scan_bytes = 0
        for part in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=False)):
            name = part.path.rsplit("/", 1)[-1]
            if part.type != pafs.FileType.Directory or not name.startswith("dt="):
                continue
            try:
                day = dt.date.fromisoformat(name[3:])
            except ValueError:
                continue  # not a partition of ours
            if day < scan_from:
                continue
            # A partition can vanish between the two listings (a rerun's swap deleted it), and a
            # versioned bucket may list a prefix whose objects are all deleted: both are empty.
            for f in fs.get_file_info(pafs.FileSelector(part.path, recursive=True, allow_not_found=True)):
                leaf = f.path.rsplit("/", 1)[-1]
                if f.type == pafs.FileType.File and leaf.endswith(".parquet") and not leaf.startswith(("_", ".")):
                    files.append(f.path)
                    scan_bytes += f.size or 0
        if self.config.max_scan_bytes is not None and scan_bytes > self.config.max_scan_bytes:
            raise LakeScanTooLarge(scan_bytes, self.config.max_scan_bytes)
        schema = arrow_schema()
        partitioning = ds.partitioning(
            pa.schema([schema.field(c) for c in CURATED_PARTITION_COLUMNS]), flavor="hive"
        )
        return ds.dataset(
            sorted(files), schema=schema, format="parquet", filesystem=fs,
            partitioning=partitioning, partition_base_dir=base,
        )

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

    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date) -> list[dict[str, Any]]:
        import duckdb
        import pyarrow as pa

        try:
            files = self.dataset(scan_from)
        except (OSError, pa.ArrowException) as exc:
            raise LakeUnavailable(f"cannot list the lake: {exc}") from exc
        sql = to_duckdb_placeholders(
            compose(statement, f"SELECT {', '.join(CURATED_COLUMNS)} FROM curated_files WHERE dt >= %({SCAN_FROM_PARAM})s")
        )
        try:
            con = self.connect()
        except duckdb.Error as exc:
            raise LakeUnavailable(f"cannot start DuckDB: {exc}") from exc
        timer = threading.Timer(self.config.timeout_s, con.interrupt)
        try:
            con.register("curated_files", files)
            timer.start()
            cur = con.execute(sql, {**params, SCAN_FROM_PARAM: scan_from})
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except duckdb.InterruptException as exc:
            raise LakeUnavailable(f"lake query exceeded {self.config.timeout_s} s") from exc
        except (OSError, duckdb.Error, pa.ArrowException) as exc:
            # Every engine error, out-of-memory included, is the lake failing to answer now (503),
            # never an unexpected 500: the statement is the project's own, not the caller's.
            raise LakeUnavailable(f"lake query failed ({type(exc).__name__}): {exc}") from exc
        finally:
            timer.cancel()
            con.close()


class AthenaLake:
    """Athena through pyathena: the same composed SQL over the Glue table of curated Parquet.
    Athena bounds the run time itself (workgroup limits); results land in WL_ATHENA_OUTPUT."""

    def __init__(self, config: LakeQueryConfig) -> None:
        if not (config.athena_workgroup or config.athena_output):
            raise LakeUnavailable("Athena needs WL_ATHENA_WORKGROUP or WL_ATHENA_OUTPUT")
        self.config = config

    def source_sql(self) -> str:
        c = self.config
        cols = ", ".join("CAST(dt AS DATE) AS dt" if col == "dt" else col for col in CURATED_COLUMNS)
        # A string dt is compared with the bound as text (ISO dates sort as text; see query()),
        # so that partition pruning applies.
        return f'SELECT {cols} FROM "{c.athena_database}"."{c.athena_table}" WHERE dt >= %({SCAN_FROM_PARAM})s'

    def composed(self, statement: str) -> str:
        return compose(statement, self.source_sql())

    def query(self, statement: str, params: Mapping[str, Any], *, scan_from: dt.date) -> list[dict[str, Any]]:
        from pyathena import connect
        from pyathena.error import Error as AthenaError

        c = self.config
        try:
            encryption = {"encryption_option": "SSE_KMS", "kms_key": c.kms_key_id} if c.kms_key_id else {}
            with connect(
                work_group=c.athena_workgroup, s3_staging_dir=c.athena_output, region_name=c.region,
                schema_name=c.athena_database, **encryption,
            ) as conn:
                cur = conn.cursor()
                bound = scan_from.isoformat() if c.athena_dt_type == "string" else scan_from
                cur.execute(self.composed(statement), {**params, SCAN_FROM_PARAM: bound})
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        except AthenaError as exc:
            raise LakeUnavailable(f"Athena query failed: {exc}") from exc


def open_lake_engine(config: LakeQueryConfig | None = None) -> LakeQueryEngine:
    """The engine WL_LAKE_ENGINE names (duckdb by default)."""
    config = config or LakeQueryConfig.from_env()
    return AthenaLake(config) if config.engine == "athena" else DuckDBLake(config)
