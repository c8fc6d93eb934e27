"""Every setting of wallet-lake, declared once: its environment variable, type, default, bounds
and a one-line doc, in typed groups (pydantic-settings).

Whoever needs a setting reads it from here: the Dagster resources (wallet_lake/resources.py maps
their fields to these variables), the command-line tools, provisioning, the reports API (its
Settings derive from ApiSettings and PostgresEndpoint without importing Dagster), the generator
and the benchmarks. The README's configuration table is rendered from these declarations
(`python -m wallet_lake.settings markdown`; a test keeps the README equal to it).

A field's variable is WL_<FIELD> unless it has an alias (AWS_REGION). A variable set to the empty
string counts as unset (stack/local.env writes `NAME=` for "none"). Secrets are declared in
SecretSettings for their docs and names (wallet_lake/security/secrets.py resolves their values,
possibly from Secrets Manager); no secret value is ever a field of another group."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Optional, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names variables, never their values."""


# Set while load() validates values it took from a mapping: the process environment must not
# fill in what the mapping lacks.
_MAPPING_ONLY: ContextVar[bool] = ContextVar("wallet_lake_settings_mapping_only", default=False)


class Group(BaseSettings):
    """A group of settings read from WL_* variables (`Group()` reads os.environ directly;
    load() reads any mapping, treating empty values as unset)."""

    model_config = SettingsConfigDict(env_prefix="WL_", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings,) if _MAPPING_ONLY.get() else (init_settings, env_settings)
    TITLE: ClassVar[str] = ""


G = TypeVar("G", bound=Group)


def env_name(group: type[Group], field: str) -> str:
    """The environment variable of a field."""
    info = group.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return "WL_" + field.upper()


def env_names(group: type[Group]) -> dict[str, str]:
    return {f: env_name(group, f) for f in group.model_fields}


