"""One full flow shared by the security tests: a generated landing hour materialized through
every asset by `dagster asset materialize` on the project's instance (as the e2e test and
scripts/run do), with every secret of the project configured (alert_webhook). The encryption
test lists the objects it wrote; the secret scan (test_secret_scan.py) searches what it left
behind and the command lines of the processes it started."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from wallet_lake_tests.ops.webhook import webhook_receiver
from wallet_lake_tests.security.secret_scan import CmdlineSampler

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FullFlow:
    hour: datetime
    partition: str
    run_id: str
    raw_keys: list[str]
    stack_dir: Path
    # repr=False: pytest prints fixtures in a failure report, and a leak would be in these.
    output: str = field(repr=False)
    written_keys: list[str] = field(default_factory=list)
    cmdlines: dict[bytes, str] = field(default_factory=dict, repr=False)  # every process seen during the run


def _free_hour(pg) -> datetime:
    """A landing hour in 2026 whose day holds no rows yet (this test's data stays its own)."""
    rng = random.Random(time.time_ns())
    for _ in range(50):
        hour = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 300))
        with pg.connect() as conn:
            busy = conn.execute("SELECT 1 FROM curated_payments WHERE dt = %s LIMIT 1", (hour.date(),)).fetchone()
        if not busy:
            return hour
    raise RuntimeError("no free landing day found in 50 tries")


@pytest.fixture(scope="session")
def alert_webhook():
    """The alert webhook of the session's runs: a loopback receiver at a random token path, as
    secret as a Slack webhook URL, in WL_ALERT_WEBHOOK_URL of every process the session starts.
    Yields what it received."""
    with webhook_receiver() as received:
        base = received.url.split("/services/")[0]
        url = f"{base}/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/{secrets.token_urlsafe(24)}"
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
def full_flow(stack_resources, alert_webhook) -> FullFlow:
    import dagster as dg

    from wallet_lake.lake.manifests import read_manifest

    hour = _free_hour(stack_resources["postgres"])
    pk = hour.strftime("%Y-%m-%d-%H:00")
    seed = random.Random(time.time_ns()).randrange(1, 10**6)
    env = dict(os.environ)
    # As the stack's own shells have it (stack/wallet-stack env): the pipeline's JSON log goes there.
    env.setdefault("WL_STACK_DIR", str(ROOT / ".stack"))
    gen = subprocess.run(
        [sys.executable, "-m", "wallet_lake.generator", "--start", f"{hour:%Y-%m-%dT%H}", "--end", f"{hour + timedelta(hours=1):%Y-%m-%dT%H}",
         "--seed", str(seed), "--events-per-hour", "200"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    # One more landing object with a line that is not JSON, so the run always writes a quarantine.
    from wallet_lake.contracts.landing import landing_prefix

    stack_resources["lake"].store().put_bytes(f"{landing_prefix(hour)}security-probe-{seed}.ndjson", b"this line is not json\n")
    with CmdlineSampler() as sampler:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "wallet_lake.definitions", "--select", "*", "--partition", pk],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )
    assert proc.returncode == 0, f"materialize failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": pk}), limit=1)
    assert runs, f"no run recorded for partition {pk}"
    store = stack_resources["lake"].store()
    raw_keys = [o.key for o in store.list(hour.strftime("raw/payments/dt=%Y/%m/%d/%H/"))]
    manifest = read_manifest(store, hour)
    from wallet_lake.contracts.landing import manifest_key

    written = raw_keys + manifest["curated_keys"] + manifest["quarantine_keys"] + [manifest_key(hour)]
    return FullFlow(hour, pk, runs[0].run_id, raw_keys, Path(env["WL_STACK_DIR"]), proc.stdout + proc.stderr, written, sampler.seen)
