"""curated_payments through Dagster on the real stack (moto S3 + Glue catalog), local launcher:
single-hour runs, a rerun and a one-run backfill of the same hours leave the lake identical;
the materialization explains itself (counts, reasons, files, bytes, preview, per-hour figures);
the checks pass; the (dt, merchant_id) partitions are registered in the Glue catalog."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import dagster as dg
import pytest

from wallet_lake.contracts.landing import CURATED_PREFIX, hour_token
from wallet_lake.defs.curated.assets import curated_payments
from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.defs.curated.results import CHECK_DESCRIPTIONS, QUARANTINE_RATE
from wallet_lake.lake import catalog, manifests
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.store import S3LakeStore
from wallet_lake.resources import LakeResource
from wallet_lake_tests.integration.curated_support import (  # noqa: F401 (hours: a fixture)
    files_of, hour_state, hours, materialization_of, materialize, pk, published_hour, spark_resource,
)
from wallet_lake_tests.ledger_support import ledger_of

pytestmark = pytest.mark.integration


def test_runs_reruns_and_a_one_run_backfill_leave_the_lake_identical(stack_resources, hours):
    lake = stack_resources["lake"]
    store = lake.store()
    for h in hours:
        result = materialize(stack_resources, partition_key=pk(h))
        assert result.success
    first = {h: hour_state(store, h) for h in hours}
    dts = {d for h in hours for d in read_manifest(store, h)["dt_partitions"]}
    files_first = {h: files_of(store, h, dts) for h in hours}
    for h in hours:
        m = read_manifest(store, h)
        assert files_first[h] == set(m["curated_keys"] + m["quarantine_keys"])  # nothing else of the hour's runs

    # The materialization explains itself; every check ran and passed.
    mat = materialization_of(result)
    md = mat.metadata
    m = read_manifest(store, hours[-1])
    assert md["raw_lines"].value == m["raw_lines"] == md["curated_rows"].value + md["quarantined_rows"].value + md["duplicates_removed"].value
    assert md["quarantine_reasons"].value == m["quarantine_reasons"] and md["curated_files"].value == m["curated_files"] > 0
    assert md["curated_bytes"].value > 0 and md["launcher"].value == "local" and md["hours_published"].value == 1
    assert "| dt | merchant_id | payment_id |" in md["preview"].value
    assert list(md["per_hour"].value) == [hours[-1].isoformat()]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {*CHECK_DESCRIPTIONS, QUARANTINE_RATE}
    assert all(e.passed for name, e in evaluations.items() if name != QUARANTINE_RATE)

    # A rerun of one hour replaces exactly that hour's files.
    assert materialize(stack_resources, partition_key=pk(hours[1])).success
    assert {h: hour_state(store, h) for h in hours} == first
    assert files_of(store, hours[1], dts) != files_first[hours[1]] and len(files_of(store, hours[1], dts)) == len(files_first[hours[1]])
    assert files_of(store, hours[0], dts) == files_first[hours[0]]

    # A backfill of the three hours is one run (one Spark pass) with the same result.
    backfill = materialize(stack_resources, tags={"dagster/asset_partition_range_start": pk(hours[0]),
                                                  "dagster/asset_partition_range_end": pk(hours[-1])})
    assert backfill.success
    md = materialization_of(backfill).metadata
    assert md["hours"].value == 3 and set(md["per_hour"].value) == {h.isoformat() for h in hours}
    assert {h: hour_state(store, h) for h in hours} == first
    for h in hours:
        assert len(files_of(store, h, dts)) == len(files_first[h])
    assert len({read_manifest(store, h)["run_id"] for h in hours}) == 1
    # The pipeline ledger holds each hour's figures of the curation the lake holds (raw_payments did not run).
    for h in hours:
        m = read_manifest(store, h)
        assert ledger_of(stack_resources["postgres"], h) == {
            "curated": (m["curated_rows"], m["run_id"]), "quarantined": (m["quarantined_rows"], m["run_id"]),
            "duplicates_removed": (m["duplicates_removed"], m["run_id"]),
        }

    # The catalog knows every (dt, merchant_id) partition written.
    glue, db = lake.client("glue"), CurationLauncher().database()
    for h in hours:
        for (dt, merchant), folder in catalog.partitions_of_keys(read_manifest(store, h)["curated_keys"]).items():
            part = glue.get_partition(DatabaseName=db, TableName=catalog.CURATED_TABLE, PartitionValues=[dt, merchant])["Partition"]
            assert part["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/{folder}"


def test_a_rerun_removes_at_once_what_a_run_killed_mid_upload_left(stack_resources, hours):
    """A run killed between announcing its files and its swap (the soak's curation-worker kill)
    leaves them pending; a lister such as Athena counts their rows twice. The next run of the hour
    holds its lease, so no other run can be writing: it deletes them now, not 6 hours later."""
    store = stack_resources["lake"].store()
    h = hours[0]
    assert materialize(stack_resources, partition_key=pk(h)).success
    before = hour_state(store, h)
    m, etag = manifests.read_versioned(store, h)
    current = m["curated_keys"] + m["quarantine_keys"]
    dead_run = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-deadbeef"
    folder = m["curated_keys"][0].rsplit("/", 1)[0]
    uploaded = f"{folder}/lh-{hour_token(h)}-{dead_run}-000.parquet"
    never_uploaded = f"{folder}/lh-{hour_token(h)}-{dead_run}-001.parquet"
    store.put_bytes(uploaded, store.get_bytes(m["curated_keys"][0]))
    pending = {"run_id": dead_run, "started_at": datetime.now(timezone.utc).isoformat(), "keys": [uploaded, never_uploaded]}
    manifests.write(store, h, {**m, "pending": [pending]}, etag)
    dts = set(m["dt_partitions"])
    assert uploaded in files_of(store, h, dts)

    rerun = materialize(stack_resources, partition_key=pk(h))
    assert rerun.success
    after = read_manifest(store, h)
    assert after["pending"] == [] and after["superseded"] == []
    assert files_of(store, h, dts) == set(after["curated_keys"] + after["quarantine_keys"])
    assert uploaded not in files_of(store, h, dts) and not set(current) & files_of(store, h, dts)
    assert materialization_of(rerun).metadata["dead_run_keys_swept"].value == 2  # announced, uploaded or not
    assert hour_state(store, h) == before


class _DiesMidUpload(S3LakeStore):
    """The lake, except that the second curated file a run uploads fails: the run dies after
    announcing its files and uploading one (as when its curation worker is killed)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._uploads, self._lock = 0, threading.Lock()

    def put_file(self, key, path) -> None:
        if key.startswith(CURATED_PREFIX):
            with self._lock:
                self._uploads += 1
                if self._uploads >= 2:
                    raise RuntimeError("injected: the run dies mid-upload")
        super().put_file(key, path)


class DiesMidUploadLake(LakeResource):
    def store(self):
        s = super().store()
        return _DiesMidUpload(s.bucket, s.kms_key_id, s.client)


def test_a_run_that_fails_mid_upload_removes_what_it_announced_before_it_fails(stack_resources, hours):
    """Its hours' leases are still held when the curation fails, so the run itself removes the
    files it announced (a lister sees them no longer than the run lived), and the hour stays whole."""
    lake = stack_resources["lake"]
    h = hours[1]
    store, before, m, dts = published_hour(stack_resources, h)
    failed = dg.materialize(
        [curated_payments], partition_key=pk(h), raise_on_error=False, instance=dg.DagsterInstance.ephemeral(),
        resources={"lake": DiesMidUploadLake(**lake.model_dump()), "lazy_pyspark": spark_resource(),
                   "curation_launcher": CurationLauncher(mode="local", worker_socket=""), "postgres": stack_resources["postgres"]},
    )
    assert not failed.success
    assert any("injected: the run dies mid-upload" in str(e.event_specific_data.error) for e in failed.get_step_failure_events())
    after = read_manifest(store, h)
    assert after["pending"] == [] and after["curated_keys"] == m["curated_keys"] and after["run_id"] == m["run_id"]
    assert files_of(store, h, dts) == set(m["curated_keys"] + m["quarantine_keys"])
    assert hour_state(store, h) == before