def load(group: type[G], env: Mapping[str, str] | None = None, **overrides) -> G:
    """The group's values from `env` (default os.environ; empty means unset), with an error that
    names the variables and never echoes a value."""
    env = os.environ if env is None else env
    names = env_names(group)
    # A field with an alias validates under that name only (no fallback to WL_<FIELD>).
    key = {f: (var if group.model_fields[f].validation_alias else f) for f, var in names.items()}
    data = {key[f]: env[var] for f, var in names.items() if (env.get(var) or "").strip() != ""}
    data.update({key.get(f, f): v for f, v in overrides.items()})
    token = _MAPPING_ONLY.set(True)
    try:
        return group(**data)
    except ValidationError as exc:
        names = env_names(group)
        problems = "; ".join(
            f"{names.get(str(err['loc'][0]), err['loc'][0]) if err['loc'] else group.__name__}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
    finally:
        _MAPPING_ONLY.reset(token)


def default(group: type[Group], field: str):
    return group.model_fields[field].default


def doc(group: type[Group], field: str) -> str:
    return group.model_fields[field].description or ""


# ---------------------------------------------------------------------------------------- groups


class AwsSettings(Group):
    """Where the AWS APIs are, and the project's KMS key (every AWS client, secrets included)."""

    TITLE: ClassVar[str] = "AWS"
    aws_region: Annotated[Optional[str], Field(validation_alias=AliasChoices("AWS_REGION"), description="AWS region of every client")] = None
    s3_endpoint_url: Annotated[Optional[str], Field(description="S3-compatible endpoint (the local AWS API, which also serves KMS, Glue, Athena and Secrets Manager); unset on AWS")] = None
    secrets_endpoint_url: Annotated[Optional[str], Field(description="Secrets Manager endpoint (default: WL_S3_ENDPOINT_URL's, then AWS's own)")] = None
    kms_key_id: Annotated[Optional[str], Field(description="KMS key for SSE-KMS on every object written: an alias or id locally; on AWS the key's ARN (the bucket policy pins the key by ARN)")] = None

    def secrets_endpoint(self) -> Optional[str]:
        return self.secrets_endpoint_url or self.s3_endpoint_url


class LakeSettings(AwsSettings):
    TITLE: ClassVar[str] = "Lake (S3)"
    lake_bucket: Annotated[str, Field(min_length=1, description="lake bucket (landing, curated, quarantine, manifests)")]
    lake_uri: Annotated[Optional[str], Field(description="the lake's root URI for command-line tools (default s3://WL_LAKE_BUCKET; file:///path for a local folder)")] = None
    lake_engine: Annotated[Literal["duckdb", "athena"], Field(description="engine of the API's source=lake reports: DuckDB in the API process, or Athena")] = "duckdb"
    lake_query_timeout_s: Annotated[float, Field(gt=0, description="seconds a lake query may run before it answers 503")] = 60.0
    compaction_closed_after_days: Annotated[int, Field(ge=1, description="whole days after a dt ends before the daily compaction rewrites it (defs/curated/compaction.py)")] = 2


class BucketProvisionSettings(Group):
    TITLE: ClassVar[str] = "Lake bucket provisioning"
    s3_bucket_policy: Annotated[Literal["apply", "skip"], Field(description="apply the bucket policy (infra/s3/) at provisioning, or skip it (moto enforces its Deny statements without their conditions)")] = "apply"
    s3_noncurrent_version_days: Annotated[int, Field(ge=1, description="days the versioned lake bucket keeps an overwritten or deleted object's old version before the lifecycle rule expires it")] = 30


class GlueSettings(Group):
    TITLE: ClassVar[str] = "Glue, Athena and the curation launcher"
    glue_database: Annotated[str, Field(min_length=1, description="Glue Data Catalog database of the lake's tables")] = "wallet_db"
    glue_job_name: Annotated[str, Field(min_length=1, description="the curation Glue job")] = "wallet-lake-curate"
    glue_role_arn: Annotated[str, Field(min_length=1, description="IAM role the Glue job runs as (provisioning)")] = "arn:aws:iam::123456789012:role/wallet-lake-glue-curate"
    curation_launcher: Annotated[Literal["local", "glue"], Field(description="where curated_payments runs: Spark in the run's process, or the Glue job through Dagster Pipes")] = "local"
    pipes_messages: Annotated[Literal["s3", "cloudwatch"], Field(description="how the Glue job's Pipes messages come back")] = "s3"
    athena_workgroup: Annotated[Optional[str], Field(description="Athena workgroup of source=lake queries (WL_LAKE_ENGINE=athena)")] = None
    athena_output: Annotated[Optional[str], Field(description="s3:// prefix of Athena query results")] = None
    athena_table: Annotated[str, Field(min_length=1, description="Athena table of curated payments")] = "curated_payments"
    athena_dt_type: Annotated[Literal["string", "date"], Field(description="type of the dt partition column in the Glue table")] = "string"


class SparkSettings(Group):
    TITLE: ClassVar[str] = "Spark (local launcher)"
    spark_master: Annotated[str, Field(description="Spark master of the local launcher")] = "local[2]"
    spark_driver_memory: Annotated[str, Field(description="Spark driver memory")] = "2g"
    # One shuffle partition per core of local[2]: with 4, adaptive execution coalesced a 1M-event
    # hour's dedupe and write to 3 tasks, whose last ran alone on one core (docs/benchmarks.md).
    spark_shuffle_partitions: Annotated[int, Field(ge=1, description="spark.sql.shuffle.partitions (local launcher and curation worker; one per core of spark_master)")] = 2
    # Two per core of local[2]: hashed by (landing hour, dt, merchant_id), two tasks split a busy
    # hour's merchants unevenly (the biggest holds ~19 % of the rows; one task ran 2.81 s against
    # 1.63 s, a core idle meanwhile); with four, a warm 1M-event hour took 0.88 s less on
    # average, lower in 11 of 14 alternating pairs (docs/benchmarks.md, curated_payments, session
    # 36). A number given to Spark is not coalesced by adaptive execution.
    spark_write_partitions: Annotated[int, Field(ge=0, description="tasks of the curated write, hashed by landing hour, dt and merchant_id (local launcher and curation worker; 0: spark_shuffle_partitions, coalesced by adaptive execution, as on Glue)")] = 4
    spark_worker_socket: Annotated[Optional[str], Field(description="Unix socket of the warm curation worker (lake/curation_worker.py, started by stack/wallet-stack up) the local launcher curates on; unset or not answering = Spark in the run's own process")] = None
    # 100,000: the first 1M-event hour after a start took 1.37x a warm one (median of seven direct
    # trials) against 1.50x after 2,000 events (five), ~1.5-3 s; the warm-up runs in a thread
    # while the worker serves, so no run waits for it (docs/benchmarks.md). At most 1M: it is
    # generated in memory.
    spark_worker_warmup_events: Annotated[int, Field(ge=0, le=1_000_000, description="generated events the curation worker curates in a throwaway lake once it serves, in the background, so that its first real hour runs on JIT-compiled code; the first run stops it (0: none)")] = 100_000
    # A run that stops the warm-up early curates on a cold JIT, and a small one leaves it cold
    # for the next busy hour; the rest of the warm-up goes on once the worker has been idle this
    # long, so that it does not take CPU from the steps after the run (publish, sink).
    spark_worker_warmup_resume_s: Annotated[float, Field(ge=0, le=3600, description="seconds without a run after which the curation worker resumes a warm-up that a run stopped, for the events the runs since have not curated; doubled for each resumed warm-up a run stops, to at most Warming.RESUME_BACKOFF_LIMIT times this (0: at once, no backoff)")] = 60.0


class KafkaSettings(Group):
    TITLE: ClassVar[str] = "Kafka"
    kafka_bootstrap: Annotated[str, Field(min_length=1, description="bootstrap servers of the clients' listener (SASL_SSL)")]
    kafka_topic: Annotated[str, Field(min_length=1, description="the curated topic")] = "payments.curated"
    kafka_replication_factor: Annotated[int, Field(ge=1, description="replication factor of the topics provisioning creates (the curated topic); 3 on a 3-broker cluster")] = 1
    kafka_security_protocol: Annotated[Literal["SASL_SSL", "SASL_PLAINTEXT", "PLAINTEXT"], Field(description="how the pipeline's Kafka clients connect")] = "SASL_SSL"
    kafka_sasl_mechanism: Annotated[Optional[str], Field(description="SASL mechanism, e.g. SCRAM-SHA-512")] = None
    kafka_sasl_username: Annotated[Optional[str], Field(description="the pipeline's SASL user (its password is the secret WL_KAFKA_SASL_PASSWORD)")] = None
    kafka_ssl_ca_location: Annotated[Optional[str], Field(description="CA (PEM) the clients verify the broker's certificate and host name against; unset = the system's (MSK)")] = None
    kafka_internal_port: Annotated[Optional[int], Field(ge=1, le=65535, description="the broker's mutual-TLS listener (inter-broker, the provisioning admin)")] = None
    tls_dir: Annotated[Optional[str], Field(description="the local stack's certificates (stack/tls.py): CA, broker, admin client, Postgres server")] = None


class PostgresTls(Group):
    """How every Postgres client verifies the server."""

    TITLE: ClassVar[str] = "Postgres TLS"
    pg_sslmode: Annotated[Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], Field(description="libpq sslmode of every client: verify-full checks the server's certificate and host")] = "verify-full"
    pg_sslrootcert: Annotated[Optional[str], Field(description="CA (PEM) the clients check the server against (on RDS its CA bundle); unset = libpq's default")] = None


