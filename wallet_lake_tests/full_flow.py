"""One full flow of a generated landing hour, shared by the end-to-end test and the security
tests (the slowest setup of each; running it once saves a whole Dagster run in the suite):
the generator CLI lands an hour (plus one object with a line that is not JSON, so the run always
writes a quarantine), then `dagster asset materialize` runs every asset for the hour on the
project's instance (as scripts/run does), with the alert webhook configured (a secret the
security tests look for) and every process's command line sampled while it runs.

It records only what happened; each test makes its own checks against its own independent
expectation (e2e/expected.py recomputes the hour from the NDJSON lines read back here)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FullFlow:
    hour: datetime
    partition: str
    run_id: str
    raw_keys: list[str]
    lines_by_key: dict[str, list[str]]  # every NDJSON line landed for the hour, read back from the lake
    probe_key: str  # the object holding the one line that is not JSON (the generator's are the others)
    stack_dir: Path
    # Curated topic high watermarks just before and just after the run: its messages lie between.
    watermarks_before: dict[int, int]
    watermarks_after: dict[int, int]
    # repr=False: pytest prints fixtures in a failure report, and a leak would be in these.
    output: str = field(repr=False)
    written_keys: list[str] = field(default_factory=list)
    cmdlines: dict[bytes, str] = field(default_factory=dict, repr=False)  # every process seen during the run

    @property
    def lines(self) -> list[str]:
        return [line for k in self.raw_keys for line in self.lines_by_key[k]]


def free_hour(pg) -> datetime:
    """A landing hour in Feb-Sep 2026 whose day and neighbours hold no rows yet, so report
    totals of those days are this flow's alone."""
    rng = random.Random(time.time_ns())
    for _ in range(50):
        hour = datetime(2026, 2, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 240))
        with pg.connect() as conn:
            busy = conn.execute(
                "SELECT 1 FROM curated_payments WHERE dt BETWEEN %s AND %s LIMIT 1",
                (hour.date() - timedelta(days=1), hour.date() + timedelta(days=1)),
            ).fetchone()
        if not busy:
            return hour
    raise RuntimeError("no free landing day found in 50 tries")


def watermarks(kafka) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**kafka.client_config(), "group.id": "t-e2e-probe", "enable.auto.commit": False})
    try:
        parts = c.list_topics(kafka.topic, timeout=10).topics[kafka.topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(kafka.topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def run_full_flow(stack_resources, webhook_url: str, events_per_hour: int = 400) -> FullFlow:
    import dagster as dg

    from wallet_lake.contracts.landing import landing_prefix, manifest_key
    from wallet_lake.lake.manifests import read_manifest
    from wallet_lake_tests.security.secret_scan import CmdlineSampler

    hour = free_hour(stack_resources["postgres"])
    pk = hour.strftime("%Y-%m-%d-%H:00")
    seed = random.Random(time.time_ns()).randrange(1, 10**6)
    env = {**os.environ, "WL_ALERT_WEBHOOK_URL": webhook_url}
    # As the stack's own shells have it (stack/wallet-stack env): the pipeline's JSON log goes there.
    env.setdefault("WL_STACK_DIR", str(ROOT / ".stack"))
    gen = subprocess.run(
        [sys.executable, "-m", "wallet_lake.generator", "--start", f"{hour:%Y-%m-%dT%H}", "--end", f"{hour + timedelta(hours=1):%Y-%m-%dT%H}",
         "--seed", str(seed), "--events-per-hour", str(events_per_hour)],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    store = stack_resources["lake"].store()
    prefix = hour.strftime("raw/payments/dt=%Y/%m/%d/%H/")
    assert [o.key for o in store.list(prefix)], "generator wrote nothing"
    probe = f"{landing_prefix(hour)}security-probe-{seed}.ndjson"
    store.put_bytes(probe, b"this line is not json\n")
    raw_keys = [o.key for o in store.list(prefix)]
    lines = {k: [line for line in store.get_bytes(k).decode().split("\n") if line != ""] for k in raw_keys}

    before = watermarks(stack_resources["kafka"])
    with CmdlineSampler() as sampler:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "wallet_lake.definitions", "--select", "*", "--partition", pk],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )
    assert proc.returncode == 0, f"materialize failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    after = watermarks(stack_resources["kafka"])

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": pk}), limit=1)
    assert runs, f"no run recorded for partition {pk}"
    manifest = read_manifest(store, hour)
    written = raw_keys + manifest["curated_keys"] + manifest["quarantine_keys"] + [manifest_key(hour)]
    return FullFlow(hour, pk, runs[0].run_id, raw_keys, lines, probe, Path(env["WL_STACK_DIR"]), before, after,
                    proc.stdout + proc.stderr, written, sampler.seen)
