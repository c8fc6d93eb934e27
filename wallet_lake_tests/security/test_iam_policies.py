"""IAM: one least-privilege policy per role in infra/iam/, checked without AWS (the local AWS API
cannot simulate policies: simulate_custom_policy answers 500).

- each document parses, has no unresolved placeholder, and lints clean with parliament;
- no action has a wildcard; every wildcard resource is a documented exception (exceptions.json);
- every action exists (policyuniverse's catalogue); cloudsplaining sees no escalation/exfiltration;
- each role can do what the pipeline needs (listed below per role) and cannot do what it must not.
The calls every mode really makes are recorded and judged in test_iam_calls.py."""

from __future__ import annotations

import json
import string
from datetime import datetime, timezone
from pathlib import Path

import pytest

from wallet_lake.contracts.landing import (
    CURATED_PREFIX, DAILY_PREFIX, DAY_MANIFEST_PREFIX, MOVERS_MANIFEST_KEY, MOVERS_PREFIX, day_manifest_key,
)
from wallet_lake.contracts.landing import MANIFEST_PREFIX, QUARANTINE_PREFIX, RAW_PREFIX, hour_token, landing_prefix, manifest_key
from wallet_lake.generator.writer import landing_key
from wallet_lake_tests.security.aws_calls import Call
from wallet_lake_tests.security.policy_eval import ALLOW, evaluate

ROOT = Path(__file__).resolve().parents[2]
IAM_DIR = ROOT / "infra" / "iam"
EXCEPTIONS = json.loads((IAM_DIR / "exceptions.json").read_text())
POLICY_FILES = sorted(p.name for p in IAM_DIR.glob("*.json") if p.name != "exceptions.json")

REGION, ACCOUNT = "us-east-1", "123456789012"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VALUES = {
    "ACCOUNT_ID": ACCOUNT, "REGION": REGION, "BUCKET": "wallet-lake", "KMS_KEY_ARN": KEY_ARN,
    "GLUE_DATABASE": "wallet_db", "ATHENA_WORKGROUP": "wallet-lake", "GLUE_JOB_NAME": "wallet-lake-curate", "KMS_ALIAS": "alias/wallet-lake",
}
BUCKET = f"arn:aws:s3:::{VALUES['BUCKET']}"


def obj(key: str) -> str:
    return f"{BUCKET}/{key}"


def secret(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbC123"


def render(name: str) -> dict:
    return json.loads(string.Template((IAM_DIR / name).read_text()).substitute(VALUES))


def statements(name: str) -> list[dict]:
    return render(name)["Statement"]


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


# ---------------------------------------------------------------- what each role needs (from the code)

H = datetime(2026, 11, 24, 13, tzinfo=timezone.utc)
RAW = landing_key(H, seed=42)  # generator.writer: raw/payments/dt=2026/11/24/13/events-42-0000.ndjson
CURATED = f"{CURATED_PREFIX}dt=2026-11-24/merchant_id=m_001/lh-{hour_token(H)}-000.parquet"  # lake/figures.py
QUARANTINE = f"{QUARANTINE_PREFIX}landing_hour={hour_token(H)}/part-000.parquet"
MANIFEST = manifest_key(H)
DAY_FILE = f"{DAILY_PREFIX}dt=2026-11-24/merchant_id=m_001/day-20261124-0123456789ab-00000.parquet"  # lake/compaction.py
MOVERS_FILE = f"{MOVERS_PREFIX}movers-0123456789ab.parquet"
KMS_PUT = {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN}
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
VIA_SECRETS = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}
RESULT = "athena-results/8d1f0c52-3c2e-4a0b-9d9e-2b7f6c1e0a11.csv"
WORKGROUP = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/wallet-lake"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"


