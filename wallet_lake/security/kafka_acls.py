"""Kafka principals and ACLs of wallet-lake, applied idempotently by provisioning
(`python -m wallet_lake.provision kafka_auth`, part of `stack/wallet-stack up`).

Clients connect only over SASL_SSL (stack/kafka/server.properties). SCRAM-SHA-512 users, each
with a password from the environment or Secrets Manager (security/secrets.py; locally generated
into .stack/secrets.env):

  producer  WL_KAFKA_PRODUCER_PASSWORD  the pipeline (Dagster code location): writes the curated
            topic, reads its metadata, and reads the sink group's committed offsets (sink wait)
  connect   WL_KAFKA_CONNECT_PASSWORD   the Kafka Connect worker and its Postgres sink: reads the
            curated topic, its own consumer groups, internal topics and dead-letter topic
  tests     WL_KAFKA_TESTS_PASSWORD     the test suite: drives and observes the curated topic, and
            owns throwaway topics and groups named t-*
  bench     WL_KAFKA_BENCH_PASSWORD     the benchmarks: owns topics and groups named wl-bench-*
  intruder  WL_KAFKA_INTRUDER_PASSWORD  a principal with no ACLs at all, for tests that prove
            everything is refused to anyone not granted

The provisioning admin is no SCRAM user: it authenticates with a client certificate of the
stack's CA on the broker's internal listener (admin_client_config), as does the broker itself;
both are the broker's only super users. The broker denies anything not granted
(StandardAuthorizer, allow.everyone.if.no.acl.found=false). Provisioning makes the ACLs of these
principals exactly the desired set: extra ones are removed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from wallet_lake.serving.connect import sink_group_id as sink_group

log = logging.getLogger("wallet_lake.security.kafka_acls")

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
USERS = {
    "producer": "WL_KAFKA_PRODUCER_PASSWORD", "connect": "WL_KAFKA_CONNECT_PASSWORD", "tests": "WL_KAFKA_TESTS_PASSWORD",
    "bench": "WL_KAFKA_BENCH_PASSWORD", "intruder": "WL_KAFKA_INTRUDER_PASSWORD",
}
CONNECT_INTERNAL_PREFIX = "_wallet-lake-connect-"  # connect/worker.properties: config/offset/status topics
CONNECT_WORKER_GROUP = "wallet-lake-connect"  # connect/worker.properties group.id
TEST_PREFIX = "t-"  # throwaway topics, groups and connectors of the test suite
BENCH_PREFIX = "wl-bench-"  # topics, groups and connectors of the benchmarks


@dataclass(frozen=True, order=True)
class Grant:
    principal: str  # user name (User:<name>)
    resource: str  # TOPIC | GROUP | CLUSTER
    name: str
    pattern: str  # LITERAL | PREFIXED
    operation: str  # READ, WRITE, DESCRIBE, ...


def sink_connector_grants(topic: str, connector_name: str, dlq: str) -> list[Grant]:
    """What the connect principal needs for one sink connector: read its topic in its group,
    create and write its dead-letter topic."""
    return [
        *(Grant("connect", "TOPIC", topic, "LITERAL", op) for op in ("READ", "DESCRIBE")),
        Grant("connect", "GROUP", sink_group(connector_name), "LITERAL", "READ"),
        *(Grant("connect", "TOPIC", dlq, "LITERAL", op) for op in ("WRITE", "DESCRIBE", "CREATE")),
    ]


def _owner_of_prefix(user: str, prefix: str) -> list[Grant]:
    """Topics and groups named prefix*, which the principal creates and deletes itself."""
    topic_ops = ("CREATE", "DELETE", "WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS")
    return [
        *(Grant(user, "TOPIC", prefix, "PREFIXED", op) for op in topic_ops),
        *(Grant(user, "GROUP", prefix, "PREFIXED", op) for op in ("READ", "DESCRIBE", "DELETE")),
        # The sink groups of its own throwaway connectors: wait for them, delete them afterwards.
        *(Grant(user, "GROUP", sink_group(prefix), "PREFIXED", op) for op in ("DESCRIBE", "DELETE")),
    ]


def desired_grants(topic: str, connector_name: str) -> list[Grant]:
    """The complete ACL set: nothing else is allowed to the project's principals."""
    dlq = f"{topic}.dlq"  # connect/postgres-sink.*.json errors.deadletterqueue.topic.name
    grants = [
        # The pipeline publishes (idempotent producer: WRITE on the topic is enough since Kafka 3),
        # checks the topic's settings, and waits for the sink's committed offsets.
        *(Grant("producer", "TOPIC", topic, "LITERAL", op) for op in ("WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")),
        Grant("producer", "GROUP", sink_group(connector_name), "LITERAL", "DESCRIBE"),
        # The sink reads the curated topic in its consumer group.
        *sink_connector_grants(topic, connector_name, dlq),
        # The worker: its group, its internal topics (created on first start).
        Grant("connect", "GROUP", CONNECT_WORKER_GROUP, "LITERAL", "READ"),
        *(Grant("connect", "TOPIC", CONNECT_INTERNAL_PREFIX, "PREFIXED", op) for op in ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")),
        # The test suite acts as the pipeline and as its observer on the curated topic (publish,
        # read back, read the dead-letter topic, wait for the sink), and owns its throwaway t-*.
        *(Grant("tests", "TOPIC", topic, "LITERAL", op) for op in ("WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS")),
        *(Grant("tests", "TOPIC", dlq, "LITERAL", op) for op in ("READ", "DESCRIBE")),
        Grant("tests", "GROUP", sink_group(connector_name), "LITERAL", "DESCRIBE"),
        *_owner_of_prefix("tests", TEST_PREFIX),
        # The benchmarks publish their own topics and run their own sinks on them.
        *_owner_of_prefix("bench", BENCH_PREFIX),
    ]
    return sorted(grants)


def admin_client_config() -> dict:
    """librdkafka settings of the provisioning admin on the local stack: mutual TLS on the
    broker's internal listener with the certificate stack/tls.py issued (CN=admin, a super user).
    The key file is the secret; nothing else grants these rights."""
    from wallet_lake.settings import KafkaSettings, load

    kafka = load(KafkaSettings)
    if not (kafka.tls_dir and kafka.kafka_internal_port):
        raise RuntimeError("WL_TLS_DIR and WL_KAFKA_INTERNAL_PORT must be set (the local stack's; eval \"$(stack/wallet-stack env)\")")
    tls = Path(kafka.tls_dir)
    return {
        "bootstrap.servers": f"127.0.0.1:{kafka.kafka_internal_port}", "security.protocol": "SSL",
        "ssl.ca.location": str(tls / "ca.pem"), "ssl.certificate.location": str(tls / "admin.pem"),
        "ssl.key.location": str(tls / "admin-key.pem"), "ssl.endpoint.identification.algorithm": "https",
    }


def admin_client():
    from confluent_kafka.admin import AdminClient

    return AdminClient(admin_client_config())


def _binding(g: Grant):
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return AclBinding(
        ResourceType[g.resource], g.name, ResourcePatternType[g.pattern], f"User:{g.principal}", "*",
        AclOperation[g.operation], AclPermissionType.ALLOW,
    )


def _grant_of(binding) -> Grant | None:
    if not binding.principal.startswith("User:") or binding.permission_type.name != "ALLOW" or binding.host != "*":
        return None
    return Grant(binding.principal[len("User:"):], binding.restype.name, binding.name, binding.resource_pattern_type.name, binding.operation.name)


def broker_has_authorizer(admin, timeout: float = 30.0) -> bool:
    """False when the broker answers ACL requests with SECURITY_DISABLED (no authorizer configured)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)
    try:
        admin.describe_acls(flt, request_timeout=timeout).result(timeout)
        return True
    except KafkaException as exc:
        if "SECURITY_DISABLED" in str(exc):
            return False
        raise


def ensure_scram_users(admin, passwords: dict[str, str], timeout: float = 30.0) -> list[str]:
    """Create or reset each user's SCRAM-SHA-512 credential (idempotent: same password, same login)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(u, info, p.encode()) for u, p in passwords.items()], request_timeout=timeout)
    for user, fut in futures.items():
        fut.result(timeout)
    return sorted(futures)


def ensure_acls(admin, grants: list[Grant], principals: list[str], timeout: float = 30.0) -> dict[str, int]:
    """Make the ALLOW ACLs of `principals` exactly `grants`; returns counts created/removed."""
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    current: dict[Grant, object] = {}
    for principal in principals:
        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{principal}", None, AclOperation.ANY, AclPermissionType.ANY)
        for b in admin.describe_acls(flt, request_timeout=timeout).result(timeout):
            g = _grant_of(b)
            current[g if g else Grant(principal, "?", repr(b), "?", "?")] = b
    want = set(grants)
    create = [_binding(g) for g in sorted(want - set(current))]
    stale = [b for g, b in current.items() if g not in want]
    if create:
        for fut in admin.create_acls(create, request_timeout=timeout).values():
            fut.result(timeout)
    if stale:
        filters = [
            AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type) for b in stale
        ]
        for fut in admin.delete_acls(filters, request_timeout=timeout).values():
            fut.result(timeout)
    return {"created": len(create), "removed": len(stale), "total": len(want)}


def add_grants(admin, grants: list[Grant], timeout: float = 30.0) -> None:
    """Grant extra ACLs (e.g. a throwaway connector's); provisioning removes any left behind."""
    for fut in admin.create_acls([_binding(g) for g in grants], request_timeout=timeout).values():
        fut.result(timeout)


def remove_grants(admin, grants: list[Grant], timeout: float = 30.0) -> None:
    from confluent_kafka.admin import AclBindingFilter

    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
               for b in map(_binding, grants)]
    for fut in admin.delete_acls(filters, request_timeout=timeout).values():
        fut.result(timeout)
