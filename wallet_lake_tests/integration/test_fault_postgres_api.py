"""The reports API across a Postgres crash (`pg_ctl stop -m immediate`, recovered the operator's
way, `stack/wallet-stack up`): while Postgres is down every report is a 503 problem with
Retry-After and /readyz says not ready, never a 500; once Postgres is back the same API process
serves again from new pooled connections, without a restart.

Stops the stack's Postgres (other tests on the stack see an outage): run it on a stack of your
own (see README, Tests on the real stack); the teardown leaves the stack healthy even when the
test fails."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.keys import create_key
from api.main import create_app
from api.problems import SERVICE_UNAVAILABLE
from api.settings import load_settings
from wallet_lake.serving import pg_connect
from wallet_lake_tests.integration.sink_support import ensure_sink_running, stack_healthy, start_stack, stop_postgres_immediately
from wallet_lake_tests.polling import deadline_poll

pytestmark = [pytest.mark.integration, pytest.mark.faults]

REPORT = ("/reports/daily-recon", {"date": "2026-11-24"})


@pytest.fixture
def key(stack_resources):
    with pg_connect.connect("owner", autocommit=True) as conn:
        key_id, key = create_key(conn, merchant_ids=None, label="wallet_lake_tests.fault_postgres_api")
    try:
        yield key
    finally:  # the stack healthy again the operator's way, pass or fail, as every fault test leaves it
        if not stack_healthy(stack_resources):
            start_stack()
        ensure_sink_running(stack_resources)
    with pg_connect.connect("owner", autocommit=True) as conn:
        conn.execute("DELETE FROM public.api_keys WHERE key_id = %s", [key_id])


def test_reports_are_503s_while_postgres_is_down_and_served_again_after(key) -> None:
    # The key stays verified across the outage (TTL 300 s): the reports' own statements meet it.
    settings = load_settings().model_copy(update={
        "api_key_cache_ttl_s": 300, "pg_pool_min_size": 2, "pg_pool_timeout_s": 1.0, "api_readyz_timeout_s": 1.0,
        "api_rate_limit_client_per_s": 0, "api_rate_limit_key_per_s": 0})
    with TestClient(create_app(settings)) as client:
        def report():
            return client.get(REPORT[0], params=REPORT[1], headers={"X-API-Key": key})

        assert report().status_code == 200
        try:
            stop_postgres_immediately()
            during = [report() for _ in range(5)]
            ready_during = client.get("/readyz")
        finally:
            start_stack()
        for r in during:
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5" and r.json()["type"] == SERVICE_UNAVAILABLE
        assert ready_during.status_code == 503
        deadline_poll(lambda: report().status_code == 200, "a report served again by the same API process", timeout=60)
        assert client.get("/readyz").status_code == 200