class PostgresEndpoint(PostgresTls):
    """Where Postgres is (shared by every role's connections)."""

    TITLE: ClassVar[str] = "Postgres"
    pg_host: Annotated[str, Field(min_length=1, description="Postgres host")]
    pg_port: Annotated[int, Field(ge=1, le=65535, description="Postgres port")] = 5432
    pg_db: Annotated[str, Field(min_length=1, description="the serving database (curated_payments, report aggregates, ledger, API keys)")]


class PostgresSettings(PostgresEndpoint):
    """The roles of each duty (their grants: wallet_lake/serving/pg_roles.py; passwords are secrets)."""

    TITLE: ClassVar[str] = "Postgres roles and databases"

    dagster_pg_db: Annotated[str, Field(min_length=1, description="database of the Dagster instance (runs, events, schedules)")] = "dagster"
    pg_user: Annotated[str, Field(min_length=1, description="the schema's owner: migrations, grants, test fixtures; no service logs in as it")] = "wallet_lake"
    pg_pipeline_user: Annotated[str, Field(min_length=1, description="role of the pipeline's Postgres step (aggregates, ledger, hour leases; reads curated rows)")] = "wl_pipeline"
    pg_sink_user: Annotated[str, Field(min_length=1, description="role of the JDBC sink (INSERT, UPDATE, SELECT on curated_payments)")] = "wl_sink"
    pg_api_user: Annotated[str, Field(min_length=1, description="role of the reports API (reads; API keys through api_key_lookup)")] = "wl_api"
    pg_keys_user: Annotated[str, Field(min_length=1, description="role of python -m api.keys (api_keys only)")] = "wl_keys"
    dagster_pg_user: Annotated[str, Field(min_length=1, description="role of Dagster's instance storage (owns its database only)")] = "wl_dagster"
    pg_admin_user: Annotated[str, Field(min_length=1, description="cluster administrator provisioning creates the roles with (RDS: the master user)")] = "postgres"
    pg_admin_host: Annotated[Optional[str], Field(description="its host: locally the stack's Unix socket folder; default WL_PG_HOST")] = None


