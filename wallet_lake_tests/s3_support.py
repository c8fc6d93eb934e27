"""S3 helpers for tests: the lake bucket is versioned (lake/provision.py), so a throwaway bucket
is empty only once every version and delete marker is gone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def delete_bucket_and_versions(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[i:i + 1000], "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


@contextmanager
def throwaway_lake(base, prefix: str) -> Iterator:
    """A LakeResource like `base` (the stack's: endpoint, KMS key, region) on a fresh bucket named
    <prefix>-<random>, provisioned as the lake bucket is (versioned, SSE-KMS) and deleted after.
    Tests whose sensors list whole days use one: other sessions write into the shared lake."""
    from wallet_lake.lake.provision import ensure_bucket
    from wallet_lake.resources import LakeResource

    own = LakeResource(bucket=f"{prefix}-{uuid.uuid4().hex[:10]}", kms_key_id=base.kms_key_id,
                       s3_endpoint_url=base.s3_endpoint_url, region=base.region)
    s3 = own.client("s3")
    ensure_bucket(s3, own.bucket, base.kms_key_id, base.region or "us-east-1", apply_policy=False)
    try:
        yield own
    finally:
        delete_bucket_and_versions(s3, own.bucket)
