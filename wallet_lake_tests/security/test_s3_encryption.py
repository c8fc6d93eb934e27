"""S3: every object the project writes is SSE-KMS under the project's key; the bucket blocks
public access, encrypts by default with that key, and ships a policy that denies requests
without TLS and puts asking for any other encryption."""

from __future__ import annotations

import json
from datetime import date
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wallet_lake.lake.provision import bucket_policy, ensure_bucket_policy
from wallet_lake_tests.security.policy_eval import DENY, evaluate

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "infra" / "s3" / "bucket-policy.json"


def _project_key_id(lake) -> str:
    return lake.client("kms").describe_key(KeyId=lake.kms_key_id)["KeyMetadata"]["KeyId"]


# ---------------------------------------------------------------- every object of a full run


@pytest.mark.e2e
@pytest.mark.integration
def test_every_object_in_the_bucket_after_a_full_flow_is_sse_kms_under_the_project_key(stack_resources, full_flow):
    lake = stack_resources["lake"]
    s3, kms = lake.client("s3"), lake.client("kms")
    project_key = _project_key_id(lake)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket) for o in page.get("Contents", [])]
    # The run wrote landing, curated, quarantine and manifest objects; all of them are listed.
    assert set(full_flow.written_keys) <= set(keys)
    assert any(k.startswith("curated/") for k in full_flow.written_keys) and any(k.startswith("quarantine/") for k in full_flow.written_keys)

    with ThreadPoolExecutor(max_workers=8) as pool:
        heads = dict(zip(keys, pool.map(lambda k: s3.head_object(Bucket=lake.bucket, Key=k), keys)))
    not_kms = [k for k, h in heads.items() if h.get("ServerSideEncryption") != "aws:kms"]
    assert not not_kms, f"{len(not_kms)} objects are not SSE-KMS, e.g. {not_kms[:5]}"
    # SSEKMSKeyId may be an alias, key id or ARN (AWS answers the ARN): resolve each to its key.
    named = {h.get("SSEKMSKeyId") for h in heads.values()}
    resolved = {n: kms.describe_key(KeyId=n)["KeyMetadata"]["KeyId"] if n else None for n in named}
    other_key = [k for k, h in heads.items() if resolved[h.get("SSEKMSKeyId")] != project_key]
    assert not other_key, f"{len(other_key)} objects are not under {lake.kms_key_id} ({project_key}), e.g. {other_key[:5]}"


# ---------------------------------------------------------------- bucket configuration


