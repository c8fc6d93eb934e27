"""IAM derived from what the code calls: every mode runs against the local AWS API with each AWS
call recorded and tagged with its role (record_modes.py); each call is mapped to the IAM
requests AWS would authorize (aws_calls.py) and judged against that role's policy in infra/iam/
with the explicit evaluator (moto does not evaluate IAM). Then the reverse: every action of
every statement is used by some recorded call, or is listed in exceptions.json "unrecorded"
with its reason. Recorded puts are also judged against the bucket policy."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest

from wallet_lake.lake import catalog
from wallet_lake.lake.provision import bucket_policy
from wallet_lake_tests.security.aws_calls import Call, Env, iam_calls_of
from wallet_lake_tests.security.policy_eval import ALLOW, DENY, action_matches, evaluate, statement_applies

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IAM_DIR = ROOT / "infra" / "iam"
EXCEPTIONS = json.loads((IAM_DIR / "exceptions.json").read_text())
POLICY_FILES = sorted(p.name for p in IAM_DIR.glob("*.json") if p.name != "exceptions.json")
RECORDED_ROLES = sorted(set(POLICY_FILES) - {"kafka-connect.json"})  # Connect is Java: nothing to record
REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's


@pytest.fixture(scope="module")
def recording(stack_resources) -> dict:
    proc = subprocess.run([sys.executable, "-m", "wallet_lake_tests.security.record_modes"], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-6000:]
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    names = data["names"]
    env = Env(REGION, ACCOUNT, names["key_arn"])
    location = catalog.curated_table_input(names["bucket"])["StorageDescriptor"]["Location"]
    tables = {(names["database"], catalog.CURATED_TABLE): location}
    by_role = {role: iam_calls_of([c for c in data["calls"] if c["role"] == role], env, tables) for role in POLICY_FILES}
    values = {"ACCOUNT_ID": ACCOUNT, "REGION": REGION, "BUCKET": names["bucket"], "KMS_KEY_ARN": names["key_arn"],
              "GLUE_DATABASE": names["database"], "ATHENA_WORKGROUP": names["workgroup"], "GLUE_JOB_NAME": names["job"],
              "KMS_ALIAS": names["alias"]}
    return {"names": names, "raw": data["calls"], "calls": by_role, "values": values}


def statements(name: str, values: dict) -> list[dict]:
    return json.loads(string.Template((IAM_DIR / name).read_text()).substitute(values))["Statement"]


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def test_every_mode_made_its_characteristic_calls(recording):
    ops = {(c["role"], c["service"], c["operation"]) for c in recording["raw"]}
    expected = {
        ("provisioner.json", "kms", "CreateKey"), ("provisioner.json", "kms", "EnableKeyRotation"),
        ("provisioner.json", "s3", "CreateBucket"), ("provisioner.json", "s3", "PutBucketVersioning"),
        ("provisioner.json", "s3", "PutBucketLifecycleConfiguration"), ("provisioner.json", "glue", "CreateDatabase"),
        ("landing-writer.json", "s3", "PutObject"),
        ("dagster-code-location.json", "glue", "CreateTable"), ("dagster-code-location.json", "glue", "UpdateTable"),
        ("dagster-code-location.json", "glue", "BatchCreatePartition"), ("dagster-code-location.json", "glue", "StartJobRun"),
        ("dagster-code-location.json", "glue", "GetJobRun"), ("dagster-code-location.json", "s3", "DeleteObjects"),
        ("dagster-code-location.json", "logs", "GetLogEvents"), ("dagster-code-location.json", "secretsmanager", "GetSecretValue"),
        ("glue-curate-job.json", "s3", "PutObject"), ("glue-curate-job.json", "logs", "PutLogEvents"),
        ("lake-replay.json", "s3", "PutObject"),
        ("api-lake-queries.json", "athena", "StartQueryExecution"), ("api-lake-queries.json", "secretsmanager", "GetSecretValue"),
        ("key-admin.json", "secretsmanager", "GetSecretValue"),
    }
    assert expected - ops == set()
    assert {c["role"] for c in recording["raw"]} == set(RECORDED_ROLES)


@pytest.mark.parametrize("role", RECORDED_ROLES)
def test_role_allows_every_call_its_mode_makes(recording, role):
    policy = statements(role, recording["values"])
    denied = sorted({f"{c} {c.context or ''} ({c.why})" for c in recording["calls"][role] if evaluate(policy, c.action, c.resource, c.context) != ALLOW})
    assert denied == [], f"{role} would refuse calls its code makes on AWS"


def _unrecorded(name: str) -> set[tuple[str, str]]:
    return {(e["sid"], e["action"]) for e in EXCEPTIONS["unrecorded"] if e["policy"] == name}


@pytest.mark.parametrize("role", POLICY_FILES)
def test_every_statement_action_is_used_by_a_recorded_call_or_excepted(recording, role):
    calls: list[Call] = recording["calls"][role]
    unused = set()
    for st in statements(role, recording["values"]):
        for action in _as_list(st["Action"]):
            single = {**st, "Action": action}
            if not any(action_matches(action, c.action) and statement_applies(single, c.action, c.resource, c.context) for c in calls):
                unused.add((st["Sid"], action))
    excepted = _unrecorded(role)
    assert unused - excepted == set(), f"{role}: grants no recorded call needs (remove them, or list them in exceptions.json 'unrecorded')"
    assert excepted - unused == set(), f"{role}: exceptions.json 'unrecorded' lists grants the recording does use"
    assert all(e["reason"] for e in EXCEPTIONS["unrecorded"])


def test_recorded_puts_pass_the_bucket_policy_when_the_key_is_named_by_its_arn(recording):
    """On AWS WL_KMS_KEY_ID is the key's ARN (the policy compares the header as sent); the
    recording named the key by its alias, as the local stack does."""
    names = recording["names"]
    policy = bucket_policy(names["bucket"], names["key_arn"])["Statement"]
    puts = [c for calls in recording["calls"].values() for c in calls if c.action == "s3:PutObject"]
    assert puts
    for c in puts:
        context = {**c.context, "aws:SecureTransport": "true"}
        if context.get("s3:x-amz-server-side-encryption-aws-kms-key-id") == names["alias"]:
            context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = names["key_arn"]
        assert evaluate(policy, c.action, c.resource, context) != DENY, f"{c} {context} ({c.why})"
    # And a put naming the alias itself would be refused: the reason for the ARN on AWS.
    named = [c for c in puts if c.context.get("s3:x-amz-server-side-encryption-aws-kms-key-id") == names["alias"]]
    assert named and evaluate(policy, "s3:PutObject", named[0].resource, {**named[0].context, "aws:SecureTransport": "true"}) == DENY


def test_the_writer_cannot_do_the_pipelines_part_and_the_api_can_at_most_read(recording):
    pipeline = recording["calls"]["dagster-code-location.json"]
    writer, api = (statements(n, recording["values"]) for n in ("landing-writer.json", "api-lake-queries.json"))
    assert [c for c in pipeline if evaluate(writer, c.action, c.resource, c.context) != ALLOW]
    allowed = {c.action for c in pipeline if evaluate(api, c.action, c.resource, c.context) == ALLOW}
    assert allowed <= {"s3:GetObject", "s3:ListBucket", "kms:Decrypt", "kms:GenerateDataKey", "glue:GetTable"}
