"""Provision what the pipeline needs outside its own runs, idempotently:
`python -m wallet_lake.provision [all | STEP ...]` (steps: aws catalog glue postgres_roles postgres kafka kafka_auth connect).

aws: bucket + KMS key + Glue database; catalog: Glue tables and the latest view; glue: the
curation Glue job (script, package, job); postgres_roles: login roles, their passwords and the
databases (as the cluster administrator); postgres: migrations, then each role's grants (as the
schema owner); kafka: the curated topic;
kafka_auth: SCRAM users and ACLs; connect: the Postgres sink connector. stack/wallet-stack up runs `all`."""

from __future__ import annotations

import argparse
import logging

from wallet_lake.resources import resources_from_os_env

log = logging.getLogger("wallet_lake.provision")


def provision_aws(res) -> None:
    from wallet_lake.lake.provision import ensure_bucket, ensure_glue_database, ensure_kms_key, key_arn
    from wallet_lake.settings import BucketProvisionSettings, GlueSettings, load

    lake, bucket = res["lake"], load(BucketProvisionSettings)
    kms = lake.client("kms")
    key_id = ensure_kms_key(kms, lake.kms_key_id)
    log.info("kms key %s -> %s (automatic rotation on)", lake.kms_key_id, key_id)
    # WL_S3_BUCKET_POLICY=skip on the local S3 API only (moto cannot evaluate the policy's conditions).
    apply_policy, days = bucket.s3_bucket_policy == "apply", bucket.s3_noncurrent_version_days
    status = ensure_bucket(lake.client("s3"), lake.bucket, key_id, lake.region or "us-east-1", apply_policy,
                           kms_key_arn=key_arn(kms, key_id) if apply_policy else None, noncurrent_days=days)
    log.info("bucket %s: %s (versioned, old versions expire after %s days; policy infra/s3/bucket-policy.json %s)",
             lake.bucket, status, days, "applied" if apply_policy else "not applied: WL_S3_BUCKET_POLICY=skip")
    db = load(GlueSettings).glue_database
    log.info("glue database %s: %s", db, ensure_glue_database(lake.client("glue"), db))


def provision_catalog(res) -> None:
    """Glue Data Catalog: raw, curated and quarantine tables and the latest view (lake/catalog.py)."""
    from wallet_lake.lake.catalog import ensure_catalog
    from wallet_lake.settings import GlueSettings, load

    lake = res["lake"]
    db = load(GlueSettings).glue_database
    log.info("glue catalog %s: %s", db, ensure_catalog(lake.client("glue"), db, lake.bucket))


def provision_glue_job(res) -> None:
    """The curation Glue job: script and package under _glue/scripts/, then the job (glue/deploy.py)."""
    from wallet_lake.glue.deploy import deploy_glue_job
    from wallet_lake.settings import GlueSettings, load

    lake, glue = res["lake"], load(GlueSettings)
    name, role = glue.glue_job_name, glue.glue_role_arn
    log.info("glue job %s: %s", name, deploy_glue_job(lake.client("glue"), lake.client("s3"), lake.bucket, lake.kms_key_id,
                                                      role_arn=role, job_name=name))


def provision_postgres_roles(res) -> None:
    from wallet_lake.serving.pg_provision import ensure_roles

    log.info("postgres roles: %s", ", ".join(f"{duty} {state}" for duty, state in ensure_roles().items()))


def provision_postgres(res) -> None:
    from wallet_lake.serving import pg_connect
    from wallet_lake.serving.contract_sql import verify_deployed
    from wallet_lake.serving.migrate import migrate
    from wallet_lake.serving.pg_provision import apply_grants

    owner = pg_connect.connect_kwargs("owner")
    applied = migrate(owner["host"], owner["port"], owner["user"], owner["password"], owner["dbname"], pg_connect.tls_kwargs())
    log.info("postgres migrations applied: %s", applied or "none (up to date)")
    with pg_connect.connect("owner") as conn:
        log.info("postgres grants: %d statements (serving/pg_roles.py)", apply_grants(conn))
        # The migrations must have left what the contracts render (statuses, ranks, latest order).
        verify_deployed(conn)
        log.info("postgres contract objects: the rendering of wallet_lake/contracts (serving/contract_sql.py)")


def provision_kafka(res) -> None:
    from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
    from wallet_lake.security.kafka_acls import admin_client

    k = res["kafka"]
    log.info("topic %s: %s", k.topic, ensure_topic(admin_client(), curated_topic_spec(k.topic, k.replication_factor)))


def provision_kafka_auth(res) -> None:
    """SCRAM users and ACLs of the project's Kafka principals (security/kafka_acls.py)."""
    from wallet_lake.security.kafka_acls import USERS, admin_client, broker_has_authorizer, desired_grants, ensure_acls, ensure_scram_users
    from wallet_lake.security.secrets import resolve_secret

    k, c = res["kafka"], res["connect"]
    admin = admin_client()
    if not broker_has_authorizer(admin):
        log.warning("kafka: the broker runs without an authorizer (docker-compose, or a local broker started before "
                    "SASL/ACLs were configured): users and ACLs not applied. Locally: stop the pid in "
                    ".stack/pids/kafka.pid, then stack/wallet-stack up")
        return
    users = ensure_scram_users(admin, {user: resolve_secret(var) for user, var in USERS.items()})
    counts = ensure_acls(admin, desired_grants(k.topic, c.connector_name), list(USERS))
    log.info("kafka users %s; ACLs: %s", ", ".join(users), counts)


def provision_connect(res) -> None:
    import time

    from wallet_lake.serving.deploy import sink_connector_config
    from wallet_lake.serving.monitor import instance_states

    c = res["connect"]
    client = c.client()
    log.info("connector %s: %s", c.connector_name, client.deploy(c.connector_name, sink_connector_config(res)))

    def failed() -> list[str]:
        status = client.status_or_none(c.connector_name)
        return sorted(i for i, s in (instance_states(status) if status else {}).items() if s == "FAILED")

    # `stack/wallet-stack up` is the operator's recovery after a fault. A sink task whose Postgres
    # stayed away longer than its retries (max.retries x retry.backoff.ms, ~30 s) FAILS and stays
    # FAILED until restarted: restart the failed instances here. One that fails again (a record
    # Postgres refuses) is reported by wait_running below with its trace.
    if stuck := failed():
        log.warning("connector %s: restarting FAILED %s", c.connector_name, ", ".join(stuck))
        client.restart_failed(c.connector_name)
        # The restart is acknowledged before the status shows it: give the instances a moment to
        # leave FAILED, so that wait_running reports only a failure after the restart.
        deadline = time.monotonic() + 30
        while failed() and time.monotonic() < deadline:
            time.sleep(0.5)
    client.wait_running(c.connector_name)


STEPS = {"aws": provision_aws, "catalog": provision_catalog, "glue": provision_glue_job, "postgres_roles": provision_postgres_roles, "postgres": provision_postgres, "kafka": provision_kafka, "kafka_auth": provision_kafka_auth, "connect": provision_connect}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["all"], choices=["all", *STEPS])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[provision] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    res = resources_from_os_env()
    for name, step in STEPS.items():
        if "all" in args.what or name in args.what:
            step(res)


if __name__ == "__main__":
    main()
