"""S3 helpers for tests: the lake bucket is versioned (lake/provision.py), so a throwaway bucket
is empty only once every version and delete marker is gone."""

from __future__ import annotations


def delete_bucket_and_versions(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[i:i + 1000], "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
