"""Provisioning (lake/provision.py) leaves the bucket versioned with old versions expiring and
the project key rotating, idempotently; checked on what the local AWS API reports."""

from __future__ import annotations

import uuid

import pytest

from wallet_lake.lake.provision import (
    DEFAULT_NONCURRENT_VERSION_DAYS, NONCURRENT_VERSION_DAYS_ENV, ensure_bucket, ensure_kms_key, noncurrent_version_days,
)
from wallet_lake_tests.s3_support import delete_bucket_and_versions


def test_noncurrent_version_days_come_from_the_environment_with_a_default():
    assert noncurrent_version_days({}) == DEFAULT_NONCURRENT_VERSION_DAYS
    assert noncurrent_version_days({NONCURRENT_VERSION_DAYS_ENV: "7"}) == 7
    for bad in ("0", "-1", "seven", "1.5"):
        with pytest.raises(ValueError, match=NONCURRENT_VERSION_DAYS_ENV):
            noncurrent_version_days({NONCURRENT_VERSION_DAYS_ENV: bad})


def _assert_provisioned(s3, kms, bucket: str, key_id: str, days: int) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Status"] == "Enabled" and rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == days
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


@pytest.mark.integration
def test_provisioning_versions_the_bucket_expires_old_versions_and_rotates_the_key_idempotently(stack_resources):
    lake = stack_resources["lake"]
    s3, kms = lake.client("s3"), lake.client("kms")
    tag = uuid.uuid4().hex[:10]
    bucket, alias = f"wl-test-prov-{tag}", f"alias/wl-test-prov-{tag}"
    key_id = ensure_kms_key(kms, alias)
    try:
        assert ensure_bucket(s3, bucket, key_id, "us-east-1", apply_policy=False, noncurrent_days=11) == "created"
        _assert_provisioned(s3, kms, bucket, key_id, 11)
        # Again (as every `stack/wallet-stack up`): same key, same settings, nothing fails.
        assert ensure_kms_key(kms, alias) == key_id
        assert ensure_bucket(s3, bucket, key_id, "us-east-1", apply_policy=False, noncurrent_days=11) == "exists"
        _assert_provisioned(s3, kms, bucket, key_id, 11)
        # Versioning at work: an overwritten object keeps its old version, a delete leaves a marker.
        s3.put_object(Bucket=bucket, Key="raw/payments/x.ndjson", Body=b"1\n")
        s3.put_object(Bucket=bucket, Key="raw/payments/x.ndjson", Body=b"2\n")
        s3.delete_object(Bucket=bucket, Key="raw/payments/x.ndjson")
        versions = s3.list_object_versions(Bucket=bucket, Prefix="raw/payments/")
        assert len(versions.get("Versions", [])) == 2 and len(versions.get("DeleteMarkers", [])) == 1
        assert s3.list_objects_v2(Bucket=bucket, Prefix="raw/payments/").get("KeyCount") == 0  # listings skip them
    finally:
        delete_bucket_and_versions(s3, bucket)
        kms.delete_alias(AliasName=alias)
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


@pytest.mark.integration
def test_the_stacks_lake_bucket_and_key_are_provisioned_so(stack_resources):
    lake = stack_resources["lake"]
    s3, kms = lake.client("s3"), lake.client("kms")
    key_id = kms.describe_key(KeyId=lake.kms_key_id)["KeyMetadata"]["KeyId"]
    _assert_provisioned(s3, kms, lake.bucket, key_id, noncurrent_version_days())