CURATION = [  # lake/curation_run.curate_landing_hour through lake/store.S3LakeStore
    Call("s3:ListBucket", BUCKET, {"s3:prefix": landing_prefix(H)}, "store.list(landing_prefix(hour))"),
    Call("s3:GetObject", obj(RAW), {}, "store.download of each landing object"),
    Call("s3:GetObject", obj(MANIFEST), {}, "read_manifest -> store.get_optional"),
    Call("s3:PutObject", obj(CURATED), KMS_PUT, "store.put_file of curated Parquet"),
    Call("s3:PutObject", obj(QUARANTINE), KMS_PUT, "store.put_file of the quarantine"),
    Call("s3:PutObject", obj(MANIFEST), KMS_PUT, "store.put_bytes of the hour's manifest"),
    Call("s3:AbortMultipartUpload", obj(CURATED), {}, "upload_file aborts a failed multipart upload"),
    Call("s3:DeleteObject", obj(CURATED), {}, "store.delete of the previous run's stale files"),
    Call("s3:DeleteObject", obj(QUARANTINE), {}, "store.delete of the previous run's stale files"),
    Call("kms:GenerateDataKey", KEY_ARN, VIA_S3, "SSE-KMS puts"),
    Call("kms:Decrypt", KEY_ARN, VIA_S3, "reads of SSE-KMS objects"),
]