class ConnectSecretSettings(Group):
    """How the sink's database password reaches the Connect worker (serving/connect_worker.py)."""

    TITLE: ClassVar[str] = "Kafka Connect: the sink's secret"
    connect_secrets: Annotated[Literal["env", "secretsmanager"], Field(description="how the sink's database password reaches the worker: its environment (local) or Secrets Manager (AWS)")] = "env"
    connect_sink_secret: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="name of the sink's secret (NAME, NAME_SECRET_ID, NAME_SECRET_KEY)")] = "WL_PG_SINK_PASSWORD"


class ConnectWorkerSettings(ConnectSecretSettings):
    """The worker's own properties (connect/worker.properties, rendered by serving/connect_worker.py)."""

    TITLE: ClassVar[str] = "Kafka Connect worker"
    connect_replication_factor: Annotated[int, Field(ge=1, description="replication factor of the worker's internal topics and the sink's dead-letter topic")] = 1
    connect_listener: Annotated[Optional[str], Field(description="listeners of the worker's REST API (the worker's properties need it; stack/wallet-stack: WL_CONNECT_URL)")] = None
    connect_advertised_host: Annotated[Optional[str], Field(description="host name the worker advertises to the other workers (the worker's properties need it)")] = None
    connect_plugin_path: Annotated[Optional[str], Field(description="plugin.path of the worker: the sink's and the config provider's folders (the worker's properties need it)")] = None


class ConnectSettings(ConnectWorkerSettings):
    TITLE: ClassVar[str] = "Kafka Connect"
    connect_url: Annotated[str, Field(min_length=1, description="Kafka Connect REST URL")]
    connector_name: Annotated[str, Field(min_length=1, description="the sink connector's name")] = "wallet-lake-postgres-sink"
    connect_tasks_max: Annotated[int, Field(ge=1, description="tasks.max of the sink connector: at most the topic's partitions; 2 measured fastest on a 2-core machine (docs/benchmarks.md)")] = 2
    connect_rest_username: Annotated[Optional[str], Field(description="user of the REST API's basic authentication (password: the secret WL_CONNECT_REST_PASSWORD)")] = None


