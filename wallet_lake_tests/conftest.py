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
