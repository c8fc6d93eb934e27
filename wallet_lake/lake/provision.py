"""Lake infrastructure, idempotently: the bucket (public access blocked, default SSE-KMS), the
KMS key behind an alias, and the Glue database. On AWS this is what Terraform/CloudFormation
would own; locally it provisions the moto server the same way."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

# infra/ of the repository (WL_INFRA_DIR where the package is installed without it).
INFRA_DIR = Path(os.environ.get("WL_INFRA_DIR", Path(__file__).resolve().parents[2] / "infra"))


def ensure_kms_key(kms, alias: str) -> str:
    """Key id behind `alias` (alias/...), creating key and alias when missing."""
    if not alias.startswith("alias/"):
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except kms.exceptions.NotFoundException:
        key_id = kms.create_key(Description="wallet-lake data at rest", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        return key_id


def ensure_bucket(s3, bucket: str, kms_key_id: str, region: str, apply_policy: bool = True) -> str:
    created = "exists"
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        created = "created"
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}, "BucketKeyEnabled": True}]
        },
    )
    ensure_bucket_policy(s3, bucket, apply_policy)
    return created


def bucket_policy(bucket: str) -> dict:
    """infra/s3/bucket-policy.json for `bucket`: deny requests without TLS and puts that ask for
    any encryption other than SSE-KMS (see infra/s3/README.md)."""
    text = (INFRA_DIR / "s3" / "bucket-policy.json").read_text()
    return json.loads(string.Template(text).substitute(BUCKET=bucket))


def ensure_bucket_policy(s3, bucket: str, apply: bool = True) -> str:
    """Apply the policy (idempotent): "applied". With apply=False (the local S3 API, moto, which
    enforces Deny statements for Principal "*" without evaluating their conditions, so this policy
    would deny every request) no policy is left on the bucket: "not applied"."""
    if apply:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket)))
        return "applied"
    s3.delete_bucket_policy(Bucket=bucket)
    return "not applied"


def ensure_glue_database(glue, name: str) -> str:
    try:
        glue.get_database(Name=name)
        return "exists"
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": name, "Description": "wallet-lake payments lake"})
        return "created"
