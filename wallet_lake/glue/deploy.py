"""Deploy the Glue job that runs curate_job.py: the script and the wallet_lake package (as
--extra-py-files) under s3://<lake bucket>/_glue/scripts/, then the job itself (created or
updated through the Glue API, idempotently).

    python -m wallet_lake.provision glue     (also part of `all`)

The job's default arguments carry the lake (--lake_uri, --kms_key_id); a run adds the hours
(--landing_hours) and, from Dagster, the Pipes bootstrap arguments."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import wallet_lake

SCRIPT_KEY = "_glue/scripts/curate_job.py"
PACKAGE_KEY = "_glue/scripts/wallet_lake.zip"
GLUE_VERSION = "5.0"
# What the job imports from the package: the pure rules and the lake shell, never Dagster.
PACKAGE_PARTS = ("__init__.py", "spark.py", "contracts", "transforms", "lake", "glue")
PIPES_MODULE = "dagster-pipes==1.13.27"


def package_zip() -> bytes:
    """wallet_lake's modules the job needs, as a zip for --extra-py-files."""
    root = Path(wallet_lake.__file__).parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for part in PACKAGE_PARTS:
            path = root / part
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*.py"))
            for f in files:
                info = zipfile.ZipInfo(f"wallet_lake/{f.relative_to(root).as_posix()}", date_time=(2026, 1, 1, 0, 0, 0))
                z.writestr(info, f.read_bytes())
    return buf.getvalue()


def script_bytes() -> bytes:
    return (Path(wallet_lake.__file__).parent / "glue" / "curate_job.py").read_bytes()


def job_definition(bucket: str, role_arn: str, lake_uri: str, kms_key_id: str, workers: int = 2) -> dict:
    return {
        "Description": "curated_payments: raw landing hours -> curated Parquet + quarantine (wallet_lake/glue/curate_job.py)",
        "Role": role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/{SCRIPT_KEY}", "PythonVersion": "3"},
        "GlueVersion": GLUE_VERSION,
        "WorkerType": "G.1X",
        "NumberOfWorkers": workers,
        "ExecutionProperty": {"MaxConcurrentRuns": 4},
        "DefaultArguments": {
            "--extra-py-files": f"s3://{bucket}/{PACKAGE_KEY}",
            "--additional-python-modules": PIPES_MODULE,
            "--lake_uri": lake_uri,
            "--kms_key_id": kms_key_id,
            "--job-bookmark-option": "job-bookmark-disable",
            "--enable-continuous-cloudwatch-log": "false",
            "--conf": "spark.sql.session.timeZone=UTC",
        },
    }


def deploy_glue_job(glue, s3, bucket: str, kms_key_id: str, *, role_arn: str, job_name: str,
                    lake_uri: str | None = None) -> str:
    """Upload script and package (SSE-KMS), then create or update the job: "created" | "updated"."""
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    s3.put_object(Bucket=bucket, Key=SCRIPT_KEY, Body=script_bytes(), **sse)
    s3.put_object(Bucket=bucket, Key=PACKAGE_KEY, Body=package_zip(), **sse)
    definition = job_definition(bucket, role_arn, lake_uri or f"s3://{bucket}", kms_key_id)
    try:
        current = glue.get_job(JobName=job_name)["Job"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_job(Name=job_name, **definition)
        return "created"
    if all(current.get(k) == v for k, v in definition.items()):
        return "unchanged"
    try:
        glue.update_job(JobName=job_name, JobUpdate=definition)
        return "updated"
    except glue.exceptions.ClientError as exc:
        # The local AWS API (moto) does not implement UpdateJob (HTTP 500): replace the job,
        # which is equivalent for a job that keeps no bookmarks or run state we depend on.
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 500:
            raise
        glue.delete_job(JobName=job_name)
        glue.create_job(Name=job_name, **definition)
        return "replaced"
