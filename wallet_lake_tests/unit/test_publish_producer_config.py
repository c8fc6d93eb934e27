"""The curated producer's settings and the failure message a broken publish raises."""

from collections import Counter

from wallet_lake.publish.producer import failure_message, producer_config


def test_producer_is_idempotent_acks_all_java_partitioned_batched_and_lz4():
    conf = producer_config("broker:9092")
    assert conf["enable.idempotence"] is True and conf["acks"] == "all"
    assert conf["partitioner"] == "murmur2_random"
    assert conf["compression.type"] == "lz4"
    assert conf["linger.ms"] > 0 and conf["batch.size"] >= 64 * 1024


def test_overrides_win_over_defaults():
    assert producer_config("b:1", {"message.timeout.ms": 5000})["message.timeout.ms"] == 5000


def test_failure_message_names_the_topic_broker_counts_and_causes():
    msg = failure_message(
        "payments.curated", "127.0.0.1:59092", 1000, 400, Counter({"_MSG_TIMED_OUT: Local: Message timed out": 600}),
        ["_TRANSPORT: 127.0.0.1:59092/1: Connect to ipv4#127.0.0.1:59092 failed: Connection refused"], [],
    )
    assert "payments.curated" in msg and "127.0.0.1:59092" in msg
    assert "400 of 1000" in msg and "600 x _MSG_TIMED_OUT" in msg and "Connection refused" in msg


def test_failure_message_of_a_refused_principal_says_to_check_its_acls():
    msg = failure_message(
        "payments.curated", "127.0.0.1:59094", 40, 0, Counter({"TOPIC_AUTHORIZATION_FAILED: Broker: Topic authorization failed": 40}),
        [], ["CLUSTER_AUTHORIZATION_FAILED: Failed to acquire idempotence PID from broker"],
    )
    assert "0 of 40" in msg and "40 x TOPIC_AUTHORIZATION_FAILED" in msg and "CLUSTER_AUTHORIZATION_FAILED" in msg
    assert "refused the client's principal" in msg and "WL_KAFKA_SASL_USERNAME" in msg
    assert "refused the client's principal" not in failure_message("t", "b:1", 1, 0, Counter({"_MSG_TIMED_OUT: x": 1}), [], [])
