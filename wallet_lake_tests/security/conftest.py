"""The security tests' session setup. The full flow they inspect (the `full_flow` fixture,
wallet_lake_tests/full_flow.py: a generated landing hour materialized through every asset by
`dagster asset materialize`, with every secret of the project configured, the alert webhook
included) is shared with the end-to-end test. The encryption test lists the objects it wrote;
the secret scan (test_secret_scan.py) searches what it left behind and the command lines of the
processes it started. The apps (`running_apps`) are shared by the secret scan and
test_stack_processes.py (the apps' signals and temp folder), which stops and starts them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("dagster-code-server", "dagster-webserver", "dagster-daemon", "api")


def stack_dir() -> Path:
    return Path(os.environ.get("WL_STACK_DIR", ROOT / ".stack"))


def run(args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, env=os.environ, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args[:4])} failed:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def alert_webhook(alert_webhook_receiver):
    """The alert webhook of the session's runs (the one the full flow ran with) in
    WL_ALERT_WEBHOOK_URL of every process started from here on. Yields what it received."""
    url, received = alert_webhook_receiver
    before = os.environ.get("WL_ALERT_WEBHOOK_URL")
    os.environ["WL_ALERT_WEBHOOK_URL"] = url
    try:
        yield received
    finally:
        if before is None:
            os.environ.pop("WL_ALERT_WEBHOOK_URL", None)
        else:
            os.environ["WL_ALERT_WEBHOOK_URL"] = before


@pytest.fixture(scope="session")
def running_apps(alert_webhook):
    """Dagster webserver, daemon and the reports API (stack/wallet-stack apps) with the session's
    secrets; stopped afterwards when this session started them."""
    pids = stack_dir() / "pids"
    ours = not any((pids / f"{name}.pid").is_file() for name in APPS)
    run(["bash", "stack/wallet-stack", "apps"])
    yield
    if ours:
        run(["bash", "stack/wallet-stack", "apps-down"])
