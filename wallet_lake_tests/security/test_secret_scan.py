"""A full run leaves no secret where people or other systems can read it.

The secrets (secret_scan.secrets_to_scan): every name in KNOWN_SECRETS (the Postgres role, the
SCRAM users, the Connect REST login, the alert webhook URL), the secret part of an API key created
and used against the running API in this session, and the stack's TLS private keys. The places:
service logs, compute logs, the run's event log, Connect's REST answers and internal topics,
every process's command line while the stack, the apps and the run are up, and the metadata of
every Parquet object the run wrote. One test per place; a failure names the secret and the place,
never the value."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest

from wallet_lake.contracts.asset_keys import PIPELINE, user_string
from wallet_lake.security.secrets import KNOWN_SECRETS
from wallet_lake_tests.security import secret_scan as ss
from wallet_lake_tests.security.conftest import APPS, ROOT, run as _run, stack_dir as _stack_dir

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="session")
def api_key(running_apps) -> tuple[str, str]:
    """(key_id, secret part) of a key created for the run with `python -m api.keys create`,
    presented to the running API in both accepted headers, then revoked and presented again."""
    from api.auth import _KEY

    out = _run([sys.executable, "-m", "api.keys", "create", "--all", "--label", "secret-scan"]).stdout
    key = re.search(r"^key:\s+(\S+)$", out, re.M).group(1)
    key_id, secret = _KEY.match(key).groups()
    url = f"http://127.0.0.1:{os.environ['WL_API_PORT']}/reports/daily-recon"
    with httpx.Client(timeout=30) as http:
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            resp = http.get(url, params={"date": "2026-01-01"}, headers=headers)
            assert resp.status_code == 200, resp.text[:500]
        _run([sys.executable, "-m", "api.keys", "revoke", key_id])
        # A revocation applies once the API's key cache entry expires (WL_API_KEY_CACHE_TTL_S).
        deadline = time.monotonic() + 60
        while http.get(url, params={"date": "2026-01-01"}, headers={"X-API-Key": key}).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key was still accepted after 60 s"
            time.sleep(0.5)
    return key_id, secret


@pytest.fixture(scope="session")
def run_secrets(alert_webhook, api_key) -> list[ss.Secret]:
    """Every secret of the run; the setup fails when one is missing or weak (ss.WeakSecret)."""
    tls_dir = Path(os.environ.get("WL_TLS_DIR", _stack_dir() / "tls"))
    found = ss.secrets_to_scan(os.environ, {api_key[0]: api_key[1]}, tls_dir)
    assert {s.name for s in found} >= {"TLS private key ca-key.pem", "TLS private key broker-key.pem", "TLS private key admin-key.pem"}
    return found


def _assert_clean(secrets, blobs) -> int:
    """Scans; fails naming each secret found and where. Returns how many blobs were read."""
    blobs = list(blobs)
    hits = ss.scan(secrets, blobs)
    assert not hits, "secrets found (name in place):\n" + "\n".join(hits)
    return len(blobs)


# ---------------------------------------------------------------- the scanner itself (no stack)


@pytest.mark.parametrize("value", ["short", "fifteen-chars!!", ""])
def test_a_missing_or_weak_secret_fails_the_scan_setup(value, tmp_path):
    env = {n: "x" * 32 for n in KNOWN_SECRETS} | {"WL_PG_PASSWORD": value}
    with pytest.raises(ss.WeakSecret, match="WL_PG_PASSWORD") as err:
        ss.secrets_to_scan(env, {}, tmp_path)
    assert not value or value not in str(err.value)


def test_scan_names_the_secret_and_place_in_plain_wrapped_escaped_and_base64_forms(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "ca-key.pem").write_bytes(key_pem)
    env = {n: os.urandom(16).hex() for n in KNOWN_SECRETS} | {"WL_ALERT_WEBHOOK_URL": "http://127.0.0.1:1/services/T1/B1/tok-" + os.urandom(8).hex()}
    secrets = ss.secrets_to_scan(env, {"0123456789abcdef": "A" * 43}, tmp_path)
    pg, rest = env["WL_PG_PASSWORD"], env["WL_CONNECT_REST_PASSWORD"]
    body_line = key_pem.splitlines()[2].decode()  # the second body line: private key material
    blobs = [
        ("plain", f"password={pg}".encode()),
        ("json", json.dumps({"pem": key_pem.decode()}).encode()),  # line breaks escaped as \n
        ("basic auth", b"Authorization: Basic " + base64.b64encode(f"wallet-lake-ops:{rest}".encode())),
        ("url-encoded", b"hook=" + quote(env["WL_ALERT_WEBHOOK_URL"], safe="").encode()),
        ("one key line", f"x{body_line}y".encode()),
        ("clean", b"nothing to see " + pg[:10].encode()),
    ]
    hits = ss.scan(secrets, blobs)
    assert hits == [
        "WL_PG_PASSWORD in plain", "TLS private key ca-key.pem in json", "WL_CONNECT_REST_PASSWORD in basic auth",
        "WL_ALERT_WEBHOOK_URL in url-encoded", "TLS private key ca-key.pem in one key line",
    ]
    assert not any(pg in h or rest in h for h in hits) and pg not in repr(secrets)


def test_every_generated_secret_and_kafka_user_is_a_known_secret():
    """A secret added to the stack's secrets file or a new Kafka user is scanned only via
    KNOWN_SECRETS: none may be missing there."""
    from wallet_lake.security.kafka_acls import USERS

    generated = {line.split("=", 1)[0] for line in (_stack_dir() / "secrets.env").read_text().splitlines() if "=" in line}
    assert generated and generated <= set(KNOWN_SECRETS)
    assert set(USERS.values()) <= set(KNOWN_SECRETS)


# ---------------------------------------------------------------- a full run, place by place


@pytest.mark.e2e
def test_no_secret_in_service_logs(full_flow, run_secrets, running_apps):
    log_dir = full_flow.stack_dir / "logs"
    names = {p.name for p in log_dir.iterdir()}
    assert {"postgres.log", "kafka.log", "connect.log", "moto.log", "pipeline.jsonl", "api.log",
            "dagster-code-server.log", "dagster-webserver.log", "dagster-daemon.log"} <= names
    _assert_clean(run_secrets, ss.files_under(log_dir, ".stack/logs"))


@pytest.mark.e2e
def test_no_secret_in_compute_logs_or_cli_output(full_flow, run_secrets):
    storage = Path(os.environ["DAGSTER_HOME"]) / "storage"
    assert any((storage / full_flow.run_id).rglob("*")), f"no compute logs of the run under {storage}"
    _assert_clean(run_secrets, [*ss.files_under(storage, "DAGSTER_HOME/storage"),
                                ("dagster asset materialize output", full_flow.output.encode())])


@pytest.mark.e2e
def test_no_secret_in_the_runs_event_log(full_flow, run_secrets):
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        blobs = list(ss.run_events(instance, full_flow.run_id))
        materialized = {r.dagster_event.asset_key.to_user_string() for r in instance.all_logs(full_flow.run_id)
                        if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
    assert materialized >= {user_string(p) for p in PIPELINE}
    _assert_clean(run_secrets, blobs)


@pytest.mark.e2e
def test_no_secret_in_connect_rest_answers(full_flow, run_secrets, stack_resources):
    connect = stack_resources["connect"]
    client = connect.client()
    assert "${env:WL_PG_SINK_PASSWORD}" in client.http.get(f"/connectors/{connect.connector_name}/config").text
    assert _assert_clean(run_secrets, ss.connect_rest(client, connect.connector_name)) >= 6


@pytest.mark.e2e
def test_no_secret_in_connect_config_and_status_topics(full_flow, run_secrets):
    from wallet_lake.security.kafka_acls import CONNECT_INTERNAL_PREFIX, admin_client_config

    # Connect's internal topics are the worker's alone: read them as the provisioning admin.
    for topic in ("configs", "status"):
        _assert_clean(run_secrets, ss.topic_records(admin_client_config(), f"{CONNECT_INTERNAL_PREFIX}{topic}"))


@pytest.mark.e2e
def test_no_secret_in_any_process_command_line(full_flow, run_secrets, running_apps):
    now = ss.process_cmdlines()
    seen = "\n".join(c.decode(errors="replace") for c in now)
    stack, env = full_flow.stack_dir, os.environ
    # This clone's services and apps, by the arguments stack/wallet-stack starts them with.
    for proc in (f"-D {stack}/postgres/data", f"kafka.Kafka {stack}/kafka/server.properties",
                 f"ConnectDistributed {stack}/connect/worker.properties", f"moto_server -H 127.0.0.1 -p {urlparse(env['WL_S3_ENDPOINT_URL']).port}",
                 f"code-server start -m wallet_lake.definitions --location-name wallet_lake -d {ROOT}",
                 f"dagster-webserver -h 127.0.0.1 -p {env['WL_DAGSTER_PORT']}", f"dagster-daemon run -w {ROOT}/workspace.yaml",
                 f"api.main:app --host 127.0.0.1 --port {env['WL_API_PORT']}"):
        assert proc in seen, f"no process with {proc!r} in its command line: the scan would not cover it"
    assert any(b"asset materialize" in c for c in full_flow.cmdlines), "the run's own process was not sampled"
    _assert_clean(run_secrets, ss.cmdline_blobs({**full_flow.cmdlines, **now}))


@pytest.mark.e2e
def test_no_secret_in_parquet_metadata_of_the_run(full_flow, run_secrets, stack_resources):
    store = stack_resources["lake"].store()
    objects = {k: store.get_bytes(k) for k in full_flow.written_keys}
    parquet = {k: v for k, v in objects.items() if ss.is_parquet(v)}
    # Landing and raw objects are NDJSON; the run's Parquet is its curated and quarantine output.
    assert any(k.startswith("curated/") for k in parquet) and any(k.startswith("quarantine/") for k in parquet), sorted(objects)
    _assert_clean(run_secrets, [b for k, v in sorted(parquet.items()) for b in ss.parquet_metadata(k, v)])

