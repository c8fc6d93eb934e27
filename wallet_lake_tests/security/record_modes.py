"""Runs every mode of the project against the local AWS API with each AWS call recorded
(call_recorder.py) and tagged with the role that makes it on AWS; prints one JSON line
{"names": {...}, "calls": [...]} for test_iam_calls.py to judge against infra/iam/.

`python -m wallet_lake_tests.security.record_modes` (own process: its own Spark session and a
recorder over every botocore client). Everything runs in a fresh bucket, KMS alias, Glue
database, Glue job and Athena workgroup, so provisioning creates them all (its first-run path)
and then runs again (its idempotent path); they are removed afterwards.

Modes and roles:
- provisioning (provisioner.json): `provision aws`, twice;
- the landing writer (landing-writer.json): the generator's landing objects;
- local launcher (dagster-code-location.json): curated_payments in-process, twice (the rerun
  replaces the first run's files; in this process, not on the stack's curation worker, whose
  calls would go unrecorded: the worker runs the same code under the same role), creating the catalog tables and registering partitions;
  the landing sensor's listing, the publish step's read, the code location's secrets;
- Glue launcher through Pipes: curated_payments with mode=glue, messages through S3 then
  CloudWatch. The launcher's calls are the code location's; the job script runs in a child
  process (LocalGlueRunner, as in the integration test) whose calls are recorded as
  glue-curate-job.json, like the reads of its script and the log writes Glue makes as the job's
  role; the stand-in's own bookkeeping on the Glue API is not recorded;
- replay (lake-replay.json): `replay_quarantine` of the hour, twice (the second finds its object);
- Athena lake engine (api-lake-queries.json): a report through AthenaLake (pyathena), with
  the API's Postgres secret read as at API start-up and by `python -m api.keys list`."""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from wallet_lake_tests.security.call_recorder import install, read_log

HERE = Path(__file__).resolve().parent
SECRETS = {  # secret name -> (variable the code resolves, role that reads it)
    "wallet-lake/postgres-pipeline": ("WL_PG_PIPELINE_PASSWORD", "dagster-code-location.json"),
    "AmazonMSK_wallet-lake-producer": ("WL_KAFKA_SASL_PASSWORD", "dagster-code-location.json"),
    "wallet-lake/alert-webhook": ("WL_ALERT_WEBHOOK_URL", "dagster-code-location.json"),
    "wallet-lake/postgres-api": ("WL_PG_API_PASSWORD", "api-lake-queries.json"),
    "wallet-lake/postgres-keys": ("WL_PG_KEYS_PASSWORD", "key-admin.json"),
}


def main() -> None:
    tag = uuid.uuid4().hex[:10]
    names = {"bucket": f"wl-iamrec-{tag}", "alias": f"alias/wl-iamrec-{tag}", "database": f"iamrec_{tag}",
             "job": f"wallet-lake-curate-iamrec-{tag}", "workgroup": f"wl-iamrec-{tag}"}
    os.environ.update({"WL_LAKE_BUCKET": names["bucket"], "WL_KMS_KEY_ID": names["alias"], "WL_GLUE_DATABASE": names["database"],
                       "WL_GLUE_JOB_NAME": names["job"]})
    rec = install()
    log_path = tempfile.mktemp(prefix="wl-iamrec-", suffix=".jsonl")
    from wallet_lake.resources import resources_from_os_env

    res = resources_from_os_env()
    lake, pg = res["lake"], res["postgres"]
    with rec.clients_as(None):
        admin = {s: lake.client(s) for s in ("s3", "kms", "glue", "athena", "secretsmanager")}
    rng = random.Random(time.time_ns())
    hour = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 300))
    created_secrets: list[str] = []
    try:
        rec.role = "provisioner.json"
        from wallet_lake.provision import provision_aws

        provision_aws(res)
        provision_aws(res)
        names["key_arn"] = admin["kms"].describe_key(KeyId=names["alias"])["KeyMetadata"]["Arn"]

        rec.role = None  # set-up the recording needs, not a mode: the Glue job, secrets, workgroup
        from wallet_lake.glue.deploy import deploy_glue_job

        with rec.clients_as(None):
            deploy_glue_job(lake.client("glue"), lake.client("s3"), lake.bucket, lake.kms_key_id,
                            role_arn="arn:aws:iam::123456789012:role/wallet-lake-glue-curate", job_name=names["job"])
        admin["athena"].create_work_group(Name=names["workgroup"], Configuration={})
        for name, (variable, _) in SECRETS.items():
            try:
                admin["secretsmanager"].create_secret(Name=name, SecretString=json.dumps({"password": os.environ[variable]}))
                created_secrets.append(name)
            except admin["secretsmanager"].exceptions.ResourceExistsException:
                pass

        rec.role = "landing-writer.json"
        _write_landing(lake.store(), hour, rng)

        rec.role = "dagster-code-location.json"
        _local_launcher(res, names, hour)
        # The curated table gone (deleted by hand): the next run recreates it and brings the
        # catalog's other tables up to date (catalog.ensure_catalog's update path).
        admin["glue"].delete_table(DatabaseName=names["database"], Name="curated_payments")
        _local_launcher(res, names, hour)
        _sensor_publish_and_secrets(lake.store(), hour)
        _compaction(lake.store(), hour)

        for messages in ("s3", "cloudwatch"):
            _glue_launcher(rec, res, names, hour, messages, log_path)

        rec.role = "lake-replay.json"
        from wallet_lake.lake.replay import replay_quarantine

        first = replay_quarantine(lake.store(), hour)
        assert first.written, "the hour has quarantined lines: the replay writes a landing object"
        assert not replay_quarantine(lake.store(), hour).written

        rec.role = "api-lake-queries.json"
        _athena(lake, names)
        rec.role = "key-admin.json"
        _api_keys()
        rec.role = None
    finally:
        rec.role = None
        _clean_up(admin, names, created_secrets, pg, hour)
    try:
        calls = [c for c in rec.calls + read_log(log_path) if c.get("role")]
    finally:
        Path(log_path).unlink(missing_ok=True)
    print(json.dumps({"names": names, "calls": calls}))


