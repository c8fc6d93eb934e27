"""API keys in Postgres: the CLI creates (printing the key once), lists and revokes them; only a
hash is stored; the API confines each key to its merchants."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from .conftest import KeyedClient, payment

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.keys", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True)


def test_cli_creates_lists_and_revokes(pg_admin: psycopg.Connection, new_merchant) -> None:
    m1, m2 = new_merchant(), new_merchant()
    created = cli("create", "--merchants", f"{m2},{m1}", "--label", "cli-test")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.strip().splitlines())
    key_id, key = fields["key_id"].strip(), fields["key"].strip()
    try:
        assert key.startswith(f"wlk_{key_id}_")
        assert "cannot be shown again" in created.stderr and key not in created.stderr
        row = pg_admin.execute("SELECT * FROM api_keys WHERE key_id = %s", [key_id]).fetchone()
        # Only the hash: the key (or its secret part) appears in no column.
        assert hashlib.sha256(key.encode()).digest() in row
        secret = key.split("_", 2)[2]
        assert all(secret not in str(v) and key not in str(v) for v in row)

        listed = cli("list", "--json")
        assert listed.returncode == 0 and key not in listed.stdout and secret not in listed.stdout
        mine = [k for k in json.loads(listed.stdout) if k["key_id"] == key_id]
        assert mine == [
            {"key_id": key_id, "scope": sorted([m1, m2]), "label": "cli-test", "created_at": mine[0]["created_at"], "revoked_at": None}
        ]

        assert cli("revoke", key_id).returncode == 0
        assert cli("revoke", key_id).returncode == 1  # already revoked
        assert pg_admin.execute("SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_id = %s", [key_id]).fetchone() == (True,)
    finally:
        pg_admin.execute("DELETE FROM api_keys WHERE key_id = %s", [key_id])


def test_cli_needs_a_scope() -> None:
    assert cli("create").returncode == 2
    assert cli("create", "--all", "--merchants", "m1").returncode == 2
    assert cli("create", "--merchants", " , ").returncode == 2


def test_scoped_key_confined_to_its_merchants(live_http: TestClient, api_key, payments, new_merchant) -> None:
    mine, theirs = new_merchant(), new_merchant()
    day = "2026-11-24"
    payments([payment(mine, currency="EUR", status="APPROVED", amount_cents=1, created_at=dt.datetime(2026, 11, 24, 3, tzinfo=dt.timezone.utc))])
    key = api_key([mine])
    c = KeyedClient(live_http, {"X-API-Key": key})
    assert c.get("/reports/daily-recon", params={"date": day, "merchant": mine}).json()["totals"] == [
        {"currency": "EUR", "count": 1, "amount_cents": 1}
    ]
    assert c.get("/reports/daily-recon", params={"date": day, "merchant": theirs}).status_code == 403
    assert c.get("/reports/daily-recon", params={"date": day}).status_code == 403
    assert c.get("/reports/declines", params={"from": day, "to": day, "merchant": theirs}).status_code == 403
    assert c.get("/reports/refund-rate", params={"from": day, "to": day, "merchant": mine}).status_code == 200
    bearer = KeyedClient(live_http, {"Authorization": f"Bearer {key}"})
    assert bearer.get("/reports/daily-recon", params={"date": day, "merchant": mine}).status_code == 200


def test_revoked_key_is_401(live_http: TestClient, pg_admin: psycopg.Connection, api_key, new_merchant) -> None:
    from api.auth import key_id_of
    from api.keys import revoke_key

    merchant = new_merchant()
    key = api_key([merchant])
    params = {"date": "2026-11-24", "merchant": merchant}
    c = KeyedClient(live_http, {"X-API-Key": key})  # the live app caches no key: revocation applies at once
    assert c.get("/reports/daily-recon", params=params).status_code == 200
    assert revoke_key(pg_admin, key_id_of(key))
    r = c.get("/reports/daily-recon", params=params)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_wrong_secret_for_a_real_key_id_is_401(live_http: TestClient, api_key) -> None:
    key = api_key()
    forged = key[: len("wlk_") + 16 + 1] + ("A" * 43)
    r = live_http.get("/reports/daily-recon", params={"date": "2026-11-24"}, headers={"X-API-Key": forged})
    assert r.status_code == 401
