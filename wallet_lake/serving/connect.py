"""Kafka Connect REST and the sink's consumer group: deploy a connector idempotently, read and
restart its connector/tasks, measure its lag, and wait until it has committed past given offsets."""

from __future__ import annotations

import json
import string
import time
from pathlib import Path
from typing import Callable

import httpx

from wallet_lake.settings import OpsSettings, load

CONNECT_DIR = Path(load(OpsSettings).connect_config_dir or Path(__file__).resolve().parents[2] / "connect")
# The sink the project runs: its own COPY connector (connect/copy-sink).
SINK_CONFIG_FILE = "postgres-sink.copy.json"
# The same sink on Debezium's JDBC sink connector (bundled in the local stack; run by a test).
DEBEZIUM_SINK_CONFIG_FILE = "postgres-sink.debezium.json"
# The same sink mapped to Confluent's JDBC sink, for Confluent Platform users (not run here).
CONFLUENT_SINK_CONFIG_FILE = "postgres-sink.confluent.json"


def render_connector_config(variables: dict[str, str], path: Path | None = None) -> dict:
    """The connector JSON with ${WL_*} filled in. ${env:...} references stay for the worker's
    config provider to resolve, so the password never appears in the connector config."""
    text = (path or CONNECT_DIR / SINK_CONFIG_FILE).read_text()
    rendered = string.Template(text).safe_substitute(variables)
    config = json.loads(rendered)
    unresolved = [k for k, v in config.items() if "${WL_" in v]
    if unresolved:
        raise ValueError(f"connector config has unresolved variables in {unresolved}")
    return config


class ConnectError(RuntimeError):
    pass