NEEDS: dict[str, list[Call]] = {
    "glue-curate-job.json": CURATION + [
        Call("s3:GetObject", obj("_glue/scripts/curate_job.py"), {}, "Glue loads wallet_lake/glue/curate_job.py"),
        Call("logs:CreateLogStream", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/output:log-stream:jr_1", {}, "Glue job output"),
        Call("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/error:log-stream:jr_1", {}, "Glue job errors"),
        # On Glue (--in_lake): Spark's output goes through _scratch/ (the JVM's calls: not recordable).
        Call("s3:PutObject", obj("_scratch/curation/20261124T131500-abcd1234/curated/part-0.parquet"), KMS_PUT, "Spark writes its output"),
        Call("s3:GetObject", obj("_scratch/curation/20261124T131500-abcd1234/curated/part-0.parquet"), {}, "curation_run downloads it"),
        Call("s3:DeleteObject", obj("_scratch/curation/20261124T131500-abcd1234/curated/part-0.parquet"), {}, "curation_run deletes leftovers"),
        Call("s3:GetObject", obj("_pipes/context/abc"), {}, "open_dagster_pipes reads its context"),
        Call("s3:PutObject", obj("_pipes/messages/xyz/1.json"), {}, "Pipes messages through S3"),
    ],
    "dagster-code-location.json": CURATION + [
        Call("s3:ListBucket", BUCKET, {"s3:prefix": RAW_PREFIX}, "defs/landing/sensors.py: landing_arrivals_sensor lists raw/payments/"),
        Call("s3:GetObject", obj(CURATED), {}, "lake/reader.read_curated_hour (publish, serving)"),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline"), {}, "security/secrets.py: WL_PG_PIPELINE_PASSWORD_SECRET_ID"),
        Call("secretsmanager:GetSecretValue", secret("AmazonMSK_wallet-lake-producer"), {}, "security/secrets.py: WL_KAFKA_SASL_PASSWORD_SECRET_ID"),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/alert-webhook"), {}, "ops/alerts.py: WL_ALERT_WEBHOOK_URL_SECRET_ID"),
        Call("kms:Decrypt", KEY_ARN, VIA_SECRETS, "secrets encrypted under the project key"),
        Call("glue:StartJobRun", f"{GLUE}:job/wallet-lake-curate", {}, "launcher=glue: PipesGlueClient"),
        Call("glue:GetJobRun", f"{GLUE}:job/wallet-lake-curate", {}, "launcher=glue: PipesGlueClient polls"),
        Call("s3:PutObject", obj("_pipes/context/abc"), {}, "PipesS3ContextInjector"),
        Call("s3:DeleteObject", obj("_pipes/context/abc"), {}, "PipesS3ContextInjector cleans up"),
        Call("s3:GetObject", obj("_pipes/messages/xyz/1.json"), {}, "PipesS3MessageReader"),
        Call("logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/output:log-stream:jr_1", {}, "PipesCloudWatchMessageReader"),
        Call("glue:CreateTable", f"{GLUE}:table/wallet_db/curated_payments_latest", {}, "defs/curated/assets.py: catalog.ensure_catalog"),
        Call("glue:BatchCreatePartition", f"{GLUE}:table/wallet_db/curated_payments", {}, "catalog.register_curated_partitions"),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": DAY_MANIFEST_PREFIX}, "lake/compaction.compact_lake lists the day manifests"),
        Call("s3:GetObject", obj(day_manifest_key(H.date())), {}, "compact_day reads the day's manifest"),
        Call("s3:PutObject", obj(DAY_FILE), KMS_PUT, "compact_day writes the day files"),
        Call("s3:PutObject", obj(day_manifest_key(H.date())), KMS_PUT, "compact_day swaps the day manifest"),
        Call("s3:DeleteObject", obj(DAY_FILE), {}, "compact_day deletes the files it superseded"),
        Call("s3:GetObject", obj(MOVERS_MANIFEST_KEY), {}, "build_movers reads the movers manifest"),
        Call("s3:PutObject", obj(MOVERS_FILE), KMS_PUT, "build_movers writes the index"),
        Call("s3:PutObject", obj(MOVERS_MANIFEST_KEY), KMS_PUT, "build_movers swaps its manifest"),
        Call("s3:DeleteObject", obj(MOVERS_FILE), {}, "build_movers deletes the index it superseded"),
    ],
    "lake-replay.json": [  # lake/replay.py: replay_quarantine
        Call("s3:GetObject", obj(MANIFEST), {}, "read_manifest"),
        Call("s3:GetObject", obj(QUARANTINE), {}, "read_quarantine_hour_table"),
        Call("s3:GetObject", obj(f"{landing_prefix(H)}replay-0123456789abcdef.ndjson"), {}, "get_optional: written already?"),
        Call("s3:ListBucket", BUCKET, {}, "so that a missing replay object answers 404, not 403"),
        Call("s3:PutObject", obj(f"{landing_prefix(H)}replay-0123456789abcdef.ndjson"), KMS_PUT, "put_bytes of the repaired lines"),
        Call("kms:GenerateDataKey", KEY_ARN, VIA_S3, "SSE-KMS puts"),
        Call("kms:Decrypt", KEY_ARN, VIA_S3, "reads of SSE-KMS objects"),
    ],
    "api-lake-queries.json": [  # lake/query.py AthenaLake through pyathena (and DuckDB over pyarrow S3)
        Call("athena:StartQueryExecution", WORKGROUP, {}, "pyathena cursor.execute"),
        Call("athena:GetQueryExecution", WORKGROUP, {}, "pyathena polls the query state"),
        Call("athena:GetQueryResults", WORKGROUP, {}, "pyathena fetchall"),
        Call("athena:StopQueryExecution", WORKGROUP, {}, "pyathena cancels on timeout"),
        Call("glue:GetTable", f"{GLUE}:table/wallet_db/curated_payments", {}, "Athena reads the table definition as the caller"),
        Call("glue:GetDatabase", f"{GLUE}:database/wallet_db", {}, "Athena resolves schema_name"),
        Call("glue:GetPartitions", f"{GLUE}:table/wallet_db/curated_payments", {}, "Athena prunes the table's registered partitions"),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": f"{CURATED_PREFIX}dt=2026-11-24/"}, "Athena/pyarrow list dt= partitions"),
        Call("s3:GetObject", obj(CURATED), {}, "Athena/DuckDB read curated Parquet"),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": MANIFEST_PREFIX}, "lake/reader.ManifestIndex lists the hours' manifests"),
        Call("s3:GetObject", obj(MANIFEST), {}, "lake/reader.ManifestIndex reads the manifests that changed"),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": DAY_MANIFEST_PREFIX}, "DuckDB: lake/query.py lists the day manifests"),
        Call("s3:GetObject", obj(day_manifest_key(H.date())), {}, "DuckDB: reads the day manifests that changed"),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": MOVERS_MANIFEST_KEY.rsplit("/", 1)[0] + "/"}, "DuckDB: lists the movers manifest"),
        Call("s3:GetObject", obj(MOVERS_MANIFEST_KEY), {}, "DuckDB: reads the movers manifest"),
        Call("s3:GetObject", obj(DAY_FILE), {}, "DuckDB reads the compacted Parquet"),
        Call("s3:GetObject", obj(MOVERS_FILE), {}, "DuckDB reads the movers index"),
        Call("s3:GetBucketLocation", BUCKET, {}, "Athena checks the results bucket"),
        Call("s3:PutObject", obj(RESULT), KMS_PUT, "Athena writes results as the caller (WL_ATHENA_OUTPUT)"),
        Call("s3:GetObject", obj(RESULT), {}, "pyathena reads results"),
        Call("kms:Decrypt", KEY_ARN, VIA_S3, "SSE-KMS curated objects"),
        Call("kms:GenerateDataKey", KEY_ARN, VIA_S3, "SSE-KMS query results"),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-api"), {}, "security/secrets.py resolve_secret for the API's Postgres password"),
    ],
    "kafka-connect.json": [  # the sink's config provider on AWS (locally: the env provider)
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-sink"), {}, "connection.password of the JDBC sink (its own role)"),
        Call("secretsmanager:GetSecretValue", secret("AmazonMSK_wallet-lake-connect"), {}, "the worker's SASL/SCRAM password"),
        Call("kms:Decrypt", KEY_ARN, VIA_SECRETS, "secrets encrypted under the project key"),
    ],
    "key-admin.json": [  # python -m api.keys (api/settings.py KeyAdminSettings)
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-keys"), {}, "the key administrator's Postgres password"),
        Call("kms:Decrypt", KEY_ARN, VIA_SECRETS, "secrets encrypted under the project key"),
    ],
    "landing-writer.json": [  # generator/writer.write_generated (the processor's side of the contract)
        Call("s3:PutObject", obj(RAW), KMS_PUT, "store.put_bytes of a landing hour"),
        Call("kms:GenerateDataKey", KEY_ARN, VIA_S3, "SSE-KMS puts"),
    ],
    "provisioner.json": [  # wallet_lake/provision.py aws -> lake/provision.py
        Call("kms:CreateKey", "*", {}, "ensure_kms_key"),
        Call("kms:CreateAlias", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/wallet-lake", {}, "ensure_kms_key"),
        Call("kms:EnableKeyRotation", KEY_ARN, {}, "ensure_kms_key"),
        Call("s3:PutBucketVersioning", BUCKET, {}, "ensure_bucket"),
        Call("s3:PutLifecycleConfiguration", BUCKET, {}, "ensure_bucket: noncurrent versions expire"),
        Call("kms:CreateAlias", KEY_ARN, {}, "ensure_kms_key (the alias's target key)"),
        Call("kms:DescribeKey", KEY_ARN, {}, "ensure_kms_key"),
        Call("s3:ListBucket", BUCKET, {}, "ensure_bucket: head_bucket"),
        Call("s3:CreateBucket", BUCKET, {}, "ensure_bucket"),
        Call("s3:PutBucketPublicAccessBlock", BUCKET, {}, "ensure_bucket"),
        Call("s3:PutEncryptionConfiguration", BUCKET, {}, "ensure_bucket: default SSE-KMS"),
        Call("s3:PutBucketPolicy", BUCKET, {}, "ensure_bucket_policy"),
        Call("s3:DeleteBucketPolicy", BUCKET, {}, "ensure_bucket_policy(apply=False)"),
        Call("glue:GetDatabase", f"{GLUE}:database/wallet_db", {}, "ensure_glue_database"),
        Call("glue:CreateDatabase", f"{GLUE}:database/wallet_db", {}, "ensure_glue_database"),
        Call("glue:CreateDatabase", f"{GLUE}:catalog", {}, "ensure_glue_database"),
    ],
}

# What each role must not be able to do (a sample of the obvious abuses, per role).
MUST_NOT: dict[str, list[Call]] = {
    "glue-curate-job.json": [
        Call("s3:DeleteBucket", BUCKET), Call("s3:PutBucketPolicy", BUCKET), Call("s3:DeleteObject", obj(RAW)),
        Call("s3:PutObject", obj(RAW), KMS_PUT), Call("s3:GetObject", obj(RESULT)), Call("kms:Decrypt", KEY_ARN),
        Call("kms:ScheduleKeyDeletion", KEY_ARN), Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline")),
        Call("glue:DeleteTable", f"{GLUE}:table/wallet_db/curated_payments"), Call("athena:StartQueryExecution", WORKGROUP),
        Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin"), Call("glue:StartJobRun", f"{GLUE}:job/wallet-lake-curate"),
    ],
    "dagster-code-location.json": [
        Call("s3:DeleteBucket", BUCKET), Call("s3:PutBucketPolicy", BUCKET), Call("s3:DeleteObject", obj(RAW)),
        Call("s3:PutObject", obj(RAW), KMS_PUT), Call("s3:DeleteObject", obj(MANIFEST)), Call("kms:Decrypt", KEY_ARN),
        Call("kms:ScheduleKeyDeletion", KEY_ARN), Call("secretsmanager:GetSecretValue", secret("AmazonMSK_wallet-lake-connect")),
        Call("secretsmanager:PutSecretValue", secret("wallet-lake/postgres-pipeline")), Call("glue:CreateDatabase", f"{GLUE}:database/wallet_db"),
        Call("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x"), Call("glue:StartJobRun", f"{GLUE}:job/another-job"),
        Call("glue:DeleteTable", f"{GLUE}:table/wallet_db/curated_payments"), Call("s3:PutObject", obj("_scratch/curation/x"), KMS_PUT),
    ],
    "api-lake-queries.json": [
        Call("s3:PutObject", obj(CURATED), KMS_PUT), Call("s3:PutObject", obj(RAW), KMS_PUT), Call("s3:PutObject", obj(MANIFEST), KMS_PUT),
        Call("s3:PutObject", obj(QUARANTINE), KMS_PUT), Call("s3:DeleteObject", obj(CURATED)), Call("s3:DeleteObject", obj(RESULT)),
        Call("s3:GetObject", obj(RAW)), Call("s3:GetObject", obj(QUARANTINE)), Call("s3:ListBucket", BUCKET, {"s3:prefix": RAW_PREFIX}),
        Call("glue:UpdateTable", f"{GLUE}:table/wallet_db/curated_payments"), Call("athena:DeleteWorkGroup", WORKGROUP),
        Call("athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary"),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline")), Call("kms:Decrypt", KEY_ARN),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-keys")),
    ],
    "key-admin.json": [
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-api")), Call("s3:GetObject", obj(CURATED)),
        Call("kms:Decrypt", KEY_ARN, VIA_S3), Call("secretsmanager:PutSecretValue", secret("wallet-lake/postgres-keys")),
    ],
    "kafka-connect.json": [
        Call("s3:GetObject", obj(CURATED)), Call("secretsmanager:GetSecretValue", secret("AmazonMSK_wallet-lake-producer")),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/alert-webhook")), Call("kms:GenerateDataKey", KEY_ARN, VIA_S3),
        Call("kms:Decrypt", KEY_ARN, VIA_S3), Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline")),
    ],
    "landing-writer.json": [
        Call("s3:GetObject", obj(RAW)), Call("s3:DeleteObject", obj(RAW)), Call("s3:PutObject", obj(CURATED), KMS_PUT),
        Call("s3:ListBucket", BUCKET, {"s3:prefix": RAW_PREFIX}), Call("kms:Decrypt", KEY_ARN, VIA_SECRETS),
    ],
    "lake-replay.json": [
        Call("s3:PutObject", obj(RAW), KMS_PUT), Call("s3:GetObject", obj(RAW)), Call("s3:DeleteObject", obj(QUARANTINE)),
        Call("s3:PutObject", obj(CURATED), KMS_PUT), Call("s3:PutObject", obj(MANIFEST), KMS_PUT), Call("s3:GetObject", obj(CURATED)),
        Call("kms:Decrypt", KEY_ARN), Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline")),
    ],
    "provisioner.json": [
        Call("s3:GetObject", obj(CURATED)), Call("s3:PutObject", obj(RAW), KMS_PUT), Call("s3:DeleteBucket", BUCKET),
        Call("kms:ScheduleKeyDeletion", KEY_ARN), Call("kms:Decrypt", KEY_ARN, VIA_S3),
        Call("secretsmanager:GetSecretValue", secret("wallet-lake/postgres-pipeline")), Call("glue:DeleteDatabase", f"{GLUE}:database/wallet_db"),
    ],
}


