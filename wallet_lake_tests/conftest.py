"""Shared test setup: the local stack's environment.

Tests talk to the real stack (stack/wallet-stack up). Variables already set in the environment
win; otherwise they come from stack/local.env and the clone's generated .stack/secrets.env, the
same files the stack script reads, so `pytest` works from a plain shell too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_env_file(path: Path) -> None:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key, value)


_load_env_file(ROOT / "stack" / "local.env")
_load_env_file(Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack")) / "secrets.env")
os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))


@pytest.fixture(scope="session")
def stack_resources():
    """The pipeline's resources built from the environment, as the CLI tools build them, except
    that Kafka is reached as the `tests` principal (security/kafka_acls.py): the suite publishes
    and reads back the curated topic and owns its throwaway t-* topics and groups, which the
    pipeline's own `producer` may not. Runs of the pipeline (Dagster, scripts) stay `producer`.
    Likewise Postgres is reached as the schema's owner (fixtures delete and insert rows the
    pipeline's role may not); Dagster's own runs use the pipeline role (serving/pg_roles.py)."""
    from wallet_lake.resources import resources_from_os_env, with_changes
    from wallet_lake.serving.pg_connect import login

    res = resources_from_os_env()
    user, password = login("owner")
    return {**res, "kafka": res["kafka"].as_principal("tests"), "postgres": with_changes(res["postgres"], user=user, password=password)}


@pytest.fixture(scope="session")
def alert_webhook_receiver():
    """A loopback receiver for the alert webhook at a random token path, as secret as a Slack
    webhook URL: (url, list of what it received). Nothing here puts it in os.environ (the
    security tests' alert_webhook does, for the apps they start)."""
    import secrets

    from wallet_lake_tests.ops.webhook import webhook_receiver

    with webhook_receiver() as received:
        base = received.url.split("/services/")[0]
        url = f"{base}/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/{secrets.token_urlsafe(24)}"
        yield url, received


@pytest.fixture(scope="session")
def full_flow(stack_resources, alert_webhook_receiver):
    """One generated hour through every asset by `dagster asset materialize` (full_flow.py),
    shared by e2e/test_hour_through_every_stage.py and the security tests."""
    from wallet_lake_tests.full_flow import run_full_flow

    return run_full_flow(stack_resources, alert_webhook_receiver[0])
