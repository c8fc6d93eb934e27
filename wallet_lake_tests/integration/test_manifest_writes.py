"""Manifest writes that can never lose a run's work, on the stack's S3 (moto) with real Spark:

- a manifest write with a stale ETag is refused (412) on S3 and on a folder lake, and the newer
  manifest stays; concurrent read-modify-writes on a folder lake lose no update;
- a run whose hour was curated by another run between its announce and its swap fails with
  ManifestConflict, removes its own files, and the other run's hour stays whole;
- a run killed (SIGKILL) between its manifest swap and its delete leaves the superseded files
  listed in the manifest; the sweep CLI deletes them and every current file is still there;
- a run that fails after its swap leaves them listed too, and the next run of the hour removes them."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from wallet_lake.contracts.landing import QUARANTINE_PREFIX, hour_token, landing_prefix, manifest_key
from wallet_lake.lake import curation_run as cr
from wallet_lake.lake import manifests
from wallet_lake.lake.reader import read_curated_hour
from wallet_lake.lake.store import LocalLakeStore, S3LakeStore

pytestmark = pytest.mark.integration

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    from wallet_lake.spark import spark_config

    builder = SparkSession.builder
    for k, v in {**spark_config(), "spark.master": "local[1]", "spark.sql.shuffle.partitions": "2",
                 "spark.ui.showConsoleProgress": "false"}.items():
        builder = builder.config(k, v)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture
def s3(stack_resources) -> S3LakeStore:
    return stack_resources["lake"].store()


def hour_files(store, hour: datetime) -> set[str]:
    """Every curated and quarantine object of the hour's runs, found by listing (not manifests)."""
    token = hour_token(hour)
    curated = {o.key for d in (-1, 0, 1) for o in store.list(f"curated/payments/dt={(hour + timedelta(days=d)):%Y-%m-%d}/")
               if f"/lh-{token}-" in o.key}
    return curated | {o.key for o in store.list(f"{QUARANTINE_PREFIX}landing_hour={token}/")}


@pytest.fixture
def hour(s3):
    """A random 2024 landing hour with six payments and one bad line; everything removed afterwards."""
    rng = random.Random(time.time_ns())
    h = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 365))
    prefix = f"mw{rng.randrange(10**9)}"
    lines = [json.dumps({"payment_id": f"{prefix}-{i}", "merchant_id": f"m-{i % 2}", "amount_cents": 100 + i, "currency": "EUR",
                         "status": "APPROVED", "created_at": f"{(h + timedelta(minutes=i)):%Y-%m-%dT%H:%M:%SZ}"}) for i in range(6)]
    s3.put_bytes(f"{landing_prefix(h)}events-0000.ndjson", ("\n".join(lines + ["not json"]) + "\n").encode())
    h_ids = sorted(f"{prefix}-{i}" for i in range(6))
    yield h, h_ids
    s3.delete([o.key for o in s3.list(landing_prefix(h))] + sorted(hour_files(s3, h)) + [manifest_key(h)])


def curated_ids(store, hour) -> list[str]:
    return sorted(r["payment_id"] for r in read_curated_hour(store, hour))


def listed(manifest: dict) -> set[str]:
    return set(manifest["curated_keys"]) | set(manifest["quarantine_keys"])


# ------------------------------------------------------------------------------ conditional writes


