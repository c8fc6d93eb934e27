"""Dagster resources: every client the pipeline uses, configured from the settings declared in
wallet_lake/settings.py.

`resource_values(secret)` is the one place that maps resources to settings: Dagster wiring passes
dg.EnvVar for secrets (resolved at run time, never shown in the UI), command-line tools and tests
resolve them now."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Optional

import dagster as dg
from pydantic import Field

from wallet_lake.lake.store import LakeStore, open_lake
from wallet_lake.settings import ConnectSettings


class LakeResource(dg.ConfigurableResource):
    """The payments lake: s3://bucket (SSE-KMS on every write) or a local folder."""

    bucket: str = Field(description="Lake bucket name (WL_LAKE_BUCKET).")
    lake_uri: Optional[str] = Field(default=None, description="Overrides s3://bucket, e.g. file:///data/lake (run config only).")
    kms_key_id: Optional[str] = Field(default=None, description="KMS key id or alias for SSE-KMS (WL_KMS_KEY_ID).")
    s3_endpoint_url: Optional[str] = Field(default=None, description="S3-compatible endpoint; unset on AWS (WL_S3_ENDPOINT_URL).")
    region: Optional[str] = Field(default=None, description="AWS region (AWS_REGION).")

    def store(self) -> LakeStore:
        # Empty strings mean "not set" (an environment variable may be present but empty on AWS).
        return open_lake(
            self.lake_uri or f"s3://{self.bucket}", kms_key_id=self.kms_key_id or None,
            s3_endpoint_url=self.s3_endpoint_url or None, region=self.region or None,
        )

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.s3_endpoint_url or None, region_name=self.region or None)


def with_changes(resource: dg.ConfigurableResource, **changes) -> dg.ConfigurableResource:
    """A new resource of the same kind with some fields changed. (pydantic's model_copy is not
    enough: Dagster rebuilds a resource from the arguments it was constructed with.)"""
    return type(resource)(**{**resource.model_dump(), **changes})


class KafkaResource(dg.ConfigurableResource):
    bootstrap_servers: str = Field(description="Kafka bootstrap servers (WL_KAFKA_BOOTSTRAP).")
    topic: str = Field(default="payments.curated", description="Curated topic (WL_KAFKA_TOPIC).")
    replication_factor: int = Field(default=1, description="Replication factor of created topics (WL_KAFKA_REPLICATION_FACTOR).")
    security_protocol: str = Field(default="SASL_SSL", description="SASL_SSL (the stack's and production's), SASL_PLAINTEXT or PLAINTEXT (WL_KAFKA_SECURITY_PROTOCOL).")
    sasl_mechanism: Optional[str] = Field(default=None, description="e.g. SCRAM-SHA-512 (WL_KAFKA_SASL_MECHANISM).")
    sasl_username: Optional[str] = Field(default=None, description="SASL user (WL_KAFKA_SASL_USERNAME).")
    ssl_ca_location: Optional[str] = Field(
        default=None, description="PEM file of the CA the broker's certificate is checked against (WL_KAFKA_SSL_CA_LOCATION); "
        "empty = the system's trust store (MSK).",
    )
    # The SASL password is no field (never in run config or the UI): the secret named here
    # (WL_KAFKA_SASL_PASSWORD, or WL_KAFKA_SASL_PASSWORD_SECRET_ID), resolved when a client is
    # configured (security/secrets.py).
    sasl_password_secret: str = Field(default="WL_KAFKA_SASL_PASSWORD", description="Name of the secret with the SASL password.")

    def security_config(self) -> dict:
        """librdkafka security settings; empty for PLAINTEXT. TLS always verifies the broker's
        certificate and host name."""
        protocol = (self.security_protocol or "PLAINTEXT").upper()
        if protocol == "PLAINTEXT":
            return {}
        conf = {"security.protocol": protocol}
        if protocol.startswith("SASL"):
            from wallet_lake.security.secrets import resolve_secret

            conf.update({"sasl.mechanism": self.sasl_mechanism or "SCRAM-SHA-512", "sasl.username": self.sasl_username or "",
                         "sasl.password": resolve_secret(self.sasl_password_secret)})
        if protocol.endswith("SSL"):
            conf.update({"ssl.endpoint.identification.algorithm": "https", "enable.ssl.certificate.verification": True})
            if self.ssl_ca_location:
                conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def client_config(self) -> dict:
        return {"bootstrap.servers": self.bootstrap_servers, **self.security_config()}

    def as_principal(self, user: str) -> "KafkaResource":
        """The same cluster as another of the project's SCRAM principals (security/kafka_acls.py
        USERS), e.g. the tests' or the benchmarks' own login."""
        from wallet_lake.security.kafka_acls import USERS

        return with_changes(self, sasl_username=user, sasl_password_secret=USERS[user])

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config())


class PostgresResource(dg.ConfigurableResource):
    """The serving database as the pipeline's own role (WL_PG_PIPELINE_USER: aggregates, ledger,
    hour leases; reads curated rows; serving/pg_roles.py), over verified TLS."""

    host: str = Field(description="WL_PG_HOST")
    port: int = Field(description="WL_PG_PORT")
    user: str = Field(description="WL_PG_PIPELINE_USER")
    password: str = Field(description="WL_PG_PIPELINE_PASSWORD (secret; never logged)")
    dbname: str = Field(description="WL_PG_DB")
    sslmode: str = Field(default="verify-full", description="WL_PG_SSLMODE: libpq sslmode (verify-full checks the certificate and host)")
    sslrootcert: str = Field(default="", description="WL_PG_SSLROOTCERT: the CA the server's certificate is checked against")

    @contextmanager
    def connect(self):
        import psycopg

        tls = {"sslmode": self.sslmode} | ({"sslrootcert": self.sslrootcert} if self.sslrootcert else {})
        with psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.dbname,
                             connect_timeout=10, **tls) as conn:
            yield conn


