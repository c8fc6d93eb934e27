"""The Postgres sink connector's config for this deployment (rendered from connect/).

`flavor="copy"` is what this project runs: its own connector (connect/copy-sink), which loads each
batch by COPY into a temp table and one upsert. `flavor="debezium"` renders the same sink on
Debezium's JDBC sink connector (bundled in the local stack, which a test runs);
`flavor="confluent"` renders the same sink mapped to Confluent's JDBC sink for Confluent
Platform users (its plugin is not installed here, so that mapping is rendered and checked, not run)."""

from __future__ import annotations

import json
from typing import Mapping
from urllib.parse import urlencode

from wallet_lake.publish.records import SCHEMA_JSON
from wallet_lake.serving.connect import (
    CONFLUENT_SINK_CONFIG_FILE, CONNECT_DIR, DEBEZIUM_SINK_CONFIG_FILE, SINK_CONFIG_FILE, render_connector_config,
)
from wallet_lake.serving.connect_worker import SinkSecret

DEFAULT_FLAVOR = "copy"
FLAVORS = {"copy": SINK_CONFIG_FILE, "debezium": DEBEZIUM_SINK_CONFIG_FILE, "confluent": CONFLUENT_SINK_CONFIG_FILE}
# The flavors whose connectors the local stack's worker loads (stack/health.py checks them).
RUN_HERE = ("copy", "debezium")


def connector_class(flavor: str) -> str:
    return json.loads((CONNECT_DIR / FLAVORS[flavor]).read_text())["connector.class"]


def sink_connector_config(res: dict, flavor: str = DEFAULT_FLAVOR, env: Mapping[str, str] | None = None,
                          table: str = "curated_payments") -> dict:
    """The connector config; its password is a reference to the sink's secret in the mode of
    ConnectResource.secrets (connect_worker.SinkSecret; `env` holds NAME_SECRET_ID on AWS, default
    os.environ), resolved by the worker's config provider, never a value. `table`: another table of
    curated_payments' shape, for benchmarks and tests (each flavor names it under its own key)."""
    pg, kafka, connect = res["postgres"], res["kafka"], res["connect"]
    secret = SinkSecret.of(connect.secrets, connect.sink_secret, env)
    return render_connector_config(
        {
            "WL_KAFKA_TOPIC": kafka.topic,
            "WL_PG_HOST": pg.host,
            "WL_PG_PORT": str(pg.port),
            "WL_PG_DB": pg.dbname,
            "WL_PG_TABLE": table,
            # The sink logs in as its own role (INSERT/UPDATE/SELECT on curated_payments only) and
            # verifies the server's certificate like every other client.
            "WL_PG_SINK_USER": connect.pg_sink_user,
            "WL_PG_JDBC_TLS": urlencode({"sslmode": pg.sslmode} | ({"sslrootcert": pg.sslrootcert} if pg.sslrootcert else {})),
            "WL_CONNECT_REPLICATION_FACTOR": str(connect.replication_factor),
            "WL_CONNECT_TASKS_MAX": str(connect.tasks_max),
            "WL_CONNECT_SINK_SECRET_REF": secret.reference(),
            # The value schema (contracts.schema), as a JSON string inside the connector JSON.
            "WL_CONNECT_VALUE_SCHEMA": json.dumps(SCHEMA_JSON)[1:-1],
        },
        CONNECT_DIR / FLAVORS[flavor],
    )
