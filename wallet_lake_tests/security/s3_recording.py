"""Records every S3 operation the real pipeline code makes for one landing hour, against the
local S3 API: the generator writing it, curation (twice: the second run replaces the first's
files after the processor rewrote the hour), the publish step's read, the arrival sensor's list.

`python -m wallet_lake_tests.security.s3_recording` prints one JSON line
{"writer": [...], "pipeline": [...]} (operation, IAM action, key/prefix, SSE); it runs in its own
process so its Spark session is its own. Every object it wrote is deleted afterwards."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

# boto3 operation -> IAM action (AWS's "Actions, resources, and condition keys for Amazon S3").
S3_ACTION = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadObject": "s3:GetObject", "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
}


class Recorder:
    def __init__(self, store):
        self.calls: list[dict] = []
        self.written: set[str] = set()
        store.client.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, params, model, **_):
        op = model.name
        if op not in S3_ACTION:
            raise AssertionError(f"the code calls S3 {op}: map it to its IAM action in S3_ACTION")
        action = S3_ACTION[op]
        if action == "s3:ListBucket":
            self.calls.append({"operation": op, "action": action, "prefix": params.get("Prefix", "")})
            return
        keys = [o["Key"] for o in params["Delete"]["Objects"]] if op == "DeleteObjects" else [params["Key"]]
        for key in keys:
            self.calls.append({"operation": op, "action": action, "key": key, "sse": params.get("ServerSideEncryption")})
            if action == "s3:PutObject":
                self.written.add(key)


def main() -> None:
    from pyspark.sql import SparkSession

    from wallet_lake.contracts.landing import RAW_PREFIX
    from wallet_lake.generator.events import generate_with_stats
    from wallet_lake.generator.writer import landing_key, write_generated
    from wallet_lake.lake.curation_run import curate_landing_hour, read_curated_hour
    from wallet_lake.resources import resources_from_os_env
    from wallet_lake.spark import spark_config

    lake = resources_from_os_env()["lake"]
    rng = random.Random(time.time_ns())
    hour = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 300))
    seeds = rng.sample(range(10**6), 2)
    builder = SparkSession.builder
    for k, v in {**spark_config(), "spark.master": "local[1]", "spark.app.name": f"iam-recording-{uuid.uuid4().hex[:6]}"}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    writer_store, pipeline_store, cleanup = lake.store(), lake.store(), lake.store()
    writer, pipeline = Recorder(writer_store), Recorder(pipeline_store)
    try:
        write_generated(writer_store, generate_with_stats(hour, hour + timedelta(hours=1), seeds[0], events_per_hour=60), seeds[0])
        curate_landing_hour(spark, pipeline_store, hour, datetime.now(timezone.utc))
        cleanup.delete([landing_key(hour, seeds[0])])
        write_generated(writer_store, generate_with_stats(hour, hour + timedelta(hours=1), seeds[1], events_per_hour=60), seeds[1])
        curate_landing_hour(spark, pipeline_store, hour, datetime.now(timezone.utc))
        read_curated_hour(pipeline_store, hour)
        pipeline_store.list(RAW_PREFIX)  # the landing sensor's listing
    finally:
        cleanup.delete(sorted(writer.written | pipeline.written))
        spark.stop()
    print(json.dumps({"writer": writer.calls, "pipeline": pipeline.calls}))


if __name__ == "__main__":
    main()
