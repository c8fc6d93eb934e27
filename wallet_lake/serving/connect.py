"""Kafka Connect REST: deploy the Postgres sink connector idempotently, read its state, and
wait until the sink's consumer group has committed past given offsets."""

from __future__ import annotations

import json
import os
import string
import time
from pathlib import Path

import httpx

CONNECT_DIR = Path(os.environ.get("WL_CONNECT_CONFIG_DIR", Path(__file__).resolve().parents[2] / "connect"))
SINK_CONFIG_FILE = "postgres-sink.debezium.json"


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


class ConnectClient:
    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def deploy(self, name: str, config: dict) -> str:
        """PUT the config (create or update); returns "created", "updated" or "unchanged"."""
        current = self.http.get(f"/connectors/{name}/config")
        if current.status_code == 200:
            live = {k: v for k, v in current.json().items() if k != "name"}
            if live == config:
                return "unchanged"
        resp = self.http.put(f"/connectors/{name}/config", json=config)
        if resp.status_code >= 400:
            raise RuntimeError(f"Connect rejected connector {name}: HTTP {resp.status_code} {resp.text[:500]}")
        return "created" if resp.status_code == 201 else "updated"

    def status(self, name: str) -> dict:
        resp = self.http.get(f"/connectors/{name}/status")
        resp.raise_for_status()
        return resp.json()

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
                failed = [t for t in tasks if t["state"] == "FAILED"]
                if failed:
                    raise RuntimeError(f"connector {name} task failed: {failed[0].get('trace', '')[:1000]}")
            time.sleep(1)
        raise TimeoutError(f"connector {name} not RUNNING after {timeout}s at {self.url}: {last}")


def sink_group_id(connector_name: str) -> str:
    """Consumer group Kafka Connect uses for a sink connector."""
    return f"connect-{connector_name}"


def committed_offsets(bootstrap_servers: str, group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Committed offsets of a consumer group (without joining it)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in partitions], timeout=15)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def wait_for_sink(bootstrap_servers: str, group_id: str, topic: str, end_offsets: dict[int, int], timeout: float, poll: float = 1.0) -> dict[int, int]:
    """Block until the sink's committed offset of every partition reaches end_offsets.

    Connect commits offsets after the rows are written to Postgres, so passing them means the
    published records are in the table."""
    deadline = time.monotonic() + timeout
    committed: dict[int, int] = {}
    while True:
        committed = committed_offsets(bootstrap_servers, group_id, topic, list(end_offsets))
        behind = {p: (committed.get(p, -1), o) for p, o in end_offsets.items() if committed.get(p, -1) < o}
        if not behind:
            return committed
        if time.monotonic() >= deadline:
            raise TimeoutError(f"sink group {group_id} has not caught up on {topic} after {timeout}s: partition -> (committed, needed) {behind}")
        time.sleep(poll)
