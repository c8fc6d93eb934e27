"""The AWS variant of the sink's secret (WL_CONNECT_SECRETS=secretsmanager), run for real.

A second Connect worker starts from the AWS rendering of connect/worker.properties
(`stack/wallet-stack connect-files`, the same renderer as the stack's own worker), its Secrets
Manager config provider pointed at the local AWS API (moto). It runs the project's Debezium JDBC
sink, configured by the same deploy code as the stack's sink. The Postgres password exists only in
Secrets Manager: the worker's process has no variable holding it. Rows landing in Postgres prove the
provider resolved it; the connector's REST answers and the worker's config topic must hold only the
reference ${secretsManager:<name>:password}.

The second worker has its own group and internal topics (appended to its rendered file: in a
properties file the last value of a key wins), so it never joins the stack's worker group."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, time as dtime, timezone
from pathlib import Path

import httpx
import pytest

from stack.java import kafka_java
from wallet_lake.resources import ConnectResource
from wallet_lake.security.kafka_acls import (
    CONNECT_INTERNAL_PREFIX, Grant, add_grants, admin_client, admin_client_config, remove_grants, sink_connector_grants,
)
from wallet_lake.security.secrets import resolve_secret, secrets_manager_endpoint
from wallet_lake.serving.connect import raise_if_failed
from wallet_lake.serving.connect_worker import parse_properties
from wallet_lake.serving.deploy import sink_connector_config
from wallet_lake_tests.ports import free_port
from wallet_lake_tests.integration.sink_support import (
    ROOT, count_rows, create_topic, curated_row, delete_rows, delete_topics, fetch_rows, publish_rows, random_day, remove_connector,
    run_prefix, wait_until,
)
from wallet_lake_tests.security import secret_scan as ss

pytestmark = pytest.mark.integration

SECRET_KEY = "password"  # the JSON field the sink's reference names (connect_worker.DEFAULT_SECRET_KEY)


@dataclass
class AwsWorker:
    """The second worker: its REST resource, the environment it was rendered with, its files."""

    resource: ConnectResource
    render_env: dict
    proc: subprocess.Popen
    folder: Path
    secret_id: str
    config_topic: str

    def log_tail(self, lines: int = 40) -> str:
        text = (self.folder / "connect.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def res(self, stack_resources: dict) -> dict:
        """The stack's resources with this worker as Connect."""
        return {**stack_resources, "connect": self.resource}

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until its REST API answers (the JVM boots while the test prepares its records)."""
        def rest_up() -> bool:
            assert self.proc.poll() is None, f"the AWS-mode worker exited ({self.proc.returncode}):\n{self.log_tail()}"
            try:
                return self.resource.client(timeout=5).http.get("/connectors").status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(f"the AWS-mode worker's REST API on {self.resource.url}", rest_up, timeout, poll=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None


def _secrets_manager():
    import boto3

    return boto3.client("secretsmanager", endpoint_url=secrets_manager_endpoint(os.environ), region_name=os.environ["AWS_REGION"])


@pytest.fixture(scope="module")
def aws_worker(stack_resources, tmp_path_factory):
    with ExitStack() as cleanup:
        yield _start_aws_worker(stack_resources, tmp_path_factory.mktemp("connect-aws"), cleanup)


def _start_aws_worker(stack_resources, folder: Path, cleanup: ExitStack) -> AwsWorker:
    """Launch the worker (its JVM boots while the test goes on: AwsWorker.wait_ready); every step
    registers its undoing on `cleanup`."""
    tag = uuid.uuid4().hex[:10]
    secret_id = f"t-connect-sm-{tag}/postgres"  # a name, as on AWS (wallet-lake/postgres)
    sm = _secrets_manager()
    # The sink role's password, which the stack set in Postgres, stored where AWS keeps it.
    sm.create_secret(Name=secret_id, SecretString=json.dumps({"username": stack_resources["postgres"].user,
                                                              SECRET_KEY: resolve_secret("WL_PG_SINK_PASSWORD")}))
    cleanup.callback(sm.delete_secret, SecretId=secret_id, ForceDeleteWithoutRecovery=True)

    url = f"http://127.0.0.1:{free_port()}"
    render_env = {**os.environ, "WL_CONNECT_SECRETS": "secretsmanager", "WL_CONNECT_SINK_SECRET": "WL_PG_SINK_PASSWORD",
                  "WL_PG_SINK_PASSWORD_SECRET_ID": secret_id, "WL_CONNECT_URL": url}
    # The worker's files hold the connect principal's and the REST passwords: gone afterwards.
    cleanup.callback(lambda: [(folder / f).unlink(missing_ok=True) for f in ("worker.properties", "rest-users.properties", "rest-jaas.conf")])
    rendered = subprocess.run(["bash", str(ROOT / "stack" / "wallet-stack"), "connect-files", str(folder)], cwd=ROOT, env=render_env,
                              capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, f"stack/wallet-stack connect-files failed:\n{rendered.stderr[-3000:]}"
    worker_props = parse_properties((folder / "worker.properties").read_text())
    kafka_home = Path(worker_props["plugin.path"].split(",")[0]).parent  # <Kafka jars>/connect-plugins comes first

    group = f"t-connect-sm-{tag}"
    topics = {kind: f"{CONNECT_INTERNAL_PREFIX}{group}-{kind}" for kind in ("configs", "offsets", "status")}
    with (folder / "worker.properties").open("a") as f:
        f.write(f"\n# test worker: its own group and internal topics\ngroup.id={group}\n"
                f"config.storage.topic={topics['configs']}\noffset.storage.topic={topics['offsets']}\nstatus.storage.topic={topics['status']}\n"
                "offset.storage.partitions=1\nstatus.storage.partitions=1\n")
    admin = admin_client()
    group_grants = [Grant("connect", "GROUP", group, "LITERAL", "READ")]  # its internal topics are under the granted prefix
    add_grants(admin, group_grants)
    cleanup.callback(remove_grants, admin, group_grants)
    # Made here, as the worker would make them (compacted, one partition), but seconds sooner.
    from confluent_kafka.admin import NewTopic

    cleanup.callback(_delete_internal_topics, admin, list(topics.values()))
    for fut in admin.create_topics([NewTopic(t, 1, 1, config={"cleanup.policy": "compact"}) for t in topics.values()]).values():
        fut.result(30)

    # No WL_* variable, so no password: AWS credentials only (moto's placeholders; the role on AWS).
    worker_env = {k: os.environ[k] for k in ("PATH", "HOME", "JAVA_HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION") if k in os.environ}
    # C1 only: this worker lives for seconds, so it boots faster without the optimizing compiler.
    # Its temp folder in the test's (lz4-java unpacks its native library there; /tmp kept them).
    (folder / "tmp").mkdir(exist_ok=True)
    cmd = [kafka_java(), "-Xms256m", "-Xmx768m", "-XX:TieredStopAtLevel=1", f"-Dlog4j2.configurationFile={ROOT / 'stack' / 'kafka' / 'log4j2.properties'}",
           f"-Djava.io.tmpdir={folder / 'tmp'}",
           f"-Djava.security.auth.login.config={folder / 'rest-jaas.conf'}", "-cp", f"{kafka_home}/libs/*",
           "org.apache.kafka.connect.cli.ConnectDistributed", str(folder / "worker.properties")]
    with (folder / "connect.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=worker_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    cleanup.callback(_stop, proc)
    resource = ConnectResource(url=url, rest_username=os.environ["WL_CONNECT_REST_USERNAME"], connector_name=f"t-sm-{tag}", tasks_max=1,
                               secrets="secretsmanager", sink_secret="WL_PG_SINK_PASSWORD")
    return AwsWorker(resource, render_env, proc, folder, secret_id, topics["configs"])


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _delete_internal_topics(admin, names: list[str]) -> None:
    assert all(n.startswith(f"{CONNECT_INTERNAL_PREFIX}t-") for n in names), names  # never the stack worker's
    present = [t for t in names if t in admin.list_topics(timeout=10).topics]
    for fut in (admin.delete_topics(present, operation_timeout=30).values() if present else []):
        fut.result(60)


def _wait_for_rows(worker: AwsWorker, pg, name: str, ids: list[str], timeout: float = 60.0) -> None:
    client = worker.resource.client()

    def loaded() -> bool:
        status = client.status_or_none(name)
        if status is not None:
            raise_if_failed(status)
        return count_rows(pg, ids) == (len(ids), len(ids))

    wait_until(f"{len(ids)} rows of connector {name} in curated_payments", loaded, timeout, poll=0.5)


def test_the_aws_sink_loads_rows_with_a_password_only_secrets_manager_holds(aws_worker, stack_resources):
    password = resolve_secret("WL_PG_SINK_PASSWORD")
    # The worker never had the password: not in its environment (so no env provider could serve it).
    environ = Path(f"/proc/{aws_worker.proc.pid}/environ").read_bytes().split(b"\0")
    assert not any(v.startswith(b"WL_") for v in environ) and password.encode() not in b"\0".join(environ)

    kafka, pg = stack_resources["kafka"], stack_resources["postgres"]
    res = aws_worker.res(stack_resources)
    name = aws_worker.resource.connector_name
    dlq = f"{name}.dlq"
    admin = kafka.admin()
    create_topic(admin, name, 1)
    prefix = run_prefix("sm")
    day = random_day()
    rows = [curated_row(f"{prefix}{i}", datetime.combine(day, dtime(3, i), tzinfo=timezone.utc)) for i in range(3)]
    ids = [r["payment_id"] for r in rows]
    try:
        publish_rows(kafka, rows, topic=name)
        config = sink_connector_config(res, env=aws_worker.render_env)
        config.update({"topics": name, "errors.deadletterqueue.topic.name": dlq})
        reference = f"${{secretsManager:{aws_worker.secret_id}:{SECRET_KEY}}}"
        assert config["connection.password"] == reference
        add_grants(admin_client(), sink_connector_grants(name, name, dlq))
        aws_worker.wait_ready()
        aws_worker.resource.client().deploy(name, config)
        try:
            _wait_for_rows(aws_worker, pg, name, ids)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{aws_worker.log_tail()}") from None

        loaded = fetch_rows(pg, ids)
        assert {i: loaded[i]["amount_cents"] for i in ids} == {r["payment_id"]: r["amount_cents"] for r in rows}
        # The connector's config, as Connect answers it, holds the reference; no answer holds the value.
        client = aws_worker.resource.client()
        assert client.http.get(f"/connectors/{name}/config").json()["connection.password"] == reference
        secret = [ss.value_secret("WL_PG_SINK_PASSWORD", password)]
        assert ss.scan(secret, ss.connect_rest(client, name)) == []
        assert ss.scan(secret, ss.topic_records(admin_client_config(), aws_worker.config_topic)) == []
    finally:
        remove_connector(res, name, dlq)
        delete_topics(admin, [name])
        delete_rows(pg, prefix)



def test_a_connector_naming_another_secret_is_refused_and_never_sees_it(aws_worker, stack_resources):
    # On AWS the worker's role may read more than the sink's secret (its Kafka login's, for one);
    # the provider's allowlist admits the sink's only. Connect validates a config by resolving it,
    # so the refusal comes back on the PUT and the connector is never created.
    sm = _secrets_manager()
    other = aws_worker.secret_id.replace("/postgres", "/other")
    value = uuid.uuid4().hex
    sm.create_secret(Name=other, SecretString=json.dumps({SECRET_KEY: value}))
    try:
        name = f"{aws_worker.resource.connector_name}-other"
        config = sink_connector_config(aws_worker.res(stack_resources), env=aws_worker.render_env)
        config.update({"topics": name, "errors.deadletterqueue.topic.name": f"{name}.dlq",
                       "connection.username": f"${{secretsManager:{other}:{SECRET_KEY}}}"})
        aws_worker.wait_ready()
        client = aws_worker.resource.client()
        r = client.http.put(f"/connectors/{name}/config", json=config)
        assert r.status_code >= 400, r.text[:500]
        assert f"secret {other} is not allowed" in r.json()["message"], r.text[:500]
        assert value not in r.text
        assert client.http.get(f"/connectors/{name}/config").status_code == 404
    finally:
        sm.delete_secret(SecretId=other, ForceDeleteWithoutRecovery=True)