def _write_landing(store, hour: datetime, rng) -> None:
    from wallet_lake.contracts.landing import landing_prefix
    from wallet_lake.generator.events import generate_with_stats
    from wallet_lake.generator.writer import write_generated

    seed = rng.randrange(1, 10**6)
    write_generated(store, generate_with_stats(hour, hour + timedelta(hours=1), seed, events_per_hour=120), seed)
    # Two records run together and a line that is not JSON: the hour has a quarantine to replay.
    store.put_bytes(f"{landing_prefix(hour)}probe-{seed}.ndjson", b'{"a": 1}{"b": 2}\nnot json\n')


def _materialize(res, launcher, hour: datetime) -> None:
    import dagster as dg
    from dagster_pyspark import LazyPySparkResource

    from wallet_lake.defs.curated.assets import curated_payments
    from wallet_lake.spark import spark_config

    spark = LazyPySparkResource(spark_config={**spark_config(), "spark.master": "local[1]", "spark.sql.shuffle.partitions": "2"})
    result = dg.materialize([curated_payments], partition_key=hour.strftime("%Y-%m-%d-%H:00"),
                            resources={"lake": res["lake"], "lazy_pyspark": spark, "curation_launcher": launcher, "postgres": res["postgres"]},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    assert result.success


def _local_launcher(res, names: dict, hour: datetime) -> None:
    from wallet_lake.defs.curated.launcher import CurationLauncher

    _materialize(res, CurationLauncher(mode="local", glue_database=names["database"], worker_socket=""), hour)


def _sensor_publish_and_secrets(store, hour: datetime) -> None:
    from wallet_lake.contracts.landing import RAW_PREFIX
    from wallet_lake.lake.reader import read_curated_hour
    from wallet_lake.security.secrets import resolve_secret

    store.list(RAW_PREFIX)  # the landing sensor's listing (lake/arrivals.py lists under raw/payments/)
    store.list(hour.strftime(f"{RAW_PREFIX}dt=%Y/%m/%d/"))
    assert read_curated_hour(store, hour)  # publish and serving read the curated hour
    for name, (variable, role) in SECRETS.items():
        if role == "dagster-code-location.json":
            resolve_secret(variable, env={**os.environ, f"{variable}_SECRET_ID": name}, refresh=True)


def _compaction(store, hour: datetime) -> None:
    """The daily compaction asset's calls: a first compaction of the hour's dt and the movers
    index, then both again over the same hour files (as after a late file): the second ones
    delete what the first wrote."""
    from wallet_lake.lake import scan_plan
    from wallet_lake.lake.compaction import build_movers, compact_day, compact_lake
    from wallet_lake.lake.reader import ManifestIndex

    result = compact_lake(store, closed_before=hour.date() + timedelta(days=1))
    assert result.days and result.movers_rows is not None
    hours = scan_plan.HourFiles.of(ManifestIndex(store).current())
    compact_day(store, hour.date(), hours.by_dt[hour.date()])
    build_movers(store, scan_plan.plan_scan(hours, [], None, min(hours.by_dt), max(hours.by_dt)), dict(hours.digests))


def _glue_launcher(rec, res, names: dict, hour: datetime, messages: str, log_path: str) -> None:
    from wallet_lake.defs.curated.launcher import CurationLauncher
    from wallet_lake_tests.integration.test_glue_pipes import LocalGlueRunner

    class RecordingGlueRunner(LocalGlueRunner):
        """LocalGlueRunner whose Glue API calls are recorded as the launcher's; what Glue does
        as the job's role (read the script, write the logs) as the job's; the job's process too."""

        def __init__(self, lake):
            with rec.clients_as(None):
                glue = lake.client("glue")
            with rec.clients_as("glue-curate-job.json"):
                s3, logs = lake.client("s3"), lake.client("logs")
            env = {**os.environ, "WL_SPARK_MASTER": "local[1]", "WL_SPARK_SHUFFLE_PARTITIONS": "2",
                   "WL_AWS_CALL_LOG": log_path, "WL_AWS_CALL_ROLE": "glue-curate-job.json", "PYTHONPATH": str(HERE / "callrec_site")}
            super().__init__(glue, s3, logs, env)

        def _note(self, operation: str, job_name: str) -> None:
            rec._add({"role": rec.role, "service": "glue", "operation": operation, "params": {"JobName": job_name}, "status": 200, "error": None})

        def start_job_run(self, JobName: str, Arguments: dict | None = None, **kw):  # noqa: N803
            self._note("StartJobRun", JobName)
            response = super().start_job_run(JobName=JobName, Arguments=Arguments, **kw)
            proc = self.runs[response["JobRunId"]]
            assert proc.returncode == 0, proc.stderr[-3000:]
            return response

        def get_job_run(self, JobName: str, RunId: str, **kw):  # noqa: N803
            self._note("GetJobRun", JobName)
            return super().get_job_run(JobName=JobName, RunId=RunId, **kw)

        def batch_stop_job_run(self, JobName: str, JobRunIds: list[str]):  # noqa: N803
            self._note("BatchStopJobRun", JobName)
            return super().batch_stop_job_run(JobName=JobName, JobRunIds=JobRunIds)

    class RecordingLauncher(CurationLauncher):
        def glue_client(self, lake):
            return RecordingGlueRunner(lake)

    _materialize(res, RecordingLauncher(mode="glue", glue_job_name=names["job"], pipes_messages=messages,
                                        glue_database=names["database"]), hour)


def _athena(lake, names: dict) -> None:
    from datetime import date

    from api.reports.sql import LATENCY
    from api.settings import load_settings
    from wallet_lake.lake.query import AthenaLake, LakeQueryConfig
    from wallet_lake.security.secrets import forget

    os.environ["AWS_ENDPOINT_URL_ATHENA"] = lake.s3_endpoint_url  # boto3's per-service endpoint (pyathena's session)
    config = LakeQueryConfig.from_env({**os.environ, "WL_LAKE_ENGINE": "athena", "WL_ATHENA_OUTPUT": f"s3://{lake.bucket}/athena-results/",
                                       "WL_ATHENA_WORKGROUP": names["workgroup"], "WL_ATHENA_DATABASE": names["database"]})
    import re

    params = {n: "2026-01-01" for n in re.findall(r"%\((\w+)\)s", LATENCY.sql)}  # a report, as the API runs it
    AthenaLake(config).query(LATENCY.sql, params, scan_from=date(2026, 1, 1))
    forget()
    os.environ["WL_PG_API_PASSWORD_SECRET_ID"] = "wallet-lake/postgres-api"
    try:
        load_settings()  # the API resolves its Postgres password
    finally:
        del os.environ["WL_PG_API_PASSWORD_SECRET_ID"]
        forget()


def _api_keys() -> None:
    from api.keys import main as keys_main
    from wallet_lake.security.secrets import forget

    forget()
    os.environ["WL_PG_KEYS_PASSWORD_SECRET_ID"] = "wallet-lake/postgres-keys"
    try:
        assert keys_main(["list"]) == 0  # api.keys resolves the key administrator's password
    finally:
        del os.environ["WL_PG_KEYS_PASSWORD_SECRET_ID"]
        forget()


def _clean_up(admin: dict, names: dict, created_secrets: list[str], pg, hour: datetime) -> None:
    from wallet_lake_tests.ledger_support import forget_hours
    from wallet_lake_tests.s3_support import delete_bucket_and_versions

    s3, glue = admin["s3"], admin["glue"]
    try:
        delete_bucket_and_versions(s3, names["bucket"])
    except s3.exceptions.NoSuchBucket:
        pass
    for call, kw in ((glue.delete_job, {"JobName": names["job"]}), (glue.delete_database, {"Name": names["database"]}),
                     (admin["athena"].delete_work_group, {"WorkGroup": names["workgroup"], "RecursiveDeleteOption": True})):
        try:
            call(**kw)
        except Exception as exc:  # noqa: BLE001 - best-effort clean-up of a throwaway name; reported
            print(f"clean-up: {call.__name__}: {exc}", file=sys.stderr)
    if names.get("key_arn"):
        admin["kms"].delete_alias(AliasName=names["alias"])
        admin["kms"].schedule_key_deletion(KeyId=names["key_arn"].rsplit("/", 1)[1], PendingWindowInDays=7)
    for name in created_secrets:
        admin["secretsmanager"].delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    forget_hours(pg, [hour])


if __name__ == "__main__":
    main()
