"""The payments.curated topic: its settings, created idempotently, verified when it exists.

A keyed current-state topic: cleanup.policy=compact keeps the latest record of every payment_id
for as long as the topic lives, so a new sink (or a rebuilt Postgres) can be filled from the
topic alone, and replays of a landing hour cost storage only until compaction. min.compaction.lag.ms
keeps every record uncompacted for a week, so the sink, replay checks and debugging see each one.
A time-retention topic (cleanup.policy=delete) would lose payments that stop changing; a
compact+delete topic would too. The partition count is fixed at creation: changing it moves keys
to other partitions (and breaks per-key order), so a differing count is reported, never "fixed".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


class TopicMisconfigured(RuntimeError):
    """The topic exists but differs from its spec; the message lists every difference."""


def curated_topic_spec(name: str, replication_factor: int = 1) -> TopicSpec:
    """payments.curated: 6 partitions (room for 6 sink tasks), compacted, and with
    min.insync.replicas one below the replication factor (2 of 3 on a real cluster), so acks=all
    survives the loss of one broker."""
    return TopicSpec(
        name=name,
        partitions=6,
        replication_factor=replication_factor,
        config={
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
            "min.insync.replicas": str(max(1, replication_factor - 1)),
            # Keep the producer's lz4 batches as they are (no recompression on the broker).
            "compression.type": "producer",
        },
    )


def topic_problems(spec: TopicSpec, partitions: int, replication_factor: int, config: dict[str, str]) -> list[str]:
    """Differences between an existing topic (partition count, replication factor of its
    partitions, effective config values) and its spec; empty when it matches. Pure."""
    problems = []
    if partitions != spec.partitions:
        problems.append(f"partitions={partitions}, expected {spec.partitions}")
    if replication_factor != spec.replication_factor:
        problems.append(f"replication factor={replication_factor}, expected {spec.replication_factor}")
    for key, want in sorted(spec.config.items()):
        have = config.get(key)
        if have is None:
            problems.append(f"{key} is not reported by the broker, expected {want}")
        elif have != want:
            problems.append(f"{key}={have}, expected {want}")
    return problems


def _metadata_with(admin, name: str, timeout: float):
    """Cluster metadata once it lists `name` (a topic created a moment ago may not be there yet)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(timeout=timeout)
        if name in md.topics and md.topics[name].error is None:
            return md
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} exists but is not in the cluster metadata after {timeout}s")
        time.sleep(0.2)


def ensure_topic(admin, spec: TopicSpec, timeout: float = 30.0) -> str:
    """Create the topic when missing; when present, verify it and raise TopicMisconfigured
    listing every difference (nothing is altered: a wrong topic needs a human decision).

    Returns "created" or "exists". `admin` is a confluent_kafka AdminClient."""
    from confluent_kafka import KafkaError, KafkaException
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
        except KafkaException as exc:  # a concurrent creator won the race: verify theirs
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        md = _metadata_with(admin, spec.name, timeout)

    topic_md = md.topics[spec.name]
    partitions = topic_md.partitions
    replication = min((len(p.replicas) for p in partitions.values()), default=0)
    res = ConfigResource(ResourceType.TOPIC, spec.name)
    entries = admin.describe_configs([res], request_timeout=timeout)[res].result(timeout)
    problems = topic_problems(spec, len(partitions), replication, {k: e.value for k, e in entries.items()})
    if problems:
        raise TopicMisconfigured(
            f"topic {spec.name} exists with the wrong configuration: {'; '.join(problems)}. "
            "Fix it with kafka-configs/kafka-topics (or recreate it if the partition count or "
            "replication differs), then rerun."
        )
    return "exists"
