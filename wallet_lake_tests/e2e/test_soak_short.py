"""The short soak (bench/soak.py --short): the daemon-driven flow with a live writer (open hour,
late files, replays, refunds before approvals), a UI backfill and three SIGKILLs, checked
independently: nothing lost, doubled or regressed; ledger, sensor ticks, API and reports clean.

It kills services of the stack it runs on: run it on a stack of its own (CI's), never beside
other people's tests. Whatever happens, the services are brought back with `stack/wallet-stack
up` and the apps it started are stopped again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wallet_lake_tests.soak import stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parents[2]
ZERO = ("lost_rows", "duplicated_rows", "regressed_rows", "ledger_mismatches", "sensor_tick_errors", "api_5xx",
        "field_mismatches", "accounting_mismatches", "report_mismatches")


def _summary(result: dict) -> str:
    d = result.get("details", {})
    check = d.get("check") or {}
    return json.dumps({
        "error": result.get("error"), **{k: result.get(k) for k in ZERO}, "kills": result.get("kills"),
        "notes": d.get("notes"), "staleness": d.get("report_staleness"), "operator": d.get("operator_actions"),
        "tick_errors": d.get("sensor_tick_error_examples"), "api_5xx": d.get("api_5xx_by_route_status"),
        "lost": check.get("lost_breakdown"), "postgres": check.get("postgres"), "ledger": check.get("ledger"),
        "reports": check.get("reports"),
    }, indent=1, default=str)[:12000]


def _services_healthy() -> bool:
    try:
        return stack.postgres_up() and stack.broker_up() and stack.connect_up()
    except Exception:  # noqa: BLE001 - a probe that cannot even run means "bring the stack up"
        return False


def test_short_soak_loses_nothing_and_every_stage_agrees(tmp_path):
    out = tmp_path / "soak-short.json"
    apps = ("dagster-code-server", "dagster-webserver", "dagster-daemon", "api")
    apps_were_running = all(stack.pid_of(a) is not None for a in apps)
    try:
        proc = subprocess.run([sys.executable, "bench/soak.py", "--short", "--out", str(out)], cwd=ROOT,
                              env=dict(os.environ), capture_output=True, text=True, timeout=1400)
    finally:
        # The soak restores the stack itself; this covers a soak that crashed or timed out (a
        # healthy stack is left as the soak left it, so the last assertion checks the soak's own restore).
        if not _services_healthy():
            subprocess.run(["bash", "stack/wallet-stack", "up"], cwd=ROOT, capture_output=True, timeout=600)
        if not apps_were_running:
            subprocess.run(["bash", "stack/wallet-stack", "apps-down"], cwd=ROOT, capture_output=True, timeout=300)

    assert out.is_file(), f"the soak wrote no results (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    summary = _summary(result)
    assert result["error"] is None, summary
    assert result["kills_total"] == result["options"]["kills"], summary
    assert result["landing_hours"] >= result["options"]["hours"], summary
    assert {k: result[k] for k in ZERO} == dict.fromkeys(ZERO, 0), summary
    # After every recovery the reports agreed with the table again (within the soak's deadline).
    assert result["details"]["staleness_timeouts"] == 0, summary
    assert all(e["healthy_after"] for e in result["details"]["kill_events"]), summary
    assert stack.postgres_up() and stack.broker_up() and stack.connect_up(), "the stack is not healthy after the soak"
