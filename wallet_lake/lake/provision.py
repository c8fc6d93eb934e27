"""Lake infrastructure, idempotently: the bucket (public access blocked, default SSE-KMS), the
KMS key behind an alias, and the Glue database. On AWS this is what Terraform/CloudFormation
would own; locally it provisions the moto server the same way."""

from __future__ import annotations


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


def ensure_bucket(s3, bucket: str, kms_key_id: str, region: str) -> str:
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
    return created


def ensure_glue_database(glue, name: str) -> str:
    try:
        glue.get_database(Name=name)
        return "exists"
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": name, "Description": "wallet-lake payments lake"})
        return "created"
