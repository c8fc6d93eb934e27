"""Health probes of the local stack's services, used by stack/wallet-stack (exit 0 = healthy).

Each probe talks the service's own protocol, not just its port: a broker that answers
metadata, a Connect worker that has loaded the sink connectors it runs (the project's COPY sink and
Debezium's JDBC sink), an S3 API that lists buckets."""

from __future__ import annotations

import os
import sys

def kafka() -> None:
    # As the provisioning admin (mutual TLS): the SCRAM users may not exist yet on a new broker.
    from wallet_lake.security.kafka_acls import admin_client

    md = admin_client().list_topics(timeout=5)
    if not md.brokers:
        raise SystemExit("no broker in metadata")


def connect() -> None:
    import httpx

    auth = (os.environ["WL_CONNECT_REST_USERNAME"], os.environ["WL_CONNECT_REST_PASSWORD"])
    r = httpx.get(f"{os.environ['WL_CONNECT_URL']}/connector-plugins", auth=auth, timeout=5)
    r.raise_for_status()
    plugins = [p["class"] for p in r.json()]
    from wallet_lake.serving.deploy import RUN_HERE, connector_class

    if missing := [connector_class(f) for f in RUN_HERE if connector_class(f) not in plugins]:
        raise SystemExit(f"{', '.join(missing)} not loaded; plugins: {plugins}")


def aws() -> None:
    import boto3

    boto3.client("s3", endpoint_url=os.environ["WL_S3_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"]).list_buckets()


if __name__ == "__main__":
    {"kafka": kafka, "connect": connect, "aws": aws}[sys.argv[1]]()
