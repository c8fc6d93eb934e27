"""Kafka authentication and ACLs on the local broker: SCRAM-SHA-512 over SASL_SSL for every
client, mutual TLS for the provisioning admin, no unauthenticated listener, KRaft's
StandardAuthorizer with the ACLs of security/kafka_acls.py. The broker itself decides every
assertion here (its answers to real requests, or the operations it reports as authorized for the
caller); nothing is written to the shared curated topic, its dead-letter topic or Connect's own
topics."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from wallet_lake.resources import resources_from_os_env
from wallet_lake.security.kafka_acls import (
    BENCH_PREFIX, CONNECT_INTERNAL_PREFIX, TEST_PREFIX, USERS, Grant, admin_client_config, desired_grants,
)

pytestmark = pytest.mark.integration

TOPIC = os.environ.get("WL_KAFKA_TOPIC", "payments.curated")
DLQ = f"{TOPIC}.dlq"
BOOTSTRAP = os.environ["WL_KAFKA_BOOTSTRAP"]
INTERNAL = f"127.0.0.1:{os.environ['WL_KAFKA_INTERNAL_PORT']}"
QUICK = {"socket.timeout.ms": 8000, "socket.connection.setup.timeout.ms": 8000}


def conf(user: str, password: str | None = None) -> dict:
    """SASL_SSL client settings of one of the SCRAM users, as the project's clients build them."""
    config = resources_from_os_env()["kafka"].as_principal(user).client_config()
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.username"] == user
    return {**config, "sasl.password": password} if password is not None else config


def admin(user: str | None = None) -> AdminClient:
    """The user's admin client; without a user, the provisioning admin (mutual TLS)."""
    return AdminClient(conf(user) if user else admin_client_config())


def authorized_ops(client: AdminClient, topic: str) -> set[str]:
    """What the broker says the caller may do on `topic` (KIP-430); empty when it may not even see it."""
    fut = client.describe_topics(TopicCollection([topic]), include_authorized_operations=True, request_timeout=15)[topic]
    try:
        return {op.name for op in fut.result(15).authorized_operations or []}
    except KafkaException as exc:
        assert exc.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, exc
        return set()