class ApiSettings(Group):
    TITLE: ClassVar[str] = "Reports API"
    pg_pool_min_size: Annotated[int, Field(ge=0, description="connections the API's pool keeps open")] = 1
    pg_pool_max_size: Annotated[int, Field(ge=1, description="most connections of the API's pool")] = 10
    pg_pool_timeout_s: Annotated[float, Field(gt=0, description="how long a request waits for a pooled connection before answering 503")] = 5.0
    pg_statement_timeout_ms: Annotated[int, Field(gt=0, description="server-side cap on every statement the API runs")] = 5000
    pg_connect_timeout_s: Annotated[int, Field(ge=1, description="libpq connect_timeout of the API, whole seconds")] = 5
    api_readyz_timeout_s: Annotated[float, Field(gt=0, description="how long /readyz waits for a connection")] = 2.0
    api_key_cache_ttl_s: Annotated[float, Field(ge=0, description="how long a verified key is remembered per process (a revocation takes effect within it; 0 = always ask Postgres)")] = 5.0
    api_key_cache_max_entries: Annotated[int, Field(ge=1, description="known keys remembered at most")] = 10_000
    api_answer_cache_rows: Annotated[int, Field(ge=0, description=(
        "rows of report answers (source=postgres) each API worker keeps, to reuse an answer while every dt "
        "it read is unchanged (api/reports/answer_cache.py; ~0.3-0.7 KB a row; 0 disables)"))] = 100_000
    api_kept_histogram_days: Annotated[int, Field(ge=0, description=(
        "dts whose month-to-date latency histograms each API worker keeps, to compute latency reports' percentiles "
        "from them rather than read their rows from Postgres each time, and the last 4,096 percentile answers computed from them (api/reports/kept_histograms.py; ~10-50 KB a dt, ~8 MB of answers; 0 keeps none)"))] = 400
    api_key_negative_cache_ttl_s: Annotated[float, Field(ge=0, description="how long an unknown key id is remembered as unknown (0 disables)")] = 60.0
    api_key_negative_cache_max_entries: Annotated[int, Field(ge=1, description="unknown key ids remembered at most")] = 100_000
    api_rate_limit_client_per_s: Annotated[float, Field(ge=0, description="requests per second per client address (0 disables)")] = 100.0
    api_rate_limit_client_burst: Annotated[int, Field(ge=1, description="burst per client address")] = 200
    api_rate_limit_key_per_s: Annotated[float, Field(ge=0, description="requests per second per verified API key (0 disables)")] = 50.0
    api_rate_limit_key_burst: Annotated[int, Field(ge=1, description="burst per API key")] = 100
    api_lake_max_range_days: Annotated[int, Field(ge=1, le=366, description="longest from..to range of a source=lake report (longer: 422)")] = 31
    api_lake_max_scan_bytes: Annotated[int, Field(ge=1, description="most Parquet bytes one lake query may scan (more: 422)")] = 2 * 1024**3
    api_lake_memory_limit: Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", description="DuckDB memory_limit of each lake query")] = "1GB"
    api_lake_threads: Annotated[int, Field(ge=1, description="DuckDB threads of each lake query")] = 1
    api_lake_cache_dir: Annotated[Optional[str], Field(description="folder of local copies of lake files for source=lake queries (lake/file_cache.py; decrypted data: created 0700); unset = read S3 on every query")] = None
    api_lake_cache_max_bytes: Annotated[int, Field(ge=1, description="most bytes the lake file cache keeps (least recently used go first)")] = 4 * 1024**3
    api_ui_cookie_secure: Annotated[bool, Field(description="mark the reports pages' key cookie Secure (set wherever the pages are served over HTTPS; off for the local stack's http://127.0.0.1)")] = False
    prometheus_multiproc_dir: Annotated[Optional[str], Field(validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"), description="prometheus_client's own: the folder API workers share their metrics through (bench/api_load.py sets it for several workers); unset = each process's registry")] = None


class LandingSettings(Group):
    TITLE: ClassVar[str] = "Landing arrivals sensor"
    landing_settle_seconds: Annotated[int, Field(ge=0, le=6 * 3600, description="seconds after a landing hour closes before the sensor asks for it: uploads in flight at the close, the processor's last flush, clock skew (later files of a closed hour are asked for at once)")] = 300
    landing_lookback_days: Annotated[int, Field(ge=1, le=31, description="UTC days (today and the days before it) listed in full every tick: any new or rewritten object there is found on the next tick, whatever its LastModified")] = 2
    landing_backstop_days: Annotated[int, Field(ge=0, le=62, description="days before the lookback days walked one per tick, newest first: a late write or replay there is found within this + 1 ticks; older days are not watched")] = 7


class HourLeaseSettings(Group):
    TITLE: ClassVar[str] = "Landing-hour leases"
    hour_lease_ttl_seconds: Annotated[float, Field(gt=0, description="a lease not renewed for this long is free: how long a dead run blocks its hours")] = 120.0
    hour_lease_handover_seconds: Annotated[float, Field(ge=0, description="after a step succeeds, its run keeps the hours this long for its next step")] = 900.0
    hour_lease_wait_seconds: Annotated[float, Field(ge=0, description="how long a run waits for another run's hours before it fails")] = 1800.0
    hour_lease_poll_seconds: Annotated[float, Field(gt=0, description="how often a waiting run retries")] = 5.0


class AggregatesRefreshSettings(Group):
    TITLE: ClassVar[str] = "Report aggregates refresher"
    aggregates_refresh_interval_s: Annotated[int, Field(ge=1, description="seconds between two ticks of report_aggregates_refresher")] = 30
    aggregates_refresh_budget_s: Annotated[float, Field(gt=0, description="seconds of refreshing per tick, below the sensor timeout")] = 25.0
    aggregates_refresh_batch_dts: Annotated[int, Field(ge=1, description="most dts (of one month) refreshed in one transaction")] = 3
    aggregates_refresh_quiet_s: Annotated[float, Field(ge=0, description="a dt with a mark newer than this is still being written (a sink load): the refresher leaves it for later (0: never)")] = 15.0
    aggregates_refresh_max_defer_s: Annotated[float, Field(ge=0, description="the refresher refreshes a dt whose oldest mark is this old even while it is still being written")] = 120.0
    dagster_sensor_grpc_timeout_seconds: Annotated[float, Field(gt=0, validation_alias=AliasChoices("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"), description="Dagster's own: seconds before it abandons a sensor evaluation (the refresh budget must stay below it)")] = 60.0


class OpsSettings(Group):
    TITLE: ClassVar[str] = "Operations"
    dagster_ui_url: Annotated[Optional[str], Field(pattern=r"^https?://[^\s]+$", description="base URL of the Dagster UI in alert and ledger links (default http://127.0.0.1:WL_DAGSTER_PORT)")] = None
    dagster_port: Annotated[int, Field(ge=1, le=65535, description="port the Dagster webserver serves on (scripts/run)")] = 3000
    api_port: Annotated[int, Field(ge=1, le=65535, description="port the reports API serves on (scripts/run)")] = 8000
    dagster_code_server_socket: Annotated[Optional[str], Field(description="Unix socket of the Dagster code server (stack/wallet-stack apps, default $WL_STACK_DIR/run/dagster-code.sock) that workspace.yaml points the webserver and the daemon at")] = None
    pipeline_log_file: Annotated[Optional[str], Field(description="the runs' JSON log (default $WL_STACK_DIR/logs/pipeline.jsonl; stderr when neither is set)")] = None
    stack_dir: Annotated[Optional[str], Field(description="service data of the local stack (stack/wallet-stack; default .stack of the clone)")] = None
    connect_config_dir: Annotated[Optional[str], Field(description="folder of the worker and connector templates (default connect/ of the repository)")] = None
    infra_dir: Annotated[Optional[str], Field(description="folder of the S3 and IAM policy documents (default infra/ of the repository)")] = None

    def dagster_ui_base(self) -> str:
        """The Dagster UI's base URL for links (locally the webserver scripts/run starts)."""
        return (self.dagster_ui_url or f"http://127.0.0.1:{self.dagster_port}").rstrip("/")


class StackSettings(Group):
    """Read by the local stack's shell scripts (stack/wallet-stack, stack/lib.sh), declared here
    for their docs; Python code does not read them."""

    TITLE = "Local stack (shell scripts)"
    cache_dir: Annotated[Optional[str], Field(description="download cache shared by every clone (Kafka/Connect jars, the Secrets Manager provider)")] = None
    dagster_home: Annotated[Optional[str], Field(validation_alias=AliasChoices("DAGSTER_HOME"), description="Dagster instance folder (dagster.yaml is linked into it; default .dagster_home)")] = None
    kafka_controller_port: Annotated[Optional[int], Field(ge=1, le=65535, description="the broker's KRaft controller listener (mutual TLS)")] = None
    kafka_java_home: Annotated[Optional[str], Field(description="JDK of the local Kafka broker, Connect worker and Kafka tools (unset or empty: a Java 25 JDK in /usr/lib/jvm when there is one, as Kafka 4.2 recommends, else the java on PATH; stack/lib.sh kafka_java_home)")] = None
    connect_java_opts: Annotated[Optional[str], Field(description="heap and collector of the local Connect worker (default -Xms1536m -Xmx1536m -Xmn768m -XX:+UseParallelGC)")] = None
    pg_bin: Annotated[Optional[str], Field(description="PostgreSQL binaries (default /usr/lib/postgresql/PG_MAJOR/bin, PG_MAJOR declared in stack/wallet-stack)")] = None


class SecretSettings(Group):
    """Secrets: resolved by wallet_lake/security/secrets.py from the environment or, with
    NAME_SECRET_ID (and NAME_SECRET_KEY), from Secrets Manager; locally generated per clone into
    .stack/secrets.env. Declared here for their names and docs; never read as plain fields."""

    TITLE: ClassVar[str] = "Secrets"
    pg_password: Annotated[Optional[SecretStr], Field(description="password of the schema owner WL_PG_USER")] = None
    pg_pipeline_password: Annotated[Optional[SecretStr], Field(description="password of WL_PG_PIPELINE_USER")] = None
    pg_sink_password: Annotated[Optional[SecretStr], Field(description="password of WL_PG_SINK_USER (reaches Connect through its config provider)")] = None
    pg_api_password: Annotated[Optional[SecretStr], Field(description="password of WL_PG_API_USER")] = None
    pg_keys_password: Annotated[Optional[SecretStr], Field(description="password of WL_PG_KEYS_USER")] = None
    dagster_pg_password: Annotated[Optional[SecretStr], Field(description="password of WL_DAGSTER_PG_USER (dagster.yaml reads it from the environment)")] = None
    pg_admin_password: Annotated[Optional[SecretStr], Field(description="password of WL_PG_ADMIN_USER (unset locally: the Unix socket)")] = None
    kafka_sasl_password: Annotated[Optional[SecretStr], Field(description="the pipeline's SASL password (the producer principal's)")] = None
    kafka_producer_password: Annotated[Optional[SecretStr], Field(description="SCRAM password of the producer principal")] = None
    kafka_connect_password: Annotated[Optional[SecretStr], Field(description="SCRAM password of the connect principal (the worker)")] = None
    kafka_tests_password: Annotated[Optional[SecretStr], Field(description="SCRAM password of the tests principal")] = None
    kafka_bench_password: Annotated[Optional[SecretStr], Field(description="SCRAM password of the bench principal")] = None
    kafka_intruder_password: Annotated[Optional[SecretStr], Field(description="SCRAM password of the intruder principal (no grants; refusal tests)")] = None
    connect_rest_password: Annotated[Optional[SecretStr], Field(description="password of WL_CONNECT_REST_USERNAME")] = None
    alert_webhook_url: Annotated[Optional[SecretStr], Field(description="Slack-compatible webhook for alerts (unset: alerts go to the log only)")] = None


GROUPS: tuple[type[Group], ...] = (
    AwsSettings, LakeSettings, BucketProvisionSettings, GlueSettings, SparkSettings, KafkaSettings, PostgresTls, PostgresEndpoint, PostgresSettings, ConnectSecretSettings, ConnectWorkerSettings, ConnectSettings, ApiSettings,
    LandingSettings, HourLeaseSettings, AggregatesRefreshSettings, OpsSettings, StackSettings, SecretSettings,
)

SECRET_NAMES: tuple[str, ...] = tuple(env_names(SecretSettings).values())


def _type_label(group: type[Group], field: str) -> str:
    info = group.model_fields[field]
    text = str(info.annotation).replace("typing.", "").replace("pydantic.types.", "")
    if "SecretStr" in text:
        return "secret"
    for kind in ("Literal", "int", "float", "str"):
        if kind in text:
            if kind == "Literal":
                return " \\| ".join(f"`{v}`" for v in info.annotation.__args__)  # type: ignore[union-attr]
            return kind
    return text


def markdown_table() -> str:
    """The README's configuration table: one row per variable, grouped."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for group in GROUPS:
        lines.append(f"| **{group.TITLE}** | | | |")
        inherited = {f for base in group.__mro__[1:] if base in GROUPS for f in base.model_fields}
        for field, var in env_names(group).items():
            if field in inherited:
                continue
            info = group.model_fields[field]
            if info.is_required():
                value = "required"
            elif info.default is None:
                value = "unset"
            else:
                value = f"`{info.default}`"
            lines.append(f"| `{var}` | {_type_label(group, field)} | {value} | {info.description or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["markdown"]:
        raise SystemExit("usage: python -m wallet_lake.settings markdown")
    sys.stdout.write(markdown_table())
