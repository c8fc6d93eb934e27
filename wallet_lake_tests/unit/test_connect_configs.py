"""The sink connector configs in connect/: the project's (its COPY connector, connect/copy-sink)
and the Debezium one carry every setting the design requires, the Debezium and Confluent ones map
the same sink setting for setting, and none holds a password."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from wallet_lake.security.secrets import KNOWN_SECRETS
from wallet_lake.serving.connect_worker import parse_properties, render_worker_properties
from wallet_lake.serving.deploy import sink_connector_config

RES = {
    "postgres": SimpleNamespace(host="db.internal", port=5432, dbname="wallet", user="pipeline", sslmode="verify-full",
                                sslrootcert="/etc/ssl/rds-ca.pem"),
    "kafka": SimpleNamespace(topic="payments.curated"),
    "connect": SimpleNamespace(replication_factor=3, tasks_max=4, pg_sink_user="loader", secrets="env", sink_secret="WL_PG_SINK_PASSWORD"),
}
# What stack/wallet-stack gives the renderer (the local stack's env mode).
WORKER_ENV = {"WL_KAFKA_BOOTSTRAP": "b-1.msk:9096", "WL_CONNECT_LISTENER": "http://10.0.0.5:8083", "WL_CONNECT_ADVERTISED_HOST": "10.0.0.5",
              "WL_CONNECT_REPLICATION_FACTOR": "3", "WL_CONNECT_PLUGIN_PATH": "/opt/connect-plugins", "WL_CONNECT_SECRETS": "env",
              "WL_CONNECT_SINK_SECRET": "WL_PG_SINK_PASSWORD"}
WORKER = parse_properties(render_worker_properties(WORKER_ENV))


@pytest.fixture(scope="module")
def copy() -> dict:
    return sink_connector_config(RES, "copy")


@pytest.fixture(scope="module")
def debezium() -> dict:
    return sink_connector_config(RES, "debezium")


@pytest.fixture(scope="module")
def confluent() -> dict:
    return sink_connector_config(RES, "confluent")


def test_the_project_runs_its_copy_sink_upserting_curated_payments_on_payment_id(copy):
    assert sink_connector_config(RES) == copy  # the default flavor
    assert copy["connector.class"] == "io.walletlake.connect.sink.PostgresCopySinkConnector"
    assert (copy["table.name"], copy["primary.key.fields"]) == ("curated_payments", "payment_id")
    assert "delete.enabled" not in copy  # it has no delete path: a tombstone is dead-lettered
    assert int(copy["max.retries"]) >= 1 and int(copy["retry.backoff.ms"]) >= 1000


def test_any_flavor_writes_the_table_it_is_given():
    for flavor, key in (("copy", "table.name"), ("debezium", "collection.name.format"), ("confluent", "table.name.format")):
        assert sink_connector_config(RES, flavor, table="wl_bench_x")[key] == "wl_bench_x"


# The project's setting -> Debezium's setting holding the same meaning.
COPY_AS_DEBEZIUM = {
    "topics": "topics", "tasks.max": "tasks.max", "connection.username": "connection.username",
    "connection.password": "connection.password", "table.name": "collection.name.format",
    "primary.key.fields": "primary.key.fields", "max.retries": "flush.max.retries", "retry.backoff.ms": "flush.retry.delay.ms",
}


def test_the_copy_sink_and_the_debezium_sink_are_the_same_sink(copy, debezium):
    for ours, theirs in COPY_AS_DEBEZIUM.items():
        assert copy[ours] == debezium[theirs], (ours, theirs)
    for k, v in debezium.items():
        if k.startswith(("errors.", "key.converter", "value.converter", "header.converter")):
            assert copy[k] == v, k
    # The same server, database and TLS parameters; only Debezium's statement rewriting differs.
    assert copy["connection.url"] == debezium["connection.url"].replace("reWriteBatchedInserts=true&", "")


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


def test_the_sink_logs_in_as_its_own_role_and_verifies_the_server(copy, debezium, confluent):
    assert copy["connection.username"] == debezium["connection.username"] == confluent["connection.user"] == "loader"  # not the pipeline's role
    for config in (copy, debezium, confluent):
        query = dict(p.split("=", 1) for p in config["connection.url"].split("?", 1)[1].split("&"))
        assert query["sslmode"] == "verify-full" and query["sslrootcert"] == "%2Fetc%2Fssl%2Frds-ca.pem"


def test_password_comes_only_from_the_worker_config_provider(copy, debezium, confluent):
    for config in (copy, debezium, confluent):
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


def test_tasks_come_from_configuration_in_every_flavor(copy, debezium, confluent):
    # WL_CONNECT_TASKS_MAX (ConnectResource.tasks_max): more tasks where the workers have cores.
    assert copy["tasks.max"] == debezium["tasks.max"] == confluent["tasks.max"] == "4"


# ---------------------------------------------------------------- the worker is locked down


def test_connectors_may_not_override_their_kafka_clients():
    assert WORKER["connector.client.config.override.policy"] == "None"
    assert not any(k.startswith(("consumer.override.", "producer.override.", "admin.override.")) for k in sink_connector_config(RES))


def test_the_env_provider_admits_the_sinks_secret_and_no_other(copy):
    allow = re.compile(WORKER["config.providers.env.param.allowlist.pattern"])
    named = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", str(copy)))
    assert named and all(allow.fullmatch(n) for n in named)
    assert [s for s in KNOWN_SECRETS if allow.fullmatch(s)] == sorted(named)
    assert not allow.fullmatch("AWS_SECRET_ACCESS_KEY") and not allow.fullmatch("WL_PG_SINK_PASSWORD_X")
    assert not allow.fullmatch("WL_PG_PASSWORD")  # the schema owner's password: not the sink's to use


def test_the_rest_api_requires_basic_authentication():
    assert WORKER["rest.extension.classes"] == "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"


# ---------------------------------------------------------------- the sink's secret, per mode (WL_CONNECT_SECRETS)

# The AWS deployment: no endpoint override (AWS's own), the secret of infra/iam/kafka-connect.json.
AWS_ENV = {**WORKER_ENV, "WL_CONNECT_SECRETS": "secretsmanager", "AWS_REGION": "eu-west-1", "WL_S3_ENDPOINT_URL": "",
           "WL_PG_SINK_PASSWORD_SECRET_ID": "wallet-lake/postgres-sink"}
AWS_RES = {**RES, "connect": SimpleNamespace(**{**vars(RES["connect"]), "secrets": "secretsmanager"})}


def _providers(worker: dict) -> dict:
    return {k: v for k, v in worker.items() if k.startswith("config.providers")}


def test_on_aws_the_connector_names_the_sinks_secret_in_secrets_manager_and_no_variable():
    for flavor in ("copy", "debezium", "confluent"):
        config = sink_connector_config(AWS_RES, flavor, env=AWS_ENV)
        assert config["connection.password"] == "${secretsManager:wallet-lake/postgres-sink:password}"
        assert "${env:" not in str(config)


def test_on_aws_the_worker_loads_only_the_secrets_manager_provider_admitting_the_sinks_secret():
    worker = parse_properties(render_worker_properties(AWS_ENV))
    assert _providers(worker) == {
        "config.providers": "secretsManager",
        "config.providers.secretsManager.class": "io.walletlake.connect.config.SecretsManagerConfigProvider",
        "config.providers.secretsManager.param.allowlist.pattern": "^wallet-lake/postgres-sink$",
        "config.providers.secretsManager.param.region": "eu-west-1",
    }  # no endpoint: AWS's own; no env provider: the worker's variables are out of reach
    allow = re.compile(worker["config.providers.secretsManager.param.allowlist.pattern"])
    assert allow.fullmatch("wallet-lake/postgres-sink")
    for other in ("wallet-lake/postgres-api", "wallet-lake/postgres", "wallet-lake/postgres-pipeline", "AmazonMSK_wallet-lake-connect", "wallet-lake/alert-webhook", "wallet-lake/postgres-sinkX"):
        assert not allow.fullmatch(other), other
    # Everything else is the local worker's, setting for setting.
    assert {k: v for k, v in worker.items() if k not in _providers(worker)} == {k: v for k, v in WORKER.items() if k not in _providers(WORKER)}


def test_the_secrets_manager_provider_follows_the_local_aws_endpoint_as_the_python_code_does():
    worker = parse_properties(render_worker_properties({**AWS_ENV, "WL_S3_ENDPOINT_URL": "http://127.0.0.1:55000"}))
    assert worker["config.providers.secretsManager.param.endpoint"] == "http://127.0.0.1:55000"
    worker = parse_properties(render_worker_properties({**AWS_ENV, "WL_SECRETS_ENDPOINT_URL": "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com"}))
    assert worker["config.providers.secretsManager.param.endpoint"] == "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com"


@pytest.mark.parametrize("env", [WORKER_ENV, AWS_ENV], ids=["env", "secretsmanager"])
def test_worker_and_connector_agree_in_every_mode(env):
    # The connector's reference names the worker's only provider, and its path passes the allowlist.
    res = AWS_RES if env is AWS_ENV else RES
    ref = sink_connector_config(res, env=env)["connection.password"]
    alias, path = re.fullmatch(r"\$\{(\w+):([^:}]+)(?::[^}]+)?\}", ref).groups()
    providers = _providers(parse_properties(render_worker_properties(env)))
    assert providers["config.providers"] == alias
    assert re.fullmatch(providers[f"config.providers.{alias}.param.allowlist.pattern"], path)


def test_the_sinks_secret_is_a_parameter_not_a_fixed_variable():
    # A sink role with its own password (issue 12, Postgres roles): only WL_CONNECT_SINK_SECRET changes.
    env = {**WORKER_ENV, "WL_CONNECT_SINK_SECRET": "WL_SINK_PG_PASSWORD"}
    res = {**RES, "connect": SimpleNamespace(**{**vars(RES["connect"]), "sink_secret": "WL_SINK_PG_PASSWORD"})}
    assert sink_connector_config(res, env=env)["connection.password"] == "${env:WL_SINK_PG_PASSWORD}"
    assert parse_properties(render_worker_properties(env))["config.providers.env.param.allowlist.pattern"] == "^WL_SINK_PG_PASSWORD$"
    aws = {**AWS_ENV, "WL_CONNECT_SINK_SECRET": "WL_SINK_PG_PASSWORD", "WL_SINK_PG_PASSWORD_SECRET_ID": "wallet-lake/postgres-sink",
           "WL_SINK_PG_PASSWORD_SECRET_KEY": "sink_password"}
    aws_res = {**AWS_RES, "connect": SimpleNamespace(**{**vars(AWS_RES["connect"]), "sink_secret": "WL_SINK_PG_PASSWORD"})}
    assert sink_connector_config(aws_res, env=aws)["connection.password"] == "${secretsManager:wallet-lake/postgres-sink:sink_password}"
    assert parse_properties(render_worker_properties(aws))["config.providers.secretsManager.param.allowlist.pattern"] == "^wallet-lake/postgres-sink$"


def test_regex_characters_of_a_secret_name_match_only_themselves():
    worker = parse_properties(render_worker_properties({**AWS_ENV, "WL_PG_SINK_PASSWORD_SECRET_ID": "wallet.lake/pg+1"}))
    allow = re.compile(worker["config.providers.secretsManager.param.allowlist.pattern"])
    assert allow.fullmatch("wallet.lake/pg+1")
    assert not allow.fullmatch("walletXlake/pg+1") and not allow.fullmatch("wallet.lake/pgg1")
    assert "\\" not in worker["config.providers.secretsManager.param.allowlist.pattern"]  # a properties file would eat it


@pytest.mark.parametrize(("overrides", "names"), [
    ({"WL_PG_SINK_PASSWORD_SECRET_ID": ""}, "WL_PG_SINK_PASSWORD_SECRET_ID"),
    ({"WL_PG_SINK_PASSWORD_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:1:secret:wallet-lake/postgres-sink-AbCdEf"}, "not an ARN"),
    ({"WL_CONNECT_SECRETS": "vault"}, "WL_CONNECT_SECRETS"),
    ({"WL_CONNECT_SINK_SECRET": "wl pg"}, "WL_CONNECT_SINK_SECRET"),
], ids=["no secret id", "an ARN", "unknown mode", "bad name"])
def test_an_incomplete_or_malformed_mode_is_refused_naming_the_variable(overrides, names):
    from wallet_lake.serving.connect_worker import ConnectSecretsError

    with pytest.raises(ConnectSecretsError, match=names):
        render_worker_properties({**AWS_ENV, **overrides})