# ---------------------------------------------------------------- documents, lint, wildcards


def test_every_role_has_a_policy_and_a_readme_row():
    assert set(POLICY_FILES) == set(NEEDS) == set(MUST_NOT)
    readme = (IAM_DIR / "README.md").read_text()
    for name in POLICY_FILES:
        assert f"`{name}`" in readme, f"infra/iam/README.md has no row for {name}"


@pytest.mark.parametrize("name", POLICY_FILES)
def test_policy_is_a_complete_identity_policy_with_named_statements(name):
    text = string.Template((IAM_DIR / name).read_text())
    placeholders = {m.group("named") or m.group("braced") for m in text.pattern.finditer(text.template) if m.group("named") or m.group("braced")}
    assert placeholders <= set(VALUES), f"unknown placeholders {placeholders - set(VALUES)}"
    doc = render(name)
    assert doc["Version"] == "2012-10-17"
    sids = [st["Sid"] for st in doc["Statement"]]
    assert len(sids) == len(set(sids))
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow" and "Action" in st and "Resource" in st, st["Sid"]
        assert "NotAction" not in st and "NotResource" not in st and "Principal" not in st, st["Sid"]


@pytest.mark.parametrize("name", POLICY_FILES)
def test_policy_lints_clean_with_parliament(name):
    from parliament import analyze_policy_string

    doc = json.dumps(render(name))
    accepted = {e["issue"] for e in EXCEPTIONS["lint_findings"] if e["policy"] == name}
    findings = analyze_policy_string(doc, include_community_auditors=True).findings
    undocumented = [(f.issue, f.detail) for f in findings if f.issue not in accepted]
    assert undocumented == [], "parliament findings not accepted in infra/iam/exceptions.json"


