"""Helpers of the publish/sink tests on the real stack: hand-built curated rows with ids unique to
the test run, publishing them, waiting for the sink with a deadline, reading the rows back, and
stopping/restarting a shared service (always brought back through `stack/wallet-stack up`).

Tests share the stack with other engineers: every id, topic and connector made here is unique to
the run, and only rows or objects this module created are ever removed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from wallet_lake.contracts.schema import CURATED_COLUMNS
from wallet_lake.publish.producer import PublishResult, producer_config, publish
from wallet_lake.publish.records import SCHEMA_HEADERS, curated_record
from wallet_lake.serving.connect import raise_if_failed, sink_group_id, wait_for_sink
from wallet_lake_tests.polling import deadline_poll
from wallet_lake_tests.stack_command import wallet_stack
from wallet_lake_tests.stack_versions import pg_bin as stack_pg_bin

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc


def run_prefix(label: str) -> str:
    """A payment_id prefix no other run (or engineer) uses."""
    return f"t-{label}-{uuid.uuid4().hex[:12]}-"


def rows_prefix_fixture(label: str):
    """A pytest fixture `prefix`: a payment_id prefix unique to the test (run_prefix(label)),
    whose rows are deleted from curated_payments afterwards."""
    import pytest

    @pytest.fixture
    def prefix(stack_resources):
        p = run_prefix(label)
        yield p
        delete_rows(stack_resources["postgres"], p)

    return prefix


def curated_topic_fixture(name_prefix: str, partitions: int = 3):
    """A pytest fixture `topic`: a throwaway curated topic (throwaway_curated_topic), deleted afterwards."""
    import pytest

    @pytest.fixture
    def topic(stack_resources):
        with throwaway_curated_topic(stack_resources, name_prefix, partitions) as name:
            yield name

    return topic


def random_day() -> date:
    """A created_at day in 2025: outside the landing hours other tests generate (2026), so report
    totals of their days never see these rows."""
    return date(2025, 1, 1) + timedelta(days=random.Random(time.time_ns()).randrange(360))


def curated_row(payment_id: str, created_at: datetime, status: str = "APPROVED", **overrides) -> dict:
    """A valid curated row (as the curation rules would derive it) for a hand-built payment."""
    authorized = created_at - timedelta(milliseconds=1500) if status != "PENDING" else None
    completed = created_at if status not in ("PENDING",) else None
    row = {
        "payment_id": payment_id,
        "merchant_id": "merchant-t",
        "user_id": "user-" + payment_id[-4:],
        "amount_cents": 1000 + sum(payment_id.encode()) % 9000,
        "currency": "EUR",
        "status": status,
        "payment_method": "card",
        "risk_score": 0.125,
        "authorized_at": authorized,
        "completed_at": completed,
        "created_at": created_at,
        "source_system": "processor-test",
        "decline_reason": "insufficient_funds" if status == "DECLINED" else None,
        "dt": created_at.astimezone(UTC).date(),
        "hour": created_at.astimezone(UTC).hour,
        "authorized_to_complete_ms": 1500 if authorized and completed else None,
        "is_approved": status == "APPROVED",
        "is_refunded": status == "REFUNDED",
        "processed_at": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        "curated_version": 1,
    }
    row.update(overrides)
    return row


def publish_rows(kafka, rows: list[dict], *, topic: str | None = None, extra: dict | None = None, collect_keys: bool = False) -> PublishResult:
    return publish((curated_record(r) for r in rows), topic or kafka.topic, producer_config(kafka.client_config(), extra), collect_keys=collect_keys,
                   headers=SCHEMA_HEADERS)


def wait_for_shared_sink(res, end_offsets: dict[int, int], timeout: float = 180.0) -> None:
    """Until the shared connector committed past end_offsets (its rows are then in Postgres);
    fails at once, with the trace, if the connector or a task FAILED."""
    connect, kafka = res["connect"], res["kafka"]
    client = connect.client()
    wait_for_sink(
        kafka.client_config(), sink_group_id(connect.connector_name), kafka.topic, end_offsets,
        timeout=timeout, poll=0.5, check=lambda: raise_if_failed(client.status(connect.connector_name)),
    )


def fetch_rows(pg, ids: list[str]) -> dict[str, dict]:
    """{payment_id: {column: value}} of the given ids in curated_payments."""
    cols = ", ".join(CURATED_COLUMNS)
    with pg.connect() as conn:
        cur = conn.execute(f"SELECT {cols} FROM curated_payments WHERE payment_id = ANY(%s)", (ids,))
        return {r[0]: dict(zip(CURATED_COLUMNS, r)) for r in cur.fetchall()}


def count_rows(pg, ids: list[str]) -> tuple[int, int]:
    """(rows, distinct payment_ids) among the given ids in curated_payments."""
    with pg.connect() as conn:
        return conn.execute("SELECT count(*), count(DISTINCT payment_id) FROM curated_payments WHERE payment_id = ANY(%s)", (ids,)).fetchone()


def delete_rows(pg, prefix: str) -> None:
    """Remove this run's rows (never anyone else's: the prefix is unique to the run)."""
    assert prefix.startswith("t-") and len(prefix) > 16, prefix
    with pg.connect() as conn:
        conn.execute("DELETE FROM curated_payments WHERE payment_id LIKE %s", (prefix.replace("_", r"\_") + "%",))


def wait_until(what: str, predicate, timeout: float, poll: float = 0.25):
    """Poll predicate() until it returns a truthy value; fail with `what` after timeout seconds."""
    return deadline_poll(predicate, what, timeout, poll)


# ---------------------------------------------------------------- shared services
def _pid_file(service: str) -> Path:
    return Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack")) / "pids" / f"{service}.pid"


def stop_service(service: str, timeout: float = 90.0) -> int:
    """Stop a stack service (kafka, connect) by the PID its start recorded; wait until it exited."""
    pid = int(_pid_file(service).read_text().strip())
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True

    wait_until(f"{service} (pid {pid}) to exit after SIGTERM", gone, timeout)
    return pid


def kill_service(service: str, timeout: float = 60.0) -> int:
    """SIGKILL a stack service (kafka, connect) the way a crash or the OOM killer ends it: no
    shutdown hook, no flush, no group leave. Its whole process group goes (start_bg makes each
    service a group leader, as `stack/wallet-stack down` relies on); waits until it exited."""
    pid = int(_pid_file(service).read_text().strip())
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        raise AssertionError(f"{service} (pid {pid} in {_pid_file(service)}) was not running: nothing to kill")

    def gone() -> bool:
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True

    wait_until(f"{service} (pid {pid}) to exit after SIGKILL", gone, timeout, poll=0.05)
    return pid


def stop_postgres_immediately(timeout: float = 60.0) -> None:
    """`pg_ctl stop -m immediate` on the stack's data directory, as the postgres OS user (as
    stack/wallet-stack runs pg_ctl): every backend quits at once without a checkpoint, like a
    crash, and the next start runs crash recovery from the WAL."""
    import shlex

    pg_bin = stack_pg_bin()
    data = Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack")) / "postgres" / "data"
    cmd = [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", str(int(timeout)), "stop"]
    if os.geteuid() == 0:  # pg_ctl refuses root; the cluster belongs to the postgres user
        cmd = ["su", "postgres", "-s", "/bin/bash", "-c", shlex.join(cmd)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    assert proc.returncode == 0, f"pg_ctl stop -m immediate failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def start_stack(timeout: float = 300.0) -> None:
    """`stack/wallet-stack up`: starts what is down, health-checks everything (a no-op for
    healthy services), provisions idempotently."""
    proc = wallet_stack("up", timeout=timeout)
    assert proc.returncode == 0, f"stack/wallet-stack up failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def stack_healthy(res) -> bool:
    """Every service the fault tests stop answers: Postgres, the broker (with the topic), the
    Connect worker with the shared sink and all its tasks RUNNING, the AWS API. Any error = no."""
    try:
        for service in ("kafka", "connect", "moto"):
            os.kill(int(_pid_file(service).read_text().strip()), 0)
        with res["postgres"].connect() as conn:
            conn.execute("SELECT 1")
        if res["kafka"].topic not in res["kafka"].admin().list_topics(timeout=5).topics:
            return False
        status = res["connect"].client().status_or_none(res["connect"].connector_name)
        res["lake"].client("s3").list_buckets()
    except Exception:  # noqa: BLE001 - a probe that fails for any reason means "not healthy"
        return False
    states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])] if status else []
    return bool(status and status["tasks"]) and all(st == "RUNNING" for st in states)


def ensure_sink_running(res, timeout: float = 120.0) -> None:
    """The shared connector RUNNING with all tasks; a FAILED instance (left by an outage) is restarted."""
    connect = res["connect"]
    client = connect.client()

    def running():
        try:
            status = client.status_or_none(connect.connector_name)
        except httpx.TransportError:  # the shared worker may be restarting (another test's outage)
            return False
        if status is None:
            return False
        states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])]
        if "FAILED" in states:
            client.restart_failed(connect.connector_name)
            return False
        return status["tasks"] and all(s == "RUNNING" for s in states)

    wait_until(f"connector {connect.connector_name} RUNNING", running, timeout, poll=1.0)


def create_topic(admin, name: str, partitions: int, config: dict | None = None) -> None:
    from confluent_kafka.admin import NewTopic

    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])[name].result(30)
    wait_until(f"topic {name} in the metadata", lambda: name in admin.list_topics(timeout=10).topics, 30)


def delete_topics(admin, names: list[str]) -> None:
    """Delete throwaway topics this test created (never a shared one)."""
    assert all(n.startswith("t-") for n in names), names
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        fut.result(60)


@contextmanager
def throwaway_curated_topic(res, prefix: str, partitions: int = 3) -> Iterator[str]:
    """A topic named `prefix` plus a random suffix with the curated topic's settings; deleted
    afterwards."""
    from confluent_kafka.admin import AdminClient

    from wallet_lake.publish.topic import curated_topic_spec

    admin = AdminClient(res["kafka"].client_config())
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    create_topic(admin, name, partitions, curated_topic_spec(name).config)
    try:
        yield name
    finally:
        delete_topics(admin, [name])


@contextmanager
def throwaway_connector(res, topic: str, overrides: dict | None = None, *, table: str = "curated_payments",
                        flavor: str | None = None) -> Iterator[str]:
    """A sink connector named after `topic` running the project's connector config (or another
    flavor of serving/deploy.py) on that topic, writing `table` (with its own dead-letter topic
    `<topic>.dlq`); deleted afterwards, with its consumer group and dead-letter topic. Experiments
    with bad records never touch the shared connector."""
    from confluent_kafka.admin import AdminClient

    from wallet_lake.serving.deploy import sink_connector_config

    from wallet_lake.security.kafka_acls import add_grants, admin_client, sink_connector_grants

    assert topic.startswith("t-"), topic
    name = topic
    config = sink_connector_config(res, **({"flavor": flavor} if flavor else {}), table=table)
    config.update({"topics": topic, "errors.deadletterqueue.topic.name": f"{topic}.dlq", **(overrides or {})})
    # The worker's principal may read only the topics of its provisioned sink: grant it this
    # connector's topic, group and dead-letter topic, as an operator adding a sink would.
    add_grants(admin_client(), sink_connector_grants(topic, name, f"{topic}.dlq"))
    res["connect"].client().deploy(name, config)
    try:
        yield name
    finally:
        remove_connector(res, name, f"{topic}.dlq")


def remove_connector(res, name: str, dlq_topic: str | None = None) -> None:
    """Delete a throwaway connector, its consumer group and (when Connect created it) its
    dead-letter topic."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    assert name.startswith("t-"), name
    res["connect"].client().delete(name)
    admin = AdminClient(res["kafka"].client_config())

    def group_deleted() -> bool:
        try:
            admin.delete_consumer_groups([sink_group_id(name)], request_timeout=10)[sink_group_id(name)].result()
            return True
        except KafkaException as exc:  # the group empties a moment after the connector is gone
            return "GROUP_ID_NOT_FOUND" in str(exc)

    wait_until(f"consumer group of {name} deleted", group_deleted, 60, poll=1.0)
    if dlq_topic and dlq_topic in admin.list_topics(timeout=10).topics:
        delete_topics(admin, [dlq_topic])
    if dlq_topic:
        from wallet_lake.security.kafka_acls import admin_client, remove_grants, sink_connector_grants

        remove_grants(admin_client(), sink_connector_grants(name, name, dlq_topic))


def consume(kafka, topic: str, start: dict[int, int], until, timeout: float = 60.0) -> list:
    """Messages of `topic` (read with the KafkaResource's client settings) from the `start`
    offsets until until(messages) is true (or timeout)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**kafka.client_config(), "group.id": f"t-reader-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=15).topics[topic].partitions
        c.assign([TopicPartition(topic, p, start.get(p, 0)) for p in parts])
        out: list = []
        deadline = time.monotonic() + timeout
        while not until(out):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s reading {topic}: {len(out)} messages read")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise AssertionError(f"reading {topic}: {msg.error()}")
            out.append(msg)
        return out
    finally:
        c.close()