@pytest.mark.parametrize("kind", ["s3", "folder"])
def test_a_manifest_write_with_a_stale_etag_is_refused_and_the_newer_manifest_stays(kind, s3, tmp_path):
    store = s3 if kind == "s3" else LocalLakeStore(tmp_path / "lake")
    hour = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=random.Random(time.time_ns()).randrange(24 * 365))
    try:
        assert manifests.read_versioned(store, hour) == ({}, None)
        v1 = manifests.write(store, hour, {"run_id": "one"}, None)
        with pytest.raises(manifests.ManifestConflict):
            manifests.write(store, hour, {"run_id": "also-first"}, None)  # If-None-Match: * on an existing manifest
        body, read_at = manifests.read_versioned(store, hour)
        assert (body, read_at) == ({"run_id": "one"}, v1)
        v2 = manifests.write(store, hour, {"run_id": "two"}, read_at)
        assert v2 != v1
        with pytest.raises(manifests.ManifestConflict) as stale:
            manifests.write(store, hour, {"run_id": "stale"}, read_at)  # the version it read is gone
        assert f"landing hour {hour_token(hour)}" in str(stale.value) and "Rerun the hour" in str(stale.value)
        assert manifests.read_versioned(store, hour) == ({"run_id": "two"}, v2)  # nothing lost, nothing overwritten
        assert manifests.write(store, hour, {"run_id": "three"}, v2) != v2
    finally:
        store.delete([manifest_key(hour)])


