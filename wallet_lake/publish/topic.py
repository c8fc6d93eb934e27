"""The payments.curated topic: its settings, created idempotently.

A keyed current-state topic: cleanup.policy=compact keeps the latest record per payment_id
forever (a new sink can rebuild Postgres from the topic), while min.compaction.lag.ms keeps every
record readable long enough for the sink and for replay checks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


def curated_topic_spec(name: str, replication_factor: int = 1) -> TopicSpec:
    return TopicSpec(
        name=name,
        partitions=6,
        replication_factor=replication_factor,
        config={
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
            "min.insync.replicas": "1" if replication_factor == 1 else "2",
            "compression.type": "producer",
        },
    )


def ensure_topic(admin, spec: TopicSpec, timeout: float = 30.0) -> str:
    """Create the topic when missing; when present, verify it and raise on a wrong config.

    Returns "created" or "exists". `admin` is a confluent_kafka AdminClient."""
    from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

    md = admin.list_topics(timeout=timeout)
    if spec.name not in md.topics:
        fut = admin.create_topics(
            [NewTopic(spec.name, num_partitions=spec.partitions, replication_factor=spec.replication_factor, config=spec.config)],
            request_timeout=timeout,
        )[spec.name]
        try:
            fut.result(timeout)
            return "created"
        except Exception as exc:  # a concurrent creator wins the race: fall through to verify
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        md = admin.list_topics(timeout=timeout)

    problems = []
    partitions = len(md.topics[spec.name].partitions)
    if partitions != spec.partitions:
        problems.append(f"partitions={partitions}, expected {spec.partitions}")
    res = ConfigResource(ResourceType.TOPIC, spec.name)
    actual = admin.describe_configs([res], request_timeout=timeout)[res].result(timeout)
    for k, v in spec.config.items():
        if k in actual and actual[k].value != v:
            problems.append(f"{k}={actual[k].value}, expected {v}")
    if problems:
        raise RuntimeError(f"topic {spec.name} exists with the wrong configuration: {'; '.join(problems)}")
    return "exists"