@pytest.mark.integration
def test_provisioned_bucket_blocks_public_access_and_encrypts_by_default_with_the_project_key(stack_resources):
    lake = stack_resources["lake"]
    s3 = lake.client("s3")
    block = s3.get_public_access_block(Bucket=lake.bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    rule = s3.get_bucket_encryption(Bucket=lake.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert lake.client("kms").describe_key(KeyId=default["KMSMasterKeyID"])["KeyMetadata"]["KeyId"] == _project_key_id(lake)


def test_s3_store_refuses_to_write_without_a_kms_key():
    """Without a key the store only reads (the lake query layer's manifest reads); every write
    refuses before any request (nothing listens on port 9: a request would fail otherwise)."""
    from pathlib import Path

    from wallet_lake.lake.store import open_lake

    store = open_lake("s3://wallet-lake", kms_key_id=None, s3_endpoint_url="http://127.0.0.1:9")
    writes = [lambda: store.put_bytes("k", b"x"), lambda: store.put_bytes_if("k", b"x", None), lambda: store.put_file("k", Path(__file__))]
    for write in writes:
        with pytest.raises(ValueError, match="never written unencrypted"):
            write()


# ---------------------------------------------------------------- the bucket policy


PROJECT_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab"


def _statements():
    return bucket_policy("wallet-lake", PROJECT_KEY)["Statement"]


OBJECT = "arn:aws:s3:::wallet-lake/curated/payments/dt=2026-11-24/merchant_id=m1/lh-2026112413-000.parquet"
TLS = {"aws:SecureTransport": "true"}


def test_bucket_policy_file_is_the_one_provisioning_renders():
    rendered = bucket_policy("some-bucket", PROJECT_KEY)
    assert rendered["Version"] == "2012-10-17"
    assert json.dumps(rendered).count("some-bucket") == 4 and json.dumps(rendered).count(PROJECT_KEY) == 1
    assert "${" not in json.dumps(rendered)
    assert json.loads(POLICY_FILE.read_text())["Id"] == rendered["Id"]


@pytest.mark.parametrize("action,resource", [
    ("s3:GetObject", OBJECT), ("s3:PutObject", OBJECT), ("s3:ListBucket", "arn:aws:s3:::wallet-lake"), ("s3:DeleteBucket", "arn:aws:s3:::wallet-lake"),
])
def test_bucket_policy_denies_every_request_without_tls(action, resource):
    context = {"aws:SecureTransport": "false", "s3:x-amz-server-side-encryption": "aws:kms"}
    assert evaluate(_statements(), action, resource, context) == DENY
    assert evaluate(_statements(), action, resource, {**context, **TLS}) != DENY


def test_bucket_policy_denies_puts_that_ask_for_other_than_kms():
    assert evaluate(_statements(), "s3:PutObject", OBJECT, {**TLS, "s3:x-amz-server-side-encryption": "AES256"}) == DENY
    assert evaluate(_statements(), "s3:PutObject", OBJECT, {**TLS, "s3:x-amz-server-side-encryption": "aws:kms"}) != DENY


def test_bucket_policy_lets_headerless_puts_and_multipart_parts_through_to_default_kms():
    # UploadPart is authorized as s3:PutObject and never carries the header (boto/botocore#471);
    # a put without the header is encrypted by the bucket default (SSE-KMS, project key).
    assert evaluate(_statements(), "s3:PutObject", OBJECT, TLS) != DENY


def test_bucket_policy_pins_the_project_key():
    kms_put = {**TLS, "s3:x-amz-server-side-encryption": "aws:kms"}
    assert evaluate(_statements(), "s3:PutObject", OBJECT, {**kms_put, "s3:x-amz-server-side-encryption-aws-kms-key-id": PROJECT_KEY}) != DENY
    assert evaluate(_statements(), "s3:PutObject", OBJECT, {**kms_put, "s3:x-amz-server-side-encryption-aws-kms-key-id": OTHER_KEY}) == DENY
    # The condition compares the header as sent: an alias or a bare key id is refused, so on AWS
    # WL_KMS_KEY_ID is the key's ARN (infra/s3/README.md).
    for named in ("alias/wallet-lake", PROJECT_KEY.rsplit("/", 1)[1]):
        assert evaluate(_statements(), "s3:PutObject", OBJECT, {**kms_put, "s3:x-amz-server-side-encryption-aws-kms-key-id": named}) == DENY
    # No key named: the bucket default applies, which is the project key.
    assert evaluate(_statements(), "s3:PutObject", OBJECT, kms_put) != DENY


def test_provisioning_refuses_to_pin_a_key_that_is_not_an_arn():
    with pytest.raises(ValueError, match="by its ARN"):
        ensure_bucket_policy(None, "wallet-lake", apply=True, kms_key_arn="alias/wallet-lake")


def test_bucket_policy_lints_clean_with_parliament():
    from parliament import analyze_policy_string

    findings = analyze_policy_string(json.dumps(bucket_policy("wallet-lake", PROJECT_KEY)), include_community_auditors=False).findings
    assert [f.issue for f in findings] == []


@pytest.mark.integration
def test_local_s3_api_would_deny_everything_under_the_policy_so_provisioning_skips_it_there(stack_resources):
    """moto enforces Deny statements for Principal "*" and ignores their conditions: applied
    there, the policy would refuse even a KMS-encrypted put. Shown on a
    throwaway bucket, never the shared lake bucket."""
    lake = stack_resources["lake"]
    s3 = lake.client("s3")
    bucket = f"wl-test-policy-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    try:
        key = lake.client("kms").describe_key(KeyId=lake.kms_key_id)["KeyMetadata"]["Arn"]
        assert ensure_bucket_policy(s3, bucket, apply=True, kms_key_arn=key) == "applied"
        assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == bucket_policy(bucket, key)
        with pytest.raises(s3.exceptions.ClientError) as denied:
            s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=lake.kms_key_id)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert ensure_bucket_policy(s3, bucket, apply=False) == "not applied"
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=lake.kms_key_id)
        s3.delete_object(Bucket=bucket, Key="k")
    finally:
        s3.delete_bucket_policy(Bucket=bucket)
        s3.delete_bucket(Bucket=bucket)
    # The shared lake bucket is usable: no policy left on it by the local provisioning.
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=lake.bucket)


@pytest.mark.integration
def test_athena_query_results_are_written_sse_kms_under_the_project_key(stack_resources, monkeypatch):
    """The lake fallback on AWS (WL_LAKE_ENGINE=athena) asks Athena to encrypt the results it
    writes under WL_ATHENA_OUTPUT with the project's key: checked on what the local AWS API
    recorded for the query execution."""
    import os

    from wallet_lake.lake.query import AthenaLake, LakeQueryConfig

    lake = stack_resources["lake"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", lake.s3_endpoint_url)  # boto3's per-service endpoint
    config = LakeQueryConfig.from_env({
        **os.environ, "WL_LAKE_ENGINE": "athena", "WL_ATHENA_OUTPUT": f"s3://{lake.bucket}/athena-results/",
        "WL_ATHENA_WORKGROUP": "primary",
    })
    assert config.kms_key_id == lake.kms_key_id
    athena = lake.client("athena")
    before = set(athena.list_query_executions()["QueryExecutionIds"])
    AthenaLake(config).query("SELECT 1 AS one", {}, scan_from=date(2031, 1, 1))
    [new] = set(athena.list_query_executions()["QueryExecutionIds"]) - before
    result_config = athena.get_query_execution(QueryExecutionId=new)["QueryExecution"]["ResultConfiguration"]
    assert result_config["OutputLocation"].startswith(f"s3://{lake.bucket}/athena-results/")
    assert result_config["EncryptionConfiguration"] == {"EncryptionOption": "SSE_KMS", "KmsKey": lake.kms_key_id}