@pytest.mark.parametrize("name", POLICY_FILES)
def test_no_action_has_a_wildcard(name):
    for st in statements(name):
        for action in _as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{name} {st['Sid']}: {action}"


def test_wildcard_resources_are_exactly_the_documented_exceptions():
    found = set()
    for name in POLICY_FILES:
        raw = json.loads((IAM_DIR / name).read_text())  # unrendered: exceptions name placeholders
        for st in raw["Statement"]:
            for resource in _as_list(st["Resource"]):
                if "*" in resource.replace("${", "") or "?" in resource:
                    found.add((name, resource))
    documented = {(e["policy"], e["resource"]) for e in EXCEPTIONS["wildcards"]}
    assert found - documented == set(), "wildcard resources without a documented reason"
    assert documented - found == set(), "exceptions.json lists wildcards no policy has"
    assert {e["reason"] for e in EXCEPTIONS["wildcards"]} <= set(EXCEPTIONS["wildcard_reasons"])
    # Never the whole bucket's objects nor everything of a service.
    assert not [r for _, r in found if r.endswith(":::${BUCKET}/*") or r.endswith(":*:*")]


@pytest.mark.parametrize("name", POLICY_FILES)
def test_every_action_is_a_real_aws_action(name):
    from policyuniverse import all_permissions

    unknown = [a for st in statements(name) for a in _as_list(st["Action"]) if a.lower() not in all_permissions]
    assert unknown == []


