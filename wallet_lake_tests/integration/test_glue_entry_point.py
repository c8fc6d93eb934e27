"""The Glue job entry point curates a landing hour under plain local pyspark, against the S3 API
(the same script AWS Glue runs, given explicit --landing_hour arguments instead of bookmarks)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_glue_script_curates_an_hour_and_accounts_for_every_line(stack_resources):
    lake = stack_resources["lake"]
    hour = datetime(2026, 9, 1, tzinfo=timezone.utc) + timedelta(hours=random.randrange(24 * 30))
    subprocess.run(
        [sys.executable, "-m", "wallet_lake.generator", "--start", f"{hour:%Y-%m-%dT%H}",
         "--end", f"{hour + timedelta(hours=1):%Y-%m-%dT%H}", "--seed", "11", "--events-per-hour", "150"],
        check=True, cwd=ROOT, env=os.environ,
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "wallet_lake/glue/curate_job.py"), "--landing_hour", f"{hour:%Y-%m-%dT%H}",
         "--lake_uri", f"s3://{lake.bucket}", "--kms_key_id", lake.kms_key_id, "--s3_endpoint_url", lake.s3_endpoint_url,
         "--JOB_NAME", "wallet-lake-curate"],
        cwd=ROOT, env=os.environ, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads(lake.store().get_bytes(f"_manifests/curated/payments/{hour:%Y%m%dT%H}.json"))
    lines = sum(lake.store().get_bytes(k).count(b"\n") for k in [o.key for o in lake.store().list(hour.strftime("raw/payments/dt=%Y/%m/%d/%H/"))])
    assert manifest["raw_lines"] == lines
    assert manifest["raw_lines"] == manifest["curated_rows"] + manifest["quarantined_rows"] + manifest["duplicates_removed"]
    assert manifest["curated_rows"] > 0 and manifest["curated_keys"]
