"""Recorded AWS API calls (call_recorder.py) -> the IAM requests AWS authorizes for them: action,
resource ARN and condition context. Pure: a table per service, no I/O.

Besides the caller's own request, some calls make AWS act on the caller's behalf with the
caller's permissions, and those are added here too:
- S3 SSE-KMS: a put (or a multipart upload's creation) asks KMS for a data key
  (kms:GenerateDataKey); a read, and the parts of a multipart upload, decrypt it (kms:Decrypt);
  every object of the lake is SSE-KMS under the project key (default encryption), so every put
  and read counts. A GetObject/HeadObject of a missing key answers 404 only to a caller allowed
  s3:ListBucket on the bucket (otherwise 403, which the code would not treat as "absent").
- Secrets Manager: reading a secret encrypted under the project key decrypts it (kms:Decrypt).
- Athena: a query reads the Glue table definition and partitions it names, lists and reads the
  table's S3 location and writes its results to the output location, all as the caller
  (AWS: "Access to Amazon S3" and "Fine-grained access to databases and tables" in the Athena
  user guide).
Sources: AWS's "Actions, resources, and condition keys" pages of S3, KMS, Glue, CloudWatch Logs,
Secrets Manager and Athena."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    context: dict = field(default_factory=dict, hash=False, compare=False)
    why: str = ""

    def __str__(self) -> str:
        return f"{self.action} {self.resource}"


@dataclass(frozen=True)
class Env:
    """Where the calls were made: region, account, and the lake's names in that recording."""

    region: str
    account: str
    key_arn: str

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"


