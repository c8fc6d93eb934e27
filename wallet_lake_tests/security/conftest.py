"""The security tests' session setup. The full flow they inspect (the `full_flow` fixture,
wallet_lake_tests/full_flow.py: a generated landing hour materialized through every asset by
`dagster asset materialize`, with every secret of the project configured, the alert webhook
included) is shared with the end-to-end test. The encryption test lists the objects it wrote;
the secret scan (test_secret_scan.py) searches what it left behind and the command lines of the
processes it started."""

from __future__ import annotations

import os

import pytest


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
