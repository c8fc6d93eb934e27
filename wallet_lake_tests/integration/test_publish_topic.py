"""ensure_topic on the real broker: creates a missing topic with the spec's config, leaves a
matching one alone, and reports every difference of a wrongly configured one without touching it."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from wallet_lake.publish.topic import TopicMisconfigured, curated_topic_spec, ensure_topic
from wallet_lake_tests.integration.sink_support import create_topic, delete_topics

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(stack_resources):
    return AdminClient(stack_resources["kafka"].client_config())


@pytest.fixture
def names(admin):
    made: list[str] = []
    yield lambda label: made.append(f"t-topic-{label}-{uuid.uuid4().hex[:10]}") or made[-1]
    existing = set(admin.list_topics(timeout=10).topics)
    delete_topics(admin, [n for n in made if n in existing])


def _config(admin, topic: str) -> dict[str, str]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return {k: v.value for k, v in admin.describe_configs([res])[res].result(30).items()}


def test_missing_topic_is_created_compacted_then_left_alone(admin, names):
    spec = curated_topic_spec(names("fresh"))
    assert ensure_topic(admin, spec) == "created"
    assert ensure_topic(admin, spec) == "exists"
    config = _config(admin, spec.name)
    assert {k: config[k] for k in spec.config} == spec.config
    assert len(admin.list_topics(timeout=10).topics[spec.name].partitions) == spec.partitions


def test_wrongly_configured_topic_is_reported_and_not_altered(admin, names):
    name = names("wrong")
    create_topic(admin, name, 3, {"cleanup.policy": "delete"})
    with pytest.raises(TopicMisconfigured) as err:
        ensure_topic(admin, curated_topic_spec(name))
    message = str(err.value)
    assert name in message
    assert "partitions=3, expected 6" in message
    assert "cleanup.policy=delete, expected compact" in message
    assert _config(admin, name)["cleanup.policy"] == "delete"  # reported, never "fixed" behind anyone's back
