"""The local stack is real and healthy: every service answers its own protocol, the sink plugin
and connector run, the Dagster instance lives in Postgres, and the schema contracts agree."""

from __future__ import annotations

import os

import pytest

from wallet_lake.contracts.lifecycle import LIFECYCLE_RANK
from wallet_lake.contracts.schema import CURATED_COLUMNS, connect_value_schema, postgres_columns

pytestmark = pytest.mark.integration


def test_postgres_table_columns_match_the_curated_contract(stack_resources):
    with stack_resources["postgres"].connect() as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'curated_payments' ORDER BY ordinal_position"
        ).fetchall()
    assert [r[0] for r in rows] == list(CURATED_COLUMNS)
    want = postgres_columns()
    for name, data_type, nullable in rows:
        assert (data_type, nullable == "YES") == want[name], name


def test_postgres_lifecycle_rank_equals_the_contract(stack_resources):
    with stack_resources["postgres"].connect() as conn:
        for status, rank in LIFECYCLE_RANK.items():
            assert conn.execute("SELECT payment_lifecycle_rank(%s)", (status,)).fetchone()[0] == rank, status


def test_postgres_has_indexes_for_merchant_dt_and_dt_hour(stack_resources):
    with stack_resources["postgres"].connect() as conn:
        defs = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'curated_payments'")]
    assert any("(merchant_id, dt)" in d for d in defs)
    # The aggregates refresh reads changed hours, and whole dts, through (dt, hour) (migration 0009).
    assert any(d.endswith("(dt, hour)") for d in defs)


def test_connect_runs_the_debezium_sink_with_the_password_from_a_config_provider(stack_resources):
    c = stack_resources["connect"]
    http = c.client().http
    plugins = http.get("/connector-plugins").json()
    assert any(p["class"] == "io.debezium.connector.jdbc.JdbcSinkConnector" for p in plugins)
    status = http.get(f"/connectors/{c.connector_name}/status").json()
    assert status["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"] * c.tasks_max
    config = http.get(f"/connectors/{c.connector_name}/config").json()
    assert config["connection.password"] == "${env:WL_PG_SINK_PASSWORD}"
    assert os.environ["WL_PG_SINK_PASSWORD"] not in str(config)
    fields = [f["field"] for f in connect_value_schema()["fields"]]
    assert fields == list(CURATED_COLUMNS)


def test_kafka_topic_exists_with_its_declared_partitions(stack_resources):
    from wallet_lake.publish.topic import curated_topic_spec, ensure_topic

    k = stack_resources["kafka"]
    assert ensure_topic(k.admin(), curated_topic_spec(k.topic)) == "exists"
    md = k.admin().list_topics(timeout=10)
    assert len(md.topics[k.topic].partitions) == curated_topic_spec(k.topic).partitions


def test_lake_bucket_is_private_kms_encrypted_and_the_glue_database_exists(stack_resources):
    lake = stack_resources["lake"]
    s3 = lake.client("s3")
    pab = s3.get_public_access_block(Bucket=lake.bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values())
    rule = s3.get_bucket_encryption(Bucket=lake.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    lake.client("glue").get_database(Name=os.environ["WL_GLUE_DATABASE"])


def test_dagster_instance_stores_runs_in_postgres():
    from dagster import DagsterInstance
    from dagster_postgres import PostgresRunStorage

    instance = DagsterInstance.get()
    assert isinstance(instance.run_storage, PostgresRunStorage)


def test_the_broker_and_the_connect_worker_run_on_the_stacks_kafka_jdk(stack_resources):
    # stack/lib.sh chooses the JDK once (kafka_java_home: WL_KAFKA_JAVA_HOME, else Java 25 when the
    # machine has it): the running processes must be on that very binary.
    import shutil
    from pathlib import Path

    from stack.java import kafka_java, service_java

    want = Path(shutil.which(kafka_java()) or kafka_java()).resolve()
    for service in ("kafka", "connect"):
        assert service_java(service) == want, (
            f"{service} runs on {service_java(service)}, the stack's choice is {want}: restart it (stack/wallet-stack down, then up)")
