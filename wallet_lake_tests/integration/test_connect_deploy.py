"""Deploying a connector through the Connect REST API is idempotent: the same config twice is
"unchanged" (no PUT, so no task restart), a changed config is "updated", and the live config holds
the password reference, never the password."""

from __future__ import annotations

import os
import uuid

import pytest

from wallet_lake.serving.deploy import sink_connector_config
from wallet_lake_tests.integration.sink_support import remove_connector

pytestmark = pytest.mark.integration


def test_the_shared_sink_deploys_unchanged_when_deployed_again(stack_resources):
    res = stack_resources
    client = res["connect"].client()
    config = sink_connector_config(res)
    assert client.deploy(res["connect"].connector_name, config) in ("unchanged", "updated")
    assert client.deploy(res["connect"].connector_name, config) == "unchanged"
    live = client.config(res["connect"].connector_name)
    assert live["connection.password"] == "${env:WL_PG_SINK_PASSWORD}"
    assert os.environ["WL_PG_SINK_PASSWORD"] not in str(live)


def test_a_new_connector_is_created_then_unchanged_then_updated(stack_resources):
    res = stack_resources
    client = res["connect"].client()
    name = f"t-deploy-{uuid.uuid4().hex[:10]}"
    config = sink_connector_config(res)
    config.update({"topics": name, "errors.deadletterqueue.topic.name": f"{name}.dlq"})  # a topic nobody writes
    try:
        assert client.deploy(name, config) == "created"
        assert client.deploy(name, config) == "unchanged"
        assert client.deploy(name, {**config, "batch.size": "1234"}) == "updated"
        assert client.config(name)["batch.size"] == "1234"
        assert client.deploy(name, {**config, "batch.size": "1234"}) == "unchanged"
    finally:
        remove_connector(res, name, f"{name}.dlq")