class ConnectResource(dg.ConfigurableResource):
    url: str = Field(description="Kafka Connect REST URL (WL_CONNECT_URL).")
    rest_username: Optional[str] = Field(
        default=None, description="User of the REST API's basic authentication (WL_CONNECT_REST_USERNAME); its password is "
        "the secret WL_CONNECT_REST_PASSWORD, never a field. Empty: no credentials are sent.",
    )
    connector_name: str = Field(default="wallet-lake-postgres-sink", description="WL_CONNECTOR_NAME")
    pg_sink_user: str = Field(default="wl_sink", description="The sink connector's Postgres role (WL_PG_SINK_USER); its password "
                              "is the worker's secret WL_PG_SINK_PASSWORD, resolved inside the worker, never a field.")
    replication_factor: int = Field(default=1, description="Replication factor of the dead-letter topic.")
    tasks_max: int = Field(
        default=ConnectSettings.model_fields["connect_tasks_max"].default,
        description="tasks.max of the sink connector (WL_CONNECT_TASKS_MAX, default declared in settings.py): at most "
        "the topic's partitions; about the cores the Connect workers have (docs/benchmarks.md, sink tuning).",
    )
    secrets: str = Field(
        default="env",
        description="WL_CONNECT_SECRETS: how the sink's database password reaches the worker: 'env' (the worker's "
        "environment, the local stack) or 'secretsmanager' (AWS Secrets Manager, on AWS); the worker is rendered "
        "in the same mode (wallet_lake/serving/connect_worker.py).",
    )
    sink_secret: str = Field(
        default="WL_PG_SINK_PASSWORD",
        description="WL_CONNECT_SINK_SECRET: the sink's password secret by name (NAME; in secretsmanager mode "
        "NAME_SECRET_ID and NAME_SECRET_KEY name its Secrets Manager secret and field).",
    )

    def client(self, timeout: float = 30.0):
        """A REST client that authenticates as rest_username."""
        from wallet_lake.serving.connect import ConnectClient

        auth = None
        if self.rest_username:
            from wallet_lake.security.secrets import resolve_secret

            auth = (self.rest_username, resolve_secret("WL_CONNECT_REST_PASSWORD"))
        return ConnectClient(self.url, timeout=timeout, auth=auth)


def resource_values(secret: Callable[[str, type], object]) -> dict[str, dg.ConfigurableResource]:
    """The pipeline's resources: every setting from its declaration in wallet_lake/settings.py
    (read now), every secret through `secret(name, type)` (Dagster: dg.EnvVar, resolved when a
    run starts and never shown; tools: resolved now, possibly from Secrets Manager)."""
    from wallet_lake.settings import ConnectSettings, KafkaSettings, LakeSettings, PostgresSettings, load

    lake, kafka, pg, connect = load(LakeSettings), load(KafkaSettings), load(PostgresSettings), load(ConnectSettings)
    return {
        "lake": LakeResource(
            bucket=lake.lake_bucket, lake_uri=lake.lake_uri, kms_key_id=lake.kms_key_id,
            s3_endpoint_url=lake.s3_endpoint_url, region=lake.aws_region,
        ),
        "kafka": KafkaResource(
            bootstrap_servers=kafka.kafka_bootstrap, topic=kafka.kafka_topic, replication_factor=kafka.kafka_replication_factor,
            security_protocol=kafka.kafka_security_protocol, sasl_mechanism=kafka.kafka_sasl_mechanism,
            sasl_username=kafka.kafka_sasl_username, ssl_ca_location=kafka.kafka_ssl_ca_location,
        ),
        "postgres": PostgresResource(
            host=pg.pg_host, port=pg.pg_port, user=pg.pg_pipeline_user, password=secret("WL_PG_PIPELINE_PASSWORD", str),
            dbname=pg.pg_db, sslmode=pg.pg_sslmode, sslrootcert=pg.pg_sslrootcert or "",
        ),
        "connect": ConnectResource(
            url=connect.connect_url, rest_username=connect.connect_rest_username, connector_name=connect.connector_name,
            pg_sink_user=pg.pg_sink_user, tasks_max=connect.connect_tasks_max, replication_factor=connect.connect_replication_factor,
            secrets=connect.connect_secrets, sink_secret=connect.connect_sink_secret,
        ),
    }


def dagster_env(name: str, kind: type):
    """A secret for Dagster: resolved when a run starts, never part of the shown config."""
    return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)


def os_env(name: str, kind: type):
    """A secret now: from Secrets Manager (NAME_SECRET_ID) or the environment (security/secrets.py)."""
    from wallet_lake.security.secrets import SecretNotFound, resolve_secret

    try:
        return kind(resolve_secret(name))
    except SecretNotFound as exc:
        raise RuntimeError(f"{exc} (source the stack: eval \"$(stack/wallet-stack env)\")") from None


def resources_from_os_env() -> dict[str, dg.ConfigurableResource]:
    """Resources for command-line tools and tests, read from os.environ now."""
    return resource_values(os_env)
