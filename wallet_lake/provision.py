"""Provision what the pipeline needs outside its own runs, idempotently:
`python -m wallet_lake.provision [all|aws|postgres|kafka|connect]`.

aws: bucket + KMS key + Glue database; postgres: migrations; kafka: the curated topic;
connect: the Postgres sink connector. stack/wallet-stack up runs `all`."""

from __future__ import annotations

import argparse
import logging

from wallet_lake.resources import resources_from_os_env

log = logging.getLogger("wallet_lake.provision")


def provision_aws(res) -> None:
    from wallet_lake.lake.provision import ensure_bucket, ensure_glue_database, ensure_kms_key
    import os

    lake = res["lake"]
    key_id = ensure_kms_key(lake.client("kms"), lake.kms_key_id)
    log.info("kms key %s -> %s", lake.kms_key_id, key_id)
    log.info("bucket %s: %s", lake.bucket, ensure_bucket(lake.client("s3"), lake.bucket, key_id, lake.region or "us-east-1"))
    db = os.environ.get("WL_GLUE_DATABASE", "wallet_db")
    log.info("glue database %s: %s", db, ensure_glue_database(lake.client("glue"), db))


def provision_postgres(res) -> None:
    from wallet_lake.serving.migrate import migrate

    pg = res["postgres"]
    applied = migrate(pg.host, pg.port, pg.user, pg.password, pg.dbname)
    log.info("postgres migrations applied: %s", applied or "none (up to date)")


def provision_kafka(res) -> None:
    from wallet_lake.publish.topic import curated_topic_spec, ensure_topic

    k = res["kafka"]
    log.info("topic %s: %s", k.topic, ensure_topic(k.admin(), curated_topic_spec(k.topic, k.replication_factor)))


def provision_connect(res) -> None:
    from wallet_lake.serving.connect import ConnectClient
    from wallet_lake.serving.deploy import sink_connector_config

    c = res["connect"]
    client = ConnectClient(c.url)
    log.info("connector %s: %s", c.connector_name, client.deploy(c.connector_name, sink_connector_config(res)))
    client.wait_running(c.connector_name)


STEPS = {"aws": provision_aws, "postgres": provision_postgres, "kafka": provision_kafka, "connect": provision_connect}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", *STEPS])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[provision] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    res = resources_from_os_env()
    for name, step in STEPS.items():
        if args.what in ("all", name):
            step(res)


if __name__ == "__main__":
    main()