class ConnectClient:
    def __init__(self, url: str, timeout: float = 30.0, auth: tuple[str, str] | None = None) -> None:
        """`auth`: (user, password) of the REST API's basic authentication; ConnectResource.client()
        fills it from the settings."""
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, auth=auth)

    def _send(self, method: str, path: str, rebalance_timeout: float = 60.0, **kwargs) -> httpx.Response:
        """A request, retried while the worker group rebalances (Connect answers 409 then, e.g.
        right after any connector was created or deleted on the cluster, and sometimes 500
        "... a rebalance is expected" right after a config update)."""
        deadline = time.monotonic() + rebalance_timeout
        while True:
            resp = self.http.request(method, path, **kwargs)
            rebalancing = resp.status_code == 409 or (resp.status_code == 500 and "rebalance" in resp.text.lower())
            if not rebalancing or time.monotonic() > deadline:
                return resp
            time.sleep(0.5)

    def _check(self, resp: httpx.Response, what: str) -> httpx.Response:
        if resp.status_code >= 400:
            raise ConnectError(f"Connect at {self.url} refused to {what}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp

    def deploy(self, name: str, config: dict) -> str:
        """PUT the config (create or update); returns "created", "updated" or "unchanged".

        Unchanged configs are not PUT again: a PUT restarts the connector's tasks."""
        current = self._send("GET", f"/connectors/{name}/config")
        if current.status_code == 200:
            live = {k: v for k, v in current.json().items() if k != "name"}
            if live == {k: v for k, v in config.items() if k != "name"}:
                return "unchanged"
        resp = self._check(self._send("PUT", f"/connectors/{name}/config", json=config), f"deploy connector {name}")
        self._wait_config_live(name, config)
        return "created" if resp.status_code == 201 else "updated"

    def _wait_config_live(self, name: str, config: dict, timeout: float = 30.0) -> None:
        """A PUT is acknowledged before the worker has read the new config back from its config
        topic; return only once GET shows it, so callers never act on the old config."""
        want = {k: v for k, v in config.items() if k != "name"}
        deadline = time.monotonic() + timeout
        while True:
            resp = self._send("GET", f"/connectors/{name}/config")
            if resp.status_code == 200 and {k: v for k, v in resp.json().items() if k != "name"} == want:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"connector {name}: the deployed config is not live at {self.url} after {timeout}s")
            time.sleep(0.2)

    def config(self, name: str) -> dict:
        return self._check(self._send("GET", f"/connectors/{name}/config"), f"read the config of {name}").json()

    def status(self, name: str) -> dict:
        return self._check(self.http.get(f"/connectors/{name}/status"), f"read the status of {name}").json()

    def status_or_none(self, name: str) -> dict | None:
        """The status document, or None when no connector has this name."""
        resp = self.http.get(f"/connectors/{name}/status")
        if resp.status_code == 404:
            return None
        return self._check(resp, f"read the status of {name}").json()

    def restart_failed(self, name: str) -> dict:
        """Restart the connector instance and tasks of `name` that are FAILED (KIP-745); they
        are marked RESTARTING at once, so a status read afterwards never shows the old failure."""
        resp = self._check(
            self._send("POST", f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"}),
            f"restart the failed instances of {name}",
        )
        return resp.json() if resp.content else {}

    def restart_connector(self, name: str) -> None:
        self._check(self._send("POST", f"/connectors/{name}/restart"), f"restart connector {name}")

    def restart_task(self, name: str, task_id: int) -> None:
        self._check(self._send("POST", f"/connectors/{name}/tasks/{task_id}/restart"), f"restart task {task_id} of {name}")

    def delete(self, name: str) -> bool:
        """Delete a connector; False when it did not exist."""
        resp = self._send("DELETE", f"/connectors/{name}")
        if resp.status_code == 404:
            return False
        self._check(resp, f"delete connector {name}")
        return True

    def wait_running(self, name: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        last: dict = {}
        while time.monotonic() < deadline:
            resp = self.http.get(f"/connectors/{name}/status")
            if resp.status_code == 200:
                last = resp.json()
                tasks = last.get("tasks", [])
                if last["connector"]["state"] == "RUNNING" and tasks and all(t["state"] == "RUNNING" for t in tasks):
                    return last
                raise_if_failed(last)
            time.sleep(1)
        raise TimeoutError(f"connector {name} not RUNNING after {timeout}s at {self.url}: {last}")


def raise_if_failed(status: dict) -> None:
    """Raise ConnectError naming the first FAILED connector/task of a status document."""
    name = status.get("name", "?")
    if status.get("connector", {}).get("state") == "FAILED":
        raise ConnectError(f"connector {name} FAILED: {status['connector'].get('trace', '')[:1000]}")
    for t in status.get("tasks", []):
        if t["state"] == "FAILED":
            raise ConnectError(f"connector {name} task {t['id']} FAILED: {t.get('trace', '')[:1000]}")


def client_conf(kafka: dict | str) -> dict:
    """librdkafka connection settings: a client config dict (KafkaResource.client_config(), with
    security settings) or a bare bootstrap servers string."""
    return {"bootstrap.servers": kafka} if isinstance(kafka, str) else dict(kafka)


def sink_group_id(connector_name: str) -> str:
    """Consumer group Kafka Connect uses for a sink connector."""
    return f"connect-{connector_name}"


def _offsets_reader(kafka: dict | str, group_id: str):
    """A consumer that reads `group_id`'s committed offsets without joining the group."""
    from confluent_kafka import Consumer

    return Consumer({**client_conf(kafka), "group.id": group_id, "enable.auto.commit": False})


def _committed(consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    tps = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=15)
    return {tp.partition: tp.offset for tp in tps}


def committed_offsets(kafka: dict | str, group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Committed offsets of a consumer group (without joining it); -1001 when none."""
    c = _offsets_reader(kafka, group_id)
    try:
        return _committed(c, topic, partitions)
    finally:
        c.close()


def end_offsets(kafka: dict | str, topic: str) -> dict[int, int]:
    """High watermark (next offset) of every partition of a topic."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**client_conf(kafka), "group.id": "wallet-lake-offset-probe", "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=15).topics[topic]
        if md.error is not None:
            raise ConnectError(f"topic {topic}: {md.error}")
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in md.partitions}
    finally:
        c.close()


def lag(ends: dict[int, int], committed: dict[int, int]) -> dict[int, int]:
    """Messages not yet committed per partition (a partition never committed lags by its end
    offset: the sink reads from the earliest offset). Pure."""
    return {p: max(0, e - max(committed.get(p, 0), 0)) for p, e in ends.items()}


def sink_lag(kafka: dict | str, group_id: str, topic: str) -> dict[int, int]:
    ends = end_offsets(kafka, topic)
    return lag(ends, committed_offsets(kafka, group_id, topic, list(ends)))


def wait_for_sink(
    kafka: dict | str,
    group_id: str,
    topic: str,
    end_offsets: dict[int, int],
    timeout: float,
    poll: float = 0.25,
    check: Callable[[], None] | None = None,
    check_every: float = 2.0,
) -> dict[int, int]:
    """Block until the sink's committed offset of every partition reaches end_offsets.

    Connect commits a sink's offsets only after its task flushed the records to Postgres, so
    passing them means the published records are in the table. `check` runs every `check_every`
    seconds (e.g. raise when the connector's task FAILED) so a broken sink fails fast instead of
    timing out.

    One consumer reads the offsets for the whole wait: a new client per round paid a TLS
    handshake and a SCRAM login (~60 ms of CPU, 6 % of a core at one round a second) on the
    2 cores the sink itself needs; reused, a round is one request, so it can poll often."""
    deadline = time.monotonic() + timeout
    committed: dict[int, int] = {}
    checked = float("-inf")
    reader = _offsets_reader(kafka, group_id)
    try:
        while True:
            committed = _committed(reader, topic, list(end_offsets))
            behind = {p: (committed.get(p, -1), o) for p, o in end_offsets.items() if committed.get(p, -1) < o}
            if not behind:
                return committed
            now = time.monotonic()
            if check is not None and now - checked >= check_every:
                check()
                checked = now
            if now >= deadline:
                raise TimeoutError(f"sink group {group_id} has not caught up on {topic} after {timeout}s: partition -> (committed, needed) {behind}")
            time.sleep(poll)
    finally:
        reader.close()
