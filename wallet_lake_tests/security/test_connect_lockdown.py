"""Kafka Connect locked down (connect/worker.properties): the REST API answers nobody without
credentials, the env config provider resolves the sink's own secret and no other variable of the
worker, and connectors may not override their Kafka clients. Each assertion is the live worker's
answer."""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from wallet_lake.serving.deploy import sink_connector_config
from wallet_lake_tests.integration.sink_support import (
    create_topic, curated_row, delete_topics, publish_rows, remove_connector, run_prefix, throwaway_connector,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def url(stack_resources) -> str:
    return stack_resources["connect"].url


@pytest.mark.parametrize(("method", "path"), [("GET", "/connectors"), ("GET", "/connector-plugins"), ("POST", "/connectors"),
                                              ("PUT", "/connectors/t-lockdown/config"), ("DELETE", "/connectors/wallet-lake-postgres-sink")])
def test_every_request_without_credentials_gets_401(url, method, path):
    r = httpx.request(method, f"{url}{path}", json={"name": "t-lockdown", "config": {}} if method != "GET" else None, timeout=10)
    assert r.status_code == 401, (method, path, r.status_code, r.text[:200])


def test_a_wrong_password_gets_401_and_the_right_one_200(stack_resources, url):
    user = os.environ["WL_CONNECT_REST_USERNAME"]
    assert httpx.get(f"{url}/connectors", auth=(user, "not-the-password"), timeout=10).status_code == 401
    assert httpx.get(f"{url}/connectors", auth=("intruder", os.environ["WL_CONNECT_REST_PASSWORD"]), timeout=10).status_code == 401
    assert stack_resources["connect"].client().http.get("/connectors").status_code == 200


def _task_trace(client, name: str, timeout: float = 180.0) -> str:
    """The trace of the connector's failed task (or connector), once it has one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.http.get(f"/connectors/{name}/status")
        if r.status_code == 200:
            s = r.json()
            traces = [i.get("trace", "") for i in (s["connector"], *s["tasks"]) if i.get("state") == "FAILED"]
            if traces:
                return "\n".join(traces)
        time.sleep(1)
    raise AssertionError(f"connector {name} did not fail within {timeout}s")


def test_a_connector_naming_another_variable_of_the_worker_never_sees_its_value(stack_resources):
    # Without the allowlist this connector would read the worker's Kafka password: it names it as
    # the database user, and Postgres' refusal ("... authentication failed for user ...") lands in
    # the task's trace, readable through the REST API. With the allowlist it is never resolved.
    client = stack_resources["connect"].client()
    kafka = stack_resources["kafka"]
    admin = kafka.admin()
    topic = f"t-lockdown-{uuid.uuid4().hex[:10]}"
    create_topic(admin, topic, 1)
    try:
        # The sink connects to the database when it writes its first record.
        publish_rows(kafka, [curated_row(run_prefix("lockdown") + "1", datetime(2025, 3, 3, 3, tzinfo=timezone.utc))], topic=topic)
        # c3p0 (the sink's pool) retries a refused login 30 times, 1 s apart, before the task fails:
        # one attempt gives the same refusal in its trace (the Debezium sink hands hibernate.* to Hibernate).
        overrides = {"connection.username": "${env:WL_KAFKA_CONNECT_PASSWORD}", "flush.max.retries": "0",
                     "hibernate.c3p0.acquireRetryAttempts": "1", "hibernate.c3p0.acquireRetryDelay": "100"}
        with throwaway_connector(stack_resources, topic, overrides) as name:
            trace = _task_trace(client, name)
    finally:
        delete_topics(admin, [topic])
    # Postgres refused the login, and the user it names is not the secret (the worker resolved
    # the reference to nothing; the sink's own ${env:WL_PG_SINK_PASSWORD} resolves, or no sink would run).
    refused = re.search(r'authentication failed for user "([^"]*)"', trace)
    assert refused, trace[-2000:]
    assert refused.group(1) != os.environ["WL_KAFKA_CONNECT_PASSWORD"]
    assert os.environ["WL_KAFKA_CONNECT_PASSWORD"] not in trace


def test_a_connector_may_not_override_its_kafka_clients(stack_resources):
    client = stack_resources["connect"].client()
    name = f"t-lockdown-{uuid.uuid4().hex[:10]}"
    config = sink_connector_config(stack_resources)
    config.update({"topics": name, "errors.deadletterqueue.topic.name": f"{name}.dlq",
                   "consumer.override.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                                                         'username="tests" password="x";'})
    r = client.http.put(f"/connectors/{name}/config", json=config)
    try:
        assert r.status_code == 400, r.text[:500]
        assert "policy does not allow" in r.text and "sasl.jaas.config" in r.text, r.text[:500]
    finally:
        if r.status_code < 300:
            remove_connector(stack_resources, name, f"{name}.dlq")