@pytest.mark.parametrize("name", POLICY_FILES)
def test_cloudsplaining_finds_no_escalation_exfiltration_or_unconstrained_writes(name):
    from cloudsplaining.scan.policy_document import PolicyDocument

    doc = PolicyDocument(render(name))
    assert doc.allows_privilege_escalation == []
    assert doc.allows_data_exfiltration_actions == []
    assert doc.permissions_management_without_constraints == []
    assert doc.write_actions_without_constraints == [] or name == "provisioner.json" and doc.write_actions_without_constraints == ["kms:CreateKey"]


# ---------------------------------------------------------------- can do what it needs, not more


@pytest.mark.parametrize("name,call", [(n, c) for n, calls in NEEDS.items() for c in calls], ids=lambda v: str(v))
def test_role_can_do_what_the_pipeline_needs(name, call):
    assert evaluate(statements(name), call.action, call.resource, call.context) == ALLOW, f"{name} cannot {call} ({call.why})"


@pytest.mark.parametrize("name,call", [(n, c) for n, calls in MUST_NOT.items() for c in calls], ids=lambda v: str(v))
def test_role_cannot_do_more_than_it_needs(name, call):
    assert evaluate(statements(name), call.action, call.resource, call.context) != ALLOW, f"{name} can {call}"


def test_every_aws_service_the_code_calls_is_covered_by_some_policy():
    """A drift alarm: a new boto3 client (or Athena via pyathena) in the code needs a policy."""
    import re

    sources = [p for d in ("wallet_lake", "api") for p in (ROOT / d).rglob("*.py")]
    services = set()
    for p in sources:
        text = p.read_text()
        services |= set(re.findall(r"""(?:boto3\.client|\.client)\(\s*["']([a-z0-9-]+)["']""", text))
        if "pyathena" in text:
            services.add("athena")
    covered = {a.split(":")[0] for name in POLICY_FILES for st in statements(name) for a in _as_list(st["Action"])}
    assert services, "no AWS client found in the code: the scan is broken"
    assert services <= covered, f"services without a policy: {services - covered}"