def _s3(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    bucket = f"arn:aws:s3:::{p['Bucket']}"
    obj = f"{bucket}/{p.get('Key', '')}"
    kms_via_s3 = {"kms:ViaService": f"s3.{env.region}.amazonaws.com"}
    gen, dec = Call("kms:GenerateDataKey", env.key_arn, kms_via_s3), Call("kms:Decrypt", env.key_arn, kms_via_s3)
    on_bucket = {
        "HeadBucket": "s3:ListBucket", "CreateBucket": "s3:CreateBucket", "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
        "PutBucketEncryption": "s3:PutEncryptionConfiguration", "PutBucketPolicy": "s3:PutBucketPolicy",
        "DeleteBucketPolicy": "s3:DeleteBucketPolicy", "PutBucketVersioning": "s3:PutBucketVersioning",
        "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration", "GetBucketLocation": "s3:GetBucketLocation",
        "GetBucketVersioning": "s3:GetBucketVersioning", "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    }
    if op in on_bucket:
        return [Call(on_bucket[op], bucket)]
    if op in ("ListObjectsV2", "ListObjects"):
        return [Call("s3:ListBucket", bucket, {"s3:prefix": p.get("Prefix", "")})]
    if op in ("GetObject", "HeadObject"):
        calls = [Call("s3:GetObject", obj)] + ([dec] if op == "GetObject" else [])
        if r.get("status") == 404 or r.get("error") in ("NoSuchKey", "404"):
            calls.append(Call("s3:ListBucket", bucket))  # a 404, not a 403, needs ListBucket
        return calls
    if op in ("PutObject", "CreateMultipartUpload"):
        ctx = {}
        if p.get("ServerSideEncryption"):
            ctx["s3:x-amz-server-side-encryption"] = p["ServerSideEncryption"]
        if p.get("SSEKMSKeyId"):
            ctx["s3:x-amz-server-side-encryption-aws-kms-key-id"] = p["SSEKMSKeyId"]
        return [Call("s3:PutObject", obj, ctx), gen] + ([dec] if op == "CreateMultipartUpload" else [])
    if op in ("UploadPart", "CompleteMultipartUpload"):
        return [Call("s3:PutObject", obj), dec]
    if op == "AbortMultipartUpload":
        return [Call("s3:AbortMultipartUpload", obj)]
    if op == "DeleteObject":
        return [Call("s3:DeleteObject", obj)]
    if op == "DeleteObjects":
        return [Call("s3:DeleteObject", f"{bucket}/{k}") for k in p.get("Keys", [])]
    raise KeyError(op)


def _kms_resource(key_id: str, r: dict, env: Env) -> str:
    if r.get("response_arn"):
        return r["response_arn"]  # an alias, resolved by KMS: authorized on its key
    if key_id.startswith("arn:"):
        return key_id
    return env.arn("kms", key_id if key_id.startswith("alias/") else f"key/{key_id}")


def _kms(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    if op == "CreateKey":
        return [Call("kms:CreateKey", "*")]
    if op == "CreateAlias":
        return [Call("kms:CreateAlias", env.arn("kms", p["AliasName"])), Call("kms:CreateAlias", _kms_resource(p["TargetKeyId"], {}, env))]
    if op in ("DescribeKey", "EnableKeyRotation", "GetKeyRotationStatus", "Decrypt", "GenerateDataKey", "Encrypt"):
        return [Call(f"kms:{op}", _kms_resource(p["KeyId"], r, env))]
    raise KeyError(op)


def _glue_table(env: Env, db: str, table: str) -> list[str]:
    return [env.arn("glue", "catalog"), env.arn("glue", f"database/{db}"), env.arn("glue", f"table/{db}/{table}")]


def _glue(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    if op in ("GetDatabase", "CreateDatabase"):
        return [Call(f"glue:{op}", a) for a in (env.arn("glue", "catalog"), env.arn("glue", f"database/{p.get('Name') or p.get('DatabaseName')}"))]
    if op in ("GetTable", "CreateTable", "UpdateTable", "DeleteTable"):
        table = p.get("Name") or p.get("TableName", "")
        return [Call(f"glue:{op}", a) for a in _glue_table(env, p["DatabaseName"], table)]
    if op in ("BatchCreatePartition", "GetPartitions", "GetPartition"):
        return [Call(f"glue:{op}", a) for a in _glue_table(env, p["DatabaseName"], p["TableName"])]
    if op in ("StartJobRun", "GetJobRun", "BatchStopJobRun", "GetJob", "CreateJob", "UpdateJob"):
        return [Call(f"glue:{op}", env.arn("glue", f"job/{p.get('JobName') or p.get('Name')}"))]
    raise KeyError(op)


def _logs(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    group = env.arn("logs", f"log-group:{p['logGroupName']}")
    if op in ("CreateLogGroup", "DescribeLogStreams"):
        return [Call(f"logs:{op}", f"{group}:*")]
    if op in ("CreateLogStream", "PutLogEvents", "GetLogEvents"):
        return [Call(f"logs:{op}", f"{group}:log-stream:{p['logStreamName']}")]
    raise KeyError(op)


def _secretsmanager(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    if op == "GetSecretValue":
        secret_id = p["SecretId"]
        arn = r.get("response_arn") or (secret_id if secret_id.startswith("arn:") else env.arn("secretsmanager", f"secret:{secret_id}-XXXXXX"))
        return [Call("secretsmanager:GetSecretValue", arn),
                Call("kms:Decrypt", env.key_arn, {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"})]
    raise KeyError(op)


_TABLE_IN_SQL = re.compile(r'(?:FROM|JOIN)\s+"?(\w+)"?\."?(\w+)"?', re.IGNORECASE)


def athena_on_behalf(p: dict, env: Env, table_locations: dict[tuple[str, str], str]) -> list[Call]:
    """What Athena does as the caller for one query: the Glue definitions of the tables the SQL
    names, their S3 location (list, read), and the results under the output location."""
    calls: list[Call] = []
    for db, table in sorted(set(_TABLE_IN_SQL.findall(p.get("QueryString", "")))):
        for action in ("glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"):
            calls += [Call(action, a) for a in _glue_table(env, db, table)[: 2 if action == "glue:GetDatabase" else 3]]
        bucket, _, prefix = table_locations[(db, table)].removeprefix("s3://").partition("/")
        calls += [Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix}),
                  Call("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}part-00000.parquet"),
                  Call("kms:Decrypt", env.key_arn, {"kms:ViaService": f"s3.{env.region}.amazonaws.com"})]
    if p.get("OutputLocation"):
        bucket, _, prefix = p["OutputLocation"].removeprefix("s3://").partition("/")
        result = f"arn:aws:s3:::{bucket}/{prefix}{p.get('QueryExecutionId', 'query')}.csv"
        calls += [Call("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}"),
                  Call("s3:ListBucketMultipartUploads", f"arn:aws:s3:::{bucket}"),
                  Call("s3:PutObject", result, {"s3:x-amz-server-side-encryption": "aws:kms"}),
                  Call("s3:ListMultipartUploadParts", result), Call("s3:AbortMultipartUpload", result),
                  Call("kms:GenerateDataKey", env.key_arn, {"kms:ViaService": f"s3.{env.region}.amazonaws.com"})]
    return calls


def _athena(op: str, p: dict, r: dict, env: Env) -> list[Call]:
    if op in ("StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution", "GetWorkGroup"):
        # Calls on a query execution are authorized on its workgroup (iam_calls_of fills it in).
        return [Call(f"athena:{op}", env.arn("athena", f"workgroup/{p.get('WorkGroup') or p['QueryWorkGroup']}"))]
    raise KeyError(op)


SERVICES: dict[str, Callable[[str, dict, dict, Env], list[Call]]] = {
    "s3": _s3, "kms": _kms, "glue": _glue, "logs": _logs, "secretsmanager": _secretsmanager, "athena": _athena,
}


def iam_calls(recorded: dict, env: Env) -> list[Call]:
    """The IAM requests of one recorded call; KeyError names a call this table does not know."""
    service, op, params = recorded["service"], recorded["operation"], recorded["params"]
    if service not in SERVICES:
        raise KeyError(f"{service}:{op}: no IAM mapping for the service (add it to aws_calls.SERVICES)")
    try:
        calls = SERVICES[service](op, params, recorded, env)
    except KeyError as exc:
        raise KeyError(f"{service}:{op}: no IAM mapping for the operation (add it to aws_calls._{service})") from exc
    return [Call(c.action, c.resource, c.context, f"{service}:{op}") for c in calls]


def iam_calls_of(records: list[dict], env: Env, table_locations: dict[tuple[str, str], str] | None = None) -> list[Call]:
    """Every IAM request of a recording, with what Athena does as the caller for each query."""
    workgroups = {r["params"].get("QueryExecutionId"): r["params"].get("WorkGroup") or "primary"
                  for r in records if r["operation"] == "StartQueryExecution"}
    out: list[Call] = []
    for r in records:
        if r["service"] == "athena" and "WorkGroup" not in r["params"]:
            r = {**r, "params": {**r["params"], "QueryWorkGroup": workgroups.get(r["params"].get("QueryExecutionId"), "primary")}}
        out += iam_calls(r, env)
        if r["operation"] == "StartQueryExecution":
            out += [Call(c.action, c.resource, c.context, "athena:StartQueryExecution (as the caller)")
                    for c in athena_on_behalf(r["params"], env, table_locations or {})]
    return out
