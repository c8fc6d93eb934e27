"""Lake infrastructure, idempotently: the bucket (public access blocked, default SSE-KMS,
versioned with old versions expiring), the KMS key behind an alias (yearly rotation on), and the
Glue database. On AWS this is what Terraform/CloudFormation
would own; locally it provisions the moto server the same way."""

from __future__ import annotations

import json
import string
from pathlib import Path

from wallet_lake.settings import BucketProvisionSettings, OpsSettings, default, env_name, load

# infra/ of the repository (WL_INFRA_DIR where the package is installed without it).
INFRA_DIR = Path(load(OpsSettings).infra_dir or Path(__file__).resolve().parents[2] / "infra")


def ensure_kms_key(kms, alias: str) -> str:
    """Key id behind `alias` (alias/...), creating key and alias when missing; automatic key
    rotation is enabled every time (idempotent: AWS and moto accept it when already on)."""
    key_id = _existing_key_id(kms, alias)
    if key_id is None:
        key_id = kms.create_key(Description="wallet-lake data at rest", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    kms.enable_key_rotation(KeyId=key_id)
    return key_id


def _existing_key_id(kms, key: str) -> str | None:
    if not key.startswith("alias/"):
        return kms.describe_key(KeyId=key)["KeyMetadata"]["KeyId"]  # a key id or ARN must exist
    try:
        return kms.describe_key(KeyId=key)["KeyMetadata"]["KeyId"]
    except kms.exceptions.NotFoundException:
        return None


def key_arn(kms, key_id: str) -> str:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


# Old versions (overwritten or deleted objects) are kept this many days, then expire.
NONCURRENT_VERSION_DAYS_ENV = env_name(BucketProvisionSettings, "s3_noncurrent_version_days")
DEFAULT_NONCURRENT_VERSION_DAYS = default(BucketProvisionSettings, "s3_noncurrent_version_days")


def noncurrent_version_days(env=None) -> int:
    return load(BucketProvisionSettings, env).s3_noncurrent_version_days


def lifecycle_rules(days: int) -> list[dict]:
    """Expire noncurrent versions after `days`; drop delete markers left with no version behind
    them, and parts of uploads abandoned for a week."""
    return [{
        "ID": "expire-noncurrent-versions",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }]


def ensure_bucket(s3, bucket: str, kms_key_id: str, region: str, apply_policy: bool = True, *,
                  kms_key_arn: str | None = None, noncurrent_days: int = DEFAULT_NONCURRENT_VERSION_DAYS) -> str:
    """The bucket and its settings. Versioning keeps every overwritten or deleted object
    (raw landing objects above all) as a noncurrent version, expired after `noncurrent_days`."""
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
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules(noncurrent_days)})
    ensure_bucket_policy(s3, bucket, apply_policy, kms_key_arn=kms_key_arn)
    return created


def bucket_policy(bucket: str, kms_key_arn: str) -> dict:
    """infra/s3/bucket-policy.json for `bucket`: deny requests without TLS, puts that ask for
    any encryption other than SSE-KMS, and puts that name a KMS key other than the project key
    (see infra/s3/README.md)."""
    text = (INFRA_DIR / "s3" / "bucket-policy.json").read_text()
    return json.loads(string.Template(text).substitute(BUCKET=bucket, KMS_KEY_ARN=kms_key_arn))


def ensure_bucket_policy(s3, bucket: str, apply: bool = True, *, kms_key_arn: str | None = None) -> str:
    """Apply the policy (idempotent): "applied". With apply=False (the local S3 API, moto, which
    enforces Deny statements for Principal "*" without evaluating their conditions, so this policy
    would deny every request) no policy is left on the bucket: "not applied"."""
    if apply:
        if not (kms_key_arn or "").startswith("arn:aws:kms:"):
            raise ValueError(f"the bucket policy pins the project key by its ARN, got {kms_key_arn!r}")
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket, kms_key_arn)))
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