def produce_error(config: dict, topic: str) -> KafkaError | None:
    """Produce one record and return the delivery error (None when the broker accepted it)."""
    errors: list = []
    p = Producer({**config, "message.timeout.ms": 10000, "enable.idempotence": False, "acks": "all"})
    p.produce(topic, key=b"acl-probe", value=b"{}", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors, "no delivery report within 15 s"
    return errors[0]


def fetch(config: dict, topic: str, group: str) -> KafkaError | str:
    """Fetch from `topic` partition 0 by assignment: no group membership and no commit, so
    naming an existing group (the principal may need one to find its coordinator) changes
    nothing for that group. Returns "message" when a record arrived, else the error."""
    c = Consumer({**config, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        for _ in range(20):
            msg = c.poll(1.0)
            if msg is None:
                continue
            return msg.error() if msg.error() else "message"
        return "nothing within 20 s"
    finally:
        c.close()


SINK_GROUP = f"connect-{os.environ['WL_CONNECTOR_NAME']}"
REFUSED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


def refused(result, codes=(KafkaError.TOPIC_AUTHORIZATION_FAILED,)) -> bool:
    return isinstance(result, KafkaError) and result.code() in codes


def create_topic(client: AdminClient, name: str):
    return client.create_topics([NewTopic(name, 1, 1)], request_timeout=15)[name].result(15)


@pytest.fixture
def scratch_topics():
    """Topics a test creates; deleted through the provisioning admin."""
    names: list[str] = []
    yield names
    if names:
        plain = admin()
        for fut in plain.delete_topics(names, request_timeout=15).values():
            try:
                fut.result(15)
            except KafkaException:
                pass


# ---------------------------------------------------------------- the listeners


def refused_connection(config: dict) -> KafkaException:
    """The error of a metadata request that must not get through."""
    with pytest.raises(KafkaException) as failed:
        AdminClient({**config, **QUICK}).describe_topics(TopicCollection([TOPIC]), request_timeout=10)[TOPIC].result(20)
    return failed.value


def test_no_listener_serves_a_client_without_credentials():
    # The clients' listener speaks TLS + SASL only: plain TCP, or TLS without a SASL login, gets nothing.
    refused_connection({"bootstrap.servers": BOOTSTRAP})
    ca = os.environ["WL_KAFKA_SSL_CA_LOCATION"]
    refused_connection({"bootstrap.servers": BOOTSTRAP, "security.protocol": "SSL", "ssl.ca.location": ca})
    # The internal listener wants a client certificate of the stack's CA.
    refused_connection({"bootstrap.servers": INTERNAL, "security.protocol": "SSL", "ssl.ca.location": ca})
    refused_connection({"bootstrap.servers": INTERNAL})


def test_clients_verify_the_brokers_certificate():
    # Without the stack's CA the broker's certificate is not trusted: the client refuses the broker.
    producer = conf("producer")
    producer.pop("ssl.ca.location")
    refused_connection(producer)


def test_the_admin_certificate_is_the_only_super_user():
    assert {"READ", "WRITE", "DESCRIBE", "ALTER", "DELETE"} <= authorized_ops(admin(), TOPIC)
    server = (os.environ["WL_STACK_DIR"] + "/kafka/server.properties")
    props = dict(line.split("=", 1) for line in open(server).read().splitlines() if "=" in line and not line.startswith("#"))
    assert props["super.users"] == "User:broker;User:admin"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"]


def test_sasl_listener_refuses_a_wrong_password():
    # The broker refuses the SCRAM login at once; librdkafka reports that through error_cb, while
    # the request itself fails only at its timeout: take whichever comes first.
    errors: list[KafkaError] = []
    c = AdminClient({**conf("producer", password="not-the-password"), **QUICK, "error_cb": errors.append})
    fut = c.describe_topics(TopicCollection([TOPIC]), request_timeout=10)[TOPIC]
    deadline = time.monotonic() + 15
    while not fut.done() and not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        c.poll(0.2)
    if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        assert not fut.done() or fut.exception() is not None, "the request got through with a wrong password"
        return
    with pytest.raises(KafkaException) as failed:
        fut.result(1)
    assert failed.value.args[0].code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._TRANSPORT, KafkaError._TIMED_OUT)


def test_provisioned_acls_are_exactly_the_desired_set():
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    found, plain = set(), admin()
    for user in USERS:
        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{user}", None, AclOperation.ANY, AclPermissionType.ANY)
        for b in plain.describe_acls(flt, request_timeout=15).result(15):
            found.add(Grant(user, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name))
    assert found == set(desired_grants(TOPIC, os.environ["WL_CONNECTOR_NAME"]))


# ---------------------------------------------------------------- producer


def test_producer_may_only_write_and_describe_the_curated_topic():
    assert authorized_ops(admin("producer"), TOPIC) == {"WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"}
    for other in (DLQ, f"{CONNECT_INTERNAL_PREFIX}configs", "__consumer_offsets"):
        assert authorized_ops(admin("producer"), other) == set(), other


def test_producer_is_refused_reading_the_curated_topic():
    # Through the one group it may find (DESCRIBE on the sink's group): the topic itself refuses.
    assert refused(fetch(conf("producer"), TOPIC, SINK_GROUP))


def test_producer_is_refused_writing_any_other_topic():
    err = produce_error(conf("producer"), DLQ)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_producer_is_refused_creating_topics():
    name = f"{CONNECT_INTERNAL_PREFIX}acl-probe-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as failed:
        create_topic(admin("producer"), name)
    assert failed.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# ---------------------------------------------------------------- connect


def test_connect_may_read_the_curated_topic_and_not_write_it():
    assert authorized_ops(admin("connect"), TOPIC) == {"READ", "DESCRIBE"}
    assert fetch(conf("connect"), TOPIC, SINK_GROUP) == "message"
    err = produce_error(conf("connect"), TOPIC)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_connect_may_write_its_dead_letter_topic():
    assert authorized_ops(admin("connect"), DLQ) == {"WRITE", "DESCRIBE", "CREATE"}


def test_connect_may_create_write_and_read_its_internal_topics(scratch_topics):
    for name in ("configs", "offsets", "status"):
        assert authorized_ops(admin("connect"), f"{CONNECT_INTERNAL_PREFIX}{name}") == {"READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE"}
    # A topic of its own under the same prefix, end to end (the real internal topics are left alone).
    name = f"{CONNECT_INTERNAL_PREFIX}acl-probe-{uuid.uuid4().hex[:8]}"
    scratch_topics.append(name)
    create_topic(admin("connect"), name)
    assert produce_error(conf("connect"), name) is None
    assert fetch(conf("connect"), name, "wallet-lake-connect") == "message"


def test_connect_is_refused_topics_outside_its_own():
    name = f"other.topic-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as failed:
        create_topic(admin("connect"), name)
    assert failed.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert authorized_ops(admin("connect"), "__consumer_offsets") == set()


# ---------------------------------------------------------------- anyone else


def test_a_principal_without_acls_is_refused_everything():
    assert authorized_ops(admin("intruder"), TOPIC) == set()
    assert refused(fetch(conf("intruder"), TOPIC, SINK_GROUP), REFUSED)
    err = produce_error(conf("intruder"), TOPIC)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    name = f"{CONNECT_INTERNAL_PREFIX}acl-probe-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as failed:
        create_topic(admin("intruder"), name)
    assert failed.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# ---------------------------------------------------------------- clients take it from configuration


def test_kafka_resource_takes_sasl_settings_and_password_from_configuration(stack_resources, monkeypatch):
    from wallet_lake.resources import KafkaResource
    from wallet_lake.security.secrets import forget

    pipeline = resources_from_os_env()["kafka"]
    assert pipeline.client_config()["security.protocol"] == "SASL_SSL"
    assert pipeline.client_config()["ssl.endpoint.identification.algorithm"] == "https"

    secrets = stack_resources["lake"].client("secretsmanager")
    secret_id = f"wallet-lake/test/kafka-producer-{uuid.uuid4().hex}"
    secrets.create_secret(Name=secret_id, SecretString=os.environ[USERS["producer"]])
    monkeypatch.delenv("WL_KAFKA_SASL_PASSWORD", raising=False)
    monkeypatch.setenv("WL_KAFKA_SASL_PASSWORD_SECRET_ID", secret_id)
    forget("WL_KAFKA_SASL_PASSWORD")
    try:
        sasl = KafkaResource(bootstrap_servers=BOOTSTRAP, topic=TOPIC, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="producer", ssl_ca_location=os.environ["WL_KAFKA_SSL_CA_LOCATION"])
        assert sasl.client_config()["sasl.username"] == "producer"
        assert authorized_ops(sasl.admin(), TOPIC) == {"WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"}
    finally:
        forget("WL_KAFKA_SASL_PASSWORD")
        secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)


# ---------------------------------------------------------------- tests and benchmarks


@pytest.mark.parametrize(("user", "own", "foreign"), [("tests", TEST_PREFIX, BENCH_PREFIX), ("bench", BENCH_PREFIX, TEST_PREFIX)])
def test_tests_and_bench_own_their_prefix_and_nothing_else(user, own, foreign, scratch_topics):
    mine = f"{own}acl-probe-{uuid.uuid4().hex[:8]}"
    scratch_topics.append(mine)
    create_topic(admin(user), mine)
    assert produce_error(conf(user), mine) is None
    assert fetch(conf(user), mine, f"{own}acl-probe") == "message"
    with pytest.raises(KafkaException) as failed:
        create_topic(admin(user), f"{foreign}acl-probe-{uuid.uuid4().hex[:8]}")
    assert failed.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for other in (f"{CONNECT_INTERNAL_PREFIX}configs", "__consumer_offsets"):
        assert authorized_ops(admin(user), other) == set(), other


def test_bench_may_not_touch_the_curated_topic():
    assert authorized_ops(admin("bench"), TOPIC) == set()


def test_tests_may_drive_and_observe_the_curated_topic_but_not_alter_or_delete_it():
    assert authorized_ops(admin("tests"), TOPIC) == {"WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS"}
    assert authorized_ops(admin("tests"), DLQ) == {"READ", "DESCRIBE"}
