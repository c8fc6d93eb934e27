"""The Glue path of curated_payments, the way dagster-aws tests its PipesGlueClient: moto records
Glue jobs and runs but never runs a script, so a stand-in for the Glue API client (LocalGlueRunner)
runs the job's script from (moto) S3 in a local Python process, with the job's default and run
arguments and its --extra-py-files package on the path, and puts its output in the moto
CloudWatch log stream Glue would write. The job is deployed to moto as it would be to AWS
(glue/deploy.py: script and package under _glue/scripts/, CreateJob); the asset launches it through
PipesGlueClient and builds its materialization and checks from what the script reported."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster_pyspark import LazyPySparkResource

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.contracts.landing import QUARANTINE_PREFIX, hour_token, manifest_key
from wallet_lake.defs.curated.assets import curated_payments
from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.defs.curated.results import CHECK_DESCRIPTIONS
from wallet_lake.generator.events import generate_with_stats
from wallet_lake.generator.writer import write_generated
from wallet_lake.glue.deploy import PACKAGE_KEY, SCRIPT_KEY, deploy_glue_job
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.reader import read_curated_hour
from wallet_lake_tests.ledger_support import forget_hours, ledger_of

pytestmark = pytest.mark.integration


class LocalGlueRunner:
    """The Glue API client for PipesGlueClient, running job scripts here (see module doc)."""

    # Glue's log group for job runs (moto reports a placeholder): the job's stdout goes to
    # <group>/output, where PipesCloudWatchMessageReader reads it and the job role's policy writes.
    LOG_GROUP = "/aws-glue/jobs"

    def __init__(self, glue, s3, logs, env: dict[str, str]):
        self.glue, self.s3, self.logs, self.env = glue, s3, logs, env
        self.runs: dict[str, subprocess.CompletedProcess] = {}
        # Removed when the runner goes (TemporaryDirectory's finalizer): it held the job's script
        # and package, ~300 KB a test, left in /tmp before.
        self._scratch = tempfile.TemporaryDirectory(prefix="glue-runner-")
        self.scratch = Path(self._scratch.name)

    @property
    def meta(self):
        return self.glue.meta

    def _download(self, uri: str) -> Path:
        bucket, key = uri[len("s3://"):].split("/", 1)
        dest = self.scratch / uuid.uuid4().hex / key.rsplit("/", 1)[-1]
        dest.parent.mkdir(parents=True)
        self.s3.download_file(bucket, key, str(dest))
        return dest

    def start_job_run(self, JobName: str, Arguments: dict | None = None, **_):  # noqa: N803 - boto3 names
        job = self.glue.get_job(JobName=JobName)["Job"]
        run_id = self.glue.start_job_run(JobName=JobName, Arguments=Arguments or {})["JobRunId"]
        args = {**job.get("DefaultArguments", {}), **(Arguments or {}), "--JOB_NAME": JobName, "--JOB_RUN_ID": run_id}
        script = self._download(job["Command"]["ScriptLocation"])
        package = self._download(args["--extra-py-files"])
        argv = [sys.executable, str(script), *[x for kv in args.items() for x in kv]]
        self.runs[run_id] = subprocess.run(argv, env={**self.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(package), self.env.get("PYTHONPATH")]))}, capture_output=True, text=True, timeout=900)
        self._to_cloudwatch(JobName, run_id)
        return {"JobRunId": run_id}

    def _to_cloudwatch(self, job_name: str, run_id: str) -> None:
        group = self.LOG_GROUP + "/output"
        for call, kw in ((self.logs.create_log_group, {"logGroupName": group}),
                         (self.logs.create_log_stream, {"logGroupName": group, "logStreamName": run_id})):
            try:
                call(**kw)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
        proc = self.runs[run_id]
        lines = [ln for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
        now = int(time.time() * 1000)
        for i in range(0, len(lines), 500):
            self.logs.put_log_events(logGroupName=group, logStreamName=run_id,
                                     logEvents=[{"timestamp": now, "message": ln[:200_000]} for ln in lines[i:i + 500]])

    def get_job_run(self, JobName: str, RunId: str, **_):  # noqa: N803
        response = self.glue.get_job_run(JobName=JobName, RunId=RunId)
        response["JobRun"]["LogGroupName"] = self.LOG_GROUP
        proc = self.runs[RunId]
        response["JobRun"]["JobRunState"] = "SUCCEEDED" if proc.returncode == 0 else "FAILED"
        if proc.returncode:
            response["JobRun"]["ErrorMessage"] = proc.stderr[-3000:]
        return response

    def batch_stop_job_run(self, JobName: str, JobRunIds: list[str]):  # noqa: N803
        return {"SuccessfulSubmissions": [], "Errors": [{"JobRunId": r, "ErrorDetail": {"ErrorMessage": "already finished"}} for r in JobRunIds]}


class LauncherWithLocalGlue(CurationLauncher):
    """The glue launcher, its Glue API client replaced by the local runner."""

    def glue_client(self, lake):
        env = {**os.environ, "WL_SPARK_MASTER": "local[1]", "WL_SPARK_SHUFFLE_PARTITIONS": "2"}
        return LocalGlueRunner(lake.client("glue"), lake.client("s3"), lake.client("logs"), env)


@pytest.fixture
def glue_job(stack_resources):
    lake = stack_resources["lake"]
    name = f"wallet-lake-curate-test-{uuid.uuid4().hex[:8]}"
    assert deploy_glue_job(lake.client("glue"), lake.client("s3"), lake.bucket, lake.kms_key_id,
                           role_arn="arn:aws:iam::123456789012:role/wallet-lake-glue-curate", job_name=name) == "created"
    yield name
    lake.client("glue").delete_job(JobName=name)


@pytest.fixture
def hour(stack_resources):
    store = stack_resources["lake"].store()
    rng = random.Random(time.time_ns())
    h = datetime(2026, 4, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 150))
    seed = rng.randrange(1, 10**6)
    write_generated(store, generate_with_stats(h, h + timedelta(hours=1), seed, events_per_hour=120), seed)
    yield h
    m = read_manifest(store, h)
    store.delete([o.key for o in store.list(h.strftime("raw/payments/dt=%Y/%m/%d/%H/"))] + m.get("curated_keys", [])
                 + [o.key for o in store.list(f"{QUARANTINE_PREFIX}landing_hour={hour_token(h)}/")] + [manifest_key(h)])
    forget_hours(stack_resources["postgres"], [h])


@pytest.mark.parametrize("messages", ["s3", "cloudwatch"])
def test_glue_launcher_runs_the_deployed_script_and_reports_the_hours_figures_through_pipes(stack_resources, glue_job, hour, messages):
    lake = stack_resources["lake"]
    s3 = lake.client("s3")
    script = s3.get_object(Bucket=lake.bucket, Key=SCRIPT_KEY)
    assert script["ServerSideEncryption"] == "aws:kms" and b"open_dagster_pipes" in script["Body"].read()
    assert s3.head_object(Bucket=lake.bucket, Key=PACKAGE_KEY)["ContentLength"] > 0

    result = dg.materialize(
        [curated_payments], partition_key=hour.strftime("%Y-%m-%d-%H:00"),
        resources={"lake": lake, "lazy_pyspark": LazyPySparkResource(spark_config={}),
                   "curation_launcher": LauncherWithLocalGlue(mode="glue", glue_job_name=glue_job, pipes_messages=messages),
                   "postgres": stack_resources["postgres"]},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    md = next(e.materialization.metadata for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(CURATED_PAYMENTS))
    manifest = read_manifest(lake.store(), hour)
    assert md["launcher"].value == "glue" and md["AWS Glue Job Name"].value == glue_job
    assert md["AWS Glue Job Run ID"].value.startswith("jr_")
    assert md["curation_run_id"].value == manifest["run_id"] and manifest["published"]
    assert (md["raw_lines"].value, md["curated_rows"].value, md["quarantined_rows"].value, md["duplicates_removed"].value) == (
        manifest["raw_lines"], manifest["curated_rows"], manifest["quarantined_rows"], manifest["duplicates_removed"])
    assert md["raw_lines"].value == md["curated_rows"].value + md["quarantined_rows"].value + md["duplicates_removed"].value
    assert list(md["per_hour"].value) == [hour.isoformat()]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks[name] for name in CHECK_DESCRIPTIONS)
    assert len(read_curated_hour(lake.store(), hour)) == manifest["curated_rows"] > 0
    # The ledger got the figures the Glue run reported, of the curation run it published.
    assert ledger_of(stack_resources["postgres"], hour) == {
        s: (manifest[k], manifest["run_id"]) for s, k in
        (("curated", "curated_rows"), ("quarantined", "quarantined_rows"), ("duplicates_removed", "duplicates_removed"))
    }
    # The Pipes context and messages stayed under their prefix; no local Spark session was needed.
    assert not [o for o in lake.store().list("_pipes/context/")]
