"""Publish curated records to Kafka: idempotent, acks=all, Java-compatible partitioning, batched
and lz4-compressed; every delivery report is awaited and any delivery error fails the publish
(a payment is never lost silently). A failed publish is safe to rerun: keys are payment_ids and
the sink upserts, so records delivered before the failure are simply written again."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable


# librdkafka appends timings to connection errors; without them repeats collapse into one line.
_TIMING = re.compile(r" \(after \d+ms in state \w+(, \d+ identical error\(s\) suppressed)?\)")


def producer_config(client: dict | str, extra: dict | None = None) -> dict:
    """librdkafka settings of the curated publish on top of the client's connection settings
    (KafkaResource.client_config(): bootstrap servers and security, or just the bootstrap
    servers); `extra` overrides (tests shorten timeouts)."""
    conf = {
        **({"bootstrap.servers": client} if isinstance(client, str) else client),
        # No duplicates or reordering from internal retries; librdkafka then also enforces
        # acks=all, max.in.flight<=5 and unlimited retries within message.timeout.ms.
        "enable.idempotence": True,
        "acks": "all",
        # The Java client's partitioner (murmur2 of the key bytes): keys land on the partition a
        # Java producer would choose, so both can write the same topic without splitting a key.
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        # Bounded local queue: a million-row hour streams through it instead of sitting in memory.
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        # How long a record may wait for an ack (including retries) before its delivery fails.
        "message.timeout.ms": 60_000,
    }
    conf.update(extra or {})
    return conf


@dataclass
class PublishResult:
    messages: int = 0
    bytes: int = 0
    # partition -> next offset after the last message this publish wrote (the sink must pass it)
    end_offsets: dict[int, int] = field(default_factory=dict)
    # keys in delivery-report order, when asked for (the topic asset's key check)
    delivered_keys: list[bytes] = field(default_factory=list)
    seconds: float = 0.0


class DeliveryFailed(RuntimeError):
    """Some records were not acknowledged by the broker; the message says how many, why, and
    which broker the client could not reach."""


def failure_message(topic: str, bootstrap: str, sent: int, delivered: int, failures: Counter, client_errors: list[str], fatal: list[str], dropped: int = 0) -> str:
    """One readable paragraph about a failed publish (pure, for DeliveryFailed)."""
    parts = [f"publish to topic {topic} at broker(s) {bootstrap} failed: {delivered} of {sent} records acknowledged"]
    if dropped:
        parts.append(f"{dropped} queued records were not sent once the publish stopped")
    if failures:
        parts.append("Delivery errors: " + ", ".join(f"{n} x {e}" for e, n in failures.most_common(5)))
    if fatal:
        parts.append("Fatal producer error: " + "; ".join(fatal[:3]))
    if client_errors:
        parts.append("Client errors: " + "; ".join(client_errors[-5:]))
    if any("AUTHORIZATION_FAILED" in e for e in (*failures, *fatal, *client_errors)):
        parts.append("The broker refused the client's principal: check the SASL user (WL_KAFKA_SASL_USERNAME) and its ACLs (security/kafka_acls.py)")
    parts.append("Records are keyed by payment_id and upserted downstream: rerun the publish once the broker is reachable")
    return ". ".join(parts)


def publish(records: Iterable[tuple[bytes, bytes]], topic: str, conf: dict, *, collect_keys: bool = False, flush_timeout: float | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> PublishResult:
    """Produce (key, value) records and wait for every delivery report.

    Raises DeliveryFailed on the first delivery or fatal client error (records not yet sent are
    dropped: the run fails and a rerun publishes the hour again) and when reports are missing."""
    import time

    from confluent_kafka import KafkaError, KafkaException, Producer

    result = PublishResult()
    end = result.end_offsets
    keys = result.delivered_keys if collect_keys else None
    failures: Counter = Counter()
    dropped = Counter()  # records purged from the local queue when a failed publish stops
    client_errors: list[str] = []
    fatal: list[str] = []
    purged = KafkaError._PURGE_QUEUE

    # Kept lean: it runs once per record on the hot path.
    def on_delivery(err, msg):
        if err is not None:
            if err.code() == purged:
                dropped["queue"] += 1
            else:
                failures[f"{err.name()}: {err.str()}"] += 1
            return
        result.messages += 1
        p, o = msg.partition(), msg.offset()
        if o >= end.get(p, 0):
            end[p] = o + 1
        if keys is not None:
            keys.append(msg.key())

    def raised(exc: KafkaException) -> None:
        """A fatal producer error that poll()/flush() raised instead of reporting it to error_cb
        (e.g. CLUSTER_AUTHORIZATION_FAILED for the idempotent producer id of a principal
        without ACLs): recorded so that fail() names it."""
        err = exc.args[0] if exc.args else None
        text = _TIMING.sub("", f"{err.name()}: {err.str()}") if isinstance(err, KafkaError) else str(exc)
        if text not in fatal:
            fatal.append(text)

    def serve(seconds: float) -> None:
        try:
            producer.poll(seconds)
        except KafkaException as exc:
            raised(exc)

    def on_error(err):  # broker/connection level errors (librdkafka retries them internally)
        text = _TIMING.sub("", f"{err.name()}: {err.str()}")
        if err.fatal():
            fatal.append(text)
        if text not in client_errors:
            client_errors.append(text)
            del client_errors[:-20]

    started = time.monotonic()
    producer = Producer({**conf, "on_delivery": on_delivery, "error_cb": on_error})
    timeout = flush_timeout if flush_timeout is not None else int(conf.get("message.timeout.ms", 300_000)) / 1000 + 10
    sent = size = 0
    produce = producer.produce

    def fail() -> DeliveryFailed:
        producer.purge(in_queue=True, in_flight=False)
        try:
            producer.flush(min(timeout, 30))
        except KafkaException as exc:
            raised(exc)
        return DeliveryFailed(failure_message(topic, conf["bootstrap.servers"], sent, result.messages, failures, client_errors, fatal, dropped["queue"]))

    try:
        for key, value in records:
            while True:
                try:
                    produce(topic, value, key, headers=headers)
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    serve(0.1)
                    if failures or fatal:
                        raise fail()
                except KafkaException as exc:
                    failures[f"could not enqueue: {exc}"] += 1
                    raise fail() from exc
            sent += 1
            size += len(key) + len(value)
            if not sent & 1023:
                serve(0)
                if failures or fatal:
                    raise fail()
        try:
            remaining = producer.flush(timeout)
        except KafkaException as exc:
            raised(exc)
            raise fail() from exc
        if remaining or failures or fatal:
            if remaining:
                failures[f"no delivery report within {timeout:.0f}s"] += remaining
            raise fail()
        if result.messages != sent:
            raise DeliveryFailed(f"sent {sent} records to {topic} but {result.messages} delivery reports arrived")
    except BaseException:
        failing = True
        raise
    else:
        failing = False
    finally:
        closing: list[KafkaException] = []
        for step in (producer.purge, producer.close):  # purge: a no-op after a complete publish
            try:
                step()
            except KafkaException as exc:
                # A fatal error (e.g. a refused producer id) is raised again here: it must not
                # replace the DeliveryFailed that already names it, nor pass unnoticed otherwise.
                raised(exc)
                closing.append(exc)
        if closing and not failing:
            raise DeliveryFailed(failure_message(topic, conf["bootstrap.servers"], sent, result.messages, failures, client_errors, fatal, dropped["queue"])) from closing[0]
    result.bytes = size
    result.seconds = time.monotonic() - started
    return result
