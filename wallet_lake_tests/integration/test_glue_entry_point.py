"""The Glue job entry point curates landing hours under plain local pyspark, against the S3 API
(the same script AWS Glue runs, given explicit --landing_hours arguments instead of bookmarks):
two hours in one run (one Spark application), each published with its own manifest."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from wallet_lake.contracts.landing import hour_token, manifest_key

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_glue_script_curates_hours_in_one_run_and_accounts_for_every_line(stack_resources):
    lake = stack_resources["lake"]
    store = lake.store()
    hour = datetime(2026, 9, 1, tzinfo=timezone.utc) + timedelta(hours=random.randrange(24 * 30))
    hours = [hour, hour + timedelta(hours=1)]
    subprocess.run(
        [sys.executable, "-m", "wallet_lake.generator", "--start", f"{hour:%Y-%m-%dT%H}",
         "--end", f"{hour + timedelta(hours=2):%Y-%m-%dT%H}", "--seed", str(random.randrange(10**6)), "--events-per-hour", "150"],
        check=True, cwd=ROOT, env=os.environ,
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "wallet_lake/glue/curate_job.py"), "--landing_hours", ",".join(f"{h:%Y-%m-%dT%H}" for h in hours),
         "--lake_uri", f"s3://{lake.bucket}", "--kms_key_id", lake.kms_key_id, "--s3_endpoint_url", lake.s3_endpoint_url,
         "--JOB_NAME", "wallet-lake-curate", "--run_id", "glue-entry-test"],
        cwd=ROOT, env={**os.environ, "WL_SPARK_MASTER": "local[1]"}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [p["landing_hour"] for p in printed] == [h.isoformat() for h in hours]
    try:
        for h in hours:
            manifest = json.loads(store.get_bytes(manifest_key(h)))
            lines = sum(store.get_bytes(o.key).count(b"\n") for o in store.list(h.strftime("raw/payments/dt=%Y/%m/%d/%H/")))
            assert manifest["raw_lines"] == lines
            assert manifest["raw_lines"] == manifest["curated_rows"] + manifest["quarantined_rows"] + manifest["duplicates_removed"]
            assert manifest["curated_rows"] > 0 and manifest["curated_keys"] and manifest["published"]
            assert manifest["run_id"] == "glue-entry-test"
            assert all(f"/lh-{hour_token(h)}-glue-entry-test-" in k for k in manifest["curated_keys"] + manifest["quarantine_keys"])
            for key in manifest["curated_keys"][:3]:
                assert store.client.head_object(Bucket=lake.bucket, Key=key)["ServerSideEncryption"] == "aws:kms"
    finally:
        for h in hours:
            m = json.loads(store.get_bytes(manifest_key(h)))
            store.delete([o.key for o in store.list(h.strftime("raw/payments/dt=%Y/%m/%d/%H/"))] + m["curated_keys"] + m["quarantine_keys"] + [manifest_key(h)])
