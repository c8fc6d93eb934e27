"""Publish curated records to Kafka: idempotent, acks=all, Java-compatible partitioning, and
every delivery report awaited; any delivery error fails the publish (never a silent loss)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


def producer_config(bootstrap_servers: str, extra: dict | None = None) -> dict:
    conf = {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        # murmur2_random = the Java client's default partitioner: keys land where Java puts them.
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 512 * 1024,
        "delivery.timeout.ms": 60000,
        "message.timeout.ms": 60000,
    }
    conf.update(extra or {})
    return conf


@dataclass
class PublishResult:
    messages: int = 0
    bytes: int = 0
    # partition -> next offset after the last message this publish wrote (the sink must pass it)
    end_offsets: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class DeliveryFailed(RuntimeError):
    pass


def publish(records: Iterable[tuple[bytes, bytes]], topic: str, conf: dict, flush_timeout: float = 120.0) -> PublishResult:
    """Produce (key, value) records and wait for all delivery reports."""
    from confluent_kafka import KafkaException, Producer

    result = PublishResult()
    producer = Producer(conf)

    def on_delivery(err, msg):
        if err is not None:
            result.errors.append(f"{err.name()}: {err.str()}")
            return
        result.messages += 1
        result.bytes += len(msg.value()) + len(msg.key() or b"")
        p, o = msg.partition(), msg.offset()
        if o + 1 > result.end_offsets.get(p, -1):
            result.end_offsets[p] = o + 1

    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry this record
                producer.poll(0.5)
            except KafkaException as exc:
                raise DeliveryFailed(f"could not enqueue a record for {topic}: {exc}") from exc
        sent += 1
        producer.poll(0)
    remaining = producer.flush(flush_timeout)
    if remaining:
        raise DeliveryFailed(f"{remaining} of {sent} records to {topic} were not delivered within {flush_timeout}s (is the broker at {conf['bootstrap.servers']} up?)")
    if result.errors:
        raise DeliveryFailed(f"{len(result.errors)} of {sent} records to {topic} failed: {sorted(set(result.errors))[:5]}")
    if result.messages != sent:
        raise DeliveryFailed(f"sent {sent} records to {topic} but {result.messages} delivery reports arrived")
    return result
