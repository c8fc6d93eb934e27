"""Health probes of the local stack's services, used by stack/wallet-stack (exit 0 = healthy).

Each probe talks the service's own protocol, not just its port: a broker that answers
metadata, a Connect worker that has loaded the Debezium JDBC sink, an S3 API that lists buckets."""

from __future__ import annotations

import json
import os
import sys
import urllib.request

DEBEZIUM_SINK = "io.debezium.connector.jdbc.JdbcSinkConnector"


def kafka() -> None:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": os.environ["WL_KAFKA_BOOTSTRAP"]}).list_topics(timeout=5)
    if not md.brokers:
        raise SystemExit("no broker in metadata")


def connect() -> None:
    with urllib.request.urlopen(f"{os.environ['WL_CONNECT_URL']}/connector-plugins", timeout=5) as r:
        plugins = [p["class"] for p in json.load(r)]
    if DEBEZIUM_SINK not in plugins:
        raise SystemExit(f"{DEBEZIUM_SINK} not loaded; plugins: {plugins}")


def aws() -> None:
    import boto3

    boto3.client("s3", endpoint_url=os.environ["WL_S3_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"]).list_buckets()


if __name__ == "__main__":
    {"kafka": kafka, "connect": connect, "aws": aws}[sys.argv[1]]()
