"""The sink connector configs in connect/: the Debezium one carries every setting the design
requires, the Confluent one maps the same sink setting for setting, and neither holds a password."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from wallet_lake.security.secrets import KNOWN_SECRETS
from wallet_lake.serving.connect import CONNECT_DIR
from wallet_lake.serving.deploy import sink_connector_config

RES = {
    "postgres": SimpleNamespace(host="db.internal", port=5432, dbname="wallet", user="pipeline", sslmode="verify-full",
                                sslrootcert="/etc/ssl/rds-ca.pem"),
    "kafka": SimpleNamespace(topic="payments.curated"),
    "connect": SimpleNamespace(replication_factor=3, tasks_max=4, pg_sink_user="loader"),
}


def _properties(path: Path) -> dict[str, str]:
    lines = [l for l in path.read_text().splitlines() if l.strip() and not l.lstrip().startswith("#")]
    return dict(l.split("=", 1) for l in lines)


WORKER = _properties(CONNECT_DIR / "worker.properties")


@pytest.fixture(scope="module")
def debezium() -> dict:
    return sink_connector_config(RES, "debezium")


@pytest.fixture(scope="module")
def confluent() -> dict:
    return sink_connector_config(RES, "confluent")


def test_debezium_sink_upserts_on_payment_id_from_the_value_and_never_deletes(debezium):
    assert debezium["connector.class"] == "io.debezium.connector.jdbc.JdbcSinkConnector"
    assert (debezium["insert.mode"], debezium["primary.key.mode"], debezium["primary.key.fields"]) == ("upsert", "record_value", "payment_id")
    assert debezium["delete.enabled"] == "false"
    assert debezium["schema.evolution"] == "none"  # the table comes from migrations
    assert debezium["collection.name.format"] == "curated_payments"


def test_debezium_sink_batches_reduces_duplicates_and_writes_utc(debezium):
    assert debezium["use.reduction.buffer"] == "true"
    assert int(debezium["batch.size"]) >= 1000
    # The worker sets its sinks' consumer (connectors may not override it: policy None).
    assert int(WORKER["consumer.max.poll.records"]) >= int(debezium["batch.size"])
    assert debezium["use.time.zone"] == "UTC"
    assert "reWriteBatchedInserts=true" in debezium["connection.url"]


def test_debezium_sink_sends_bad_records_to_a_dead_letter_topic_with_context_headers(debezium):
    assert debezium["errors.tolerance"] == "all"
    assert debezium["errors.deadletterqueue.topic.name"] == "payments.curated.dlq"
    assert debezium["errors.deadletterqueue.topic.replication.factor"] == "3"
    assert debezium["errors.deadletterqueue.context.headers.enable"] == "true"
    assert debezium["errors.log.enable"] == "true"
    assert debezium["errors.log.include.messages"] == "false"  # payment data stays out of the logs


def test_the_sink_logs_in_as_its_own_role_and_verifies_the_server(debezium, confluent):
    assert debezium["connection.username"] == confluent["connection.user"] == "loader"  # not the pipeline's role
    for config in (debezium, confluent):
        query = dict(p.split("=", 1) for p in config["connection.url"].split("?", 1)[1].split("&"))
        assert query["sslmode"] == "verify-full" and query["sslrootcert"] == "%2Fetc%2Fssl%2Frds-ca.pem"


def test_password_comes_only_from_the_worker_config_provider(debezium, confluent):
    for config in (debezium, confluent):
        assert config["connection.password"] == "${env:WL_PG_SINK_PASSWORD}"
        assert not any("password" in k and v != "${env:WL_PG_SINK_PASSWORD}" for k, v in config.items())


# Debezium setting -> Confluent JDBC sink setting holding the same meaning.
SAME_MEANING = {
    "topics": "topics", "tasks.max": "tasks.max", "insert.mode": "insert.mode",
    "primary.key.mode": "pk.mode", "primary.key.fields": "pk.fields", "delete.enabled": "delete.enabled",
    "collection.name.format": "table.name.format", "batch.size": "batch.size", "use.time.zone": "db.timezone",
    "connection.username": "connection.user", "key.converter": "key.converter", "value.converter": "value.converter",
    "value.converter.schemas.enable": "value.converter.schemas.enable",
}


def test_confluent_mapping_holds_the_same_sink_setting_for_setting(debezium, confluent):
    assert confluent["connector.class"] == "io.confluent.connect.jdbc.JdbcSinkConnector"
    for dbz, cfl in SAME_MEANING.items():
        assert confluent[cfl] == debezium[dbz], (dbz, cfl)
    # schema.evolution=none: the Confluent sink must neither create nor alter the table.
    assert (confluent["auto.create"], confluent["auto.evolve"]) == ("false", "false")
    for k, v in debezium.items():
        if k.startswith("errors.") or k.startswith("consumer.override."):
            assert confluent[k] == v, k


def test_confluent_mapping_avoids_rewritten_batches_without_a_reduction_buffer(confluent):
    # Without Debezium's reduction buffer, a key twice in one rewritten multi-row upsert makes
    # Postgres refuse the batch ("ON CONFLICT DO UPDATE command cannot affect row a second time").
    assert "reWriteBatchedInserts" not in confluent["connection.url"]
    assert confluent["connection.url"].startswith("jdbc:postgresql://db.internal:5432/wallet")


def test_tasks_come_from_configuration_in_both_flavors(debezium, confluent):
    # WL_CONNECT_TASKS_MAX (ConnectResource.tasks_max): more tasks where the workers have cores.
    assert debezium["tasks.max"] == confluent["tasks.max"] == "4"


# ---------------------------------------------------------------- the worker is locked down


def test_connectors_may_not_override_their_kafka_clients():
    assert WORKER["connector.client.config.override.policy"] == "None"
    assert not any(k.startswith(("consumer.override.", "producer.override.", "admin.override.")) for k in sink_connector_config(RES))


def test_the_env_provider_admits_the_sinks_secret_and_no_other(debezium):
    allow = re.compile(WORKER["config.providers.env.param.allowlist.pattern"])
    named = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", str(debezium)))
    assert named and all(allow.fullmatch(n) for n in named)
    assert [s for s in KNOWN_SECRETS if allow.fullmatch(s)] == sorted(named)
    assert not allow.fullmatch("AWS_SECRET_ACCESS_KEY") and not allow.fullmatch("WL_PG_SINK_PASSWORD_X")
    assert not allow.fullmatch("WL_PG_PASSWORD")  # the schema owner's password: not the sink's to use


def test_the_rest_api_requires_basic_authentication():
    assert WORKER["rest.extension.classes"] == "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