def test_concurrent_read_modify_writes_of_a_folder_lake_manifest_lose_no_update(tmp_path):
    store = LocalLakeStore(tmp_path / "lake")
    hour = datetime(2024, 3, 1, 5, tzinfo=UTC)
    manifests.write(store, hour, {"count": 0}, None)

    def add(times: int) -> None:
        for _ in range(times):
            while True:
                body, version = manifests.read_versioned(store, hour)
                try:
                    manifests.write(store, hour, {"count": body["count"] + 1}, version)
                    break
                except manifests.ManifestConflict:
                    continue  # another thread wrote first: read again

    threads = [threading.Thread(target=add, args=(25,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert manifests.read_versioned(store, hour)[0] == {"count": 150}


# ---------------------------------------------------------------------------------- curation runs


class Interleaved(S3LakeStore):
    """The stack's S3 lake, where another run curates the hour right after `run_id` announced its
    files (between its announce and its swap)."""

    def __init__(self, base: S3LakeStore, run_id: str, other_run) -> None:
        super().__init__(base.bucket, base.kms_key_id, base.client)
        self.run_id, self.other_run, self.fired = run_id, other_run, False

    def put_bytes_if(self, key, data, etag):
        version = super().put_bytes_if(key, data, etag)
        body = json.loads(data)
        announce = body.get("run_id") != self.run_id and any(p["run_id"] == self.run_id for p in body.get("pending", []))
        if announce and not self.fired:
            self.fired = True
            self.other_run()
        return version


def test_a_run_whose_hour_another_run_published_meanwhile_fails_and_the_other_runs_hour_stays_whole(spark, s3, hour):
    h, ids = hour
    first = cr.curate_landing_hour(spark, s3, h, datetime(2024, 12, 1, tzinfo=UTC), run_id="mw-first")
    assert first.published and curated_ids(s3, h) == ids
    other = {}
    store = Interleaved(s3, "mw-loser", lambda: other.update(stats=cr.curate_landing_hour(
        spark, s3, h, datetime(2024, 12, 2, tzinfo=UTC), run_id="mw-winner")))
    with pytest.raises(manifests.ManifestConflict, match=f"landing hour {hour_token(h)}"):
        cr.curate_landing_hour(spark, store, h, datetime(2024, 12, 3, tzinfo=UTC), run_id="mw-loser")
    assert store.fired and other["stats"].published
    m = manifests.read_manifest(s3, h)
    assert m["run_id"] == "mw-winner" and curated_ids(s3, h) == ids
    # Exactly the winner's files exist: the first run's were superseded and deleted, the loser removed its own.
    assert hour_files(s3, h) == listed(m) and all("-mw-winner-" in k for k in listed(m))
    assert [p["run_id"] for p in m["pending"]] == ["mw-loser"]  # announced before the winner read the manifest
    swept = manifests.sweep_hour(s3, h, abandoned_after=timedelta(0))  # its keys are gone already; the entry goes too
    assert swept.manifest_updated and manifests.read_manifest(s3, h)["pending"] == [] and hour_files(s3, h) == listed(m)


KILLED_RUN = """
import os, signal, sys
from datetime import datetime, timezone
from pyspark.sql import SparkSession
from wallet_lake.lake import curation_run as cr
from wallet_lake.lake.store import S3LakeStore, open_lake_from_env
from wallet_lake.spark import spark_config


class DiesAtTheDelete(S3LakeStore):
    def delete(self, keys):
        keys = list(keys)
        if keys:  # the first delete of a clean hour is the one right after the swap
            os.kill(os.getpid(), signal.SIGKILL)
        super().delete(keys)


base = open_lake_from_env()
store = DiesAtTheDelete(base.bucket, base.kms_key_id, base.client)
builder = SparkSession.builder
for k, v in {**spark_config(), "spark.master": "local[1]", "spark.sql.shuffle.partitions": "2"}.items():
    builder = builder.config(k, v)
spark = builder.getOrCreate()
cr.curate_landing_hour(spark, store, datetime.fromisoformat(sys.argv[1]), datetime(2024, 12, 5, tzinfo=timezone.utc), run_id="mw-killed")
print("the run was not killed")
"""


def test_a_run_killed_between_its_swap_and_its_delete_leaves_a_list_the_sweep_cli_deletes(spark, s3, hour, tmp_path):
    h, ids = hour
    first = cr.curate_landing_hour(spark, s3, h, datetime(2024, 12, 1, tzinfo=UTC), run_id="mw-first")
    old_files = hour_files(s3, h)
    assert old_files == listed(manifests.read_manifest(s3, h)) and first.quarantine_files == 1

    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN))
    proc = subprocess.run([sys.executable, str(script), h.isoformat()], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-3000:]

    m = manifests.read_manifest(s3, h)
    assert m["run_id"] == "mw-killed" and m["superseded"] == sorted(old_files)  # the swap happened and said what it replaced
    assert hour_files(s3, h) == listed(m) | old_files  # nothing deleted yet: the leftovers are the first run's files
    assert curated_ids(s3, h) == ids

    sweep = [sys.executable, "-m", "wallet_lake.lake.sweep", "--hours", f"{h:%Y-%m-%dT%H}"]
    dry = subprocess.run(sweep + ["--dry-run"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert json.loads(dry.stdout.splitlines()[0])["deleted"] == sorted(old_files)
    assert hour_files(s3, h) == listed(m) | old_files  # a dry run deletes nothing

    done = subprocess.run(sweep, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"hours": 1, "files_deleted": len(old_files), "conflicts": []}
    after = manifests.read_manifest(s3, h)
    assert after["superseded"] == [] and listed(after) == listed(m)
    assert hour_files(s3, h) == listed(m)  # every current file is there, the leftovers are gone
    assert curated_ids(s3, h) == ids


class FailsAtTheDelete(S3LakeStore):
    def delete(self, keys):
        keys = list(keys)
        if keys:
            raise RuntimeError("injected: the run dies after its swap")
        super().delete(keys)


def test_a_run_that_fails_after_its_swap_leaves_a_list_the_next_run_of_the_hour_deletes(spark, s3, hour):
    h, ids = hour
    cr.curate_landing_hour(spark, s3, h, datetime(2024, 12, 1, tzinfo=UTC), run_id="mw-first")
    old_files = hour_files(s3, h)
    failing = FailsAtTheDelete(s3.bucket, s3.kms_key_id, s3.client)
    with pytest.raises(RuntimeError, match="injected"):
        cr.curate_landing_hour(spark, failing, h, datetime(2024, 12, 2, tzinfo=UTC), run_id="mw-broken")
    m = manifests.read_manifest(s3, h)
    assert m["run_id"] == "mw-broken" and m["superseded"] == sorted(old_files)
    assert hour_files(s3, h) == listed(m) | old_files

    cr.curate_landing_hour(spark, s3, h, datetime(2024, 12, 3, tzinfo=UTC), run_id="mw-next")
    final = manifests.read_manifest(s3, h)
    assert final["run_id"] == "mw-next" and final["superseded"] == [] and final["pending"] == []
    assert hour_files(s3, h) == listed(final) and all("-mw-next-" in k for k in listed(final))
    assert curated_ids(s3, h) == ids
