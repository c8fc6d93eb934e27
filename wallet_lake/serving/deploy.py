"""The Postgres sink connector's config for this deployment (rendered from connect/).

`flavor="debezium"` is what this project runs (Debezium JDBC sink, bundled in the local stack);
`flavor="confluent"` renders the same sink mapped to Confluent's JDBC sink for Confluent
Platform users (its plugin is not installed here, so that mapping is rendered and checked, not run)."""

from __future__ import annotations

import json
from typing import Mapping
from urllib.parse import urlencode

from wallet_lake.publish.records import SCHEMA_JSON
from wallet_lake.serving.connect import CONFLUENT_SINK_CONFIG_FILE, CONNECT_DIR, SINK_CONFIG_FILE, render_connector_config
from wallet_lake.serving.connect_worker import SinkSecret

FLAVORS = {"debezium": SINK_CONFIG_FILE, "confluent": CONFLUENT_SINK_CONFIG_FILE}


def sink_connector_config(res: dict, flavor: str = "debezium", env: Mapping[str, str] | None = None) -> dict:
    """The connector config; its password is a reference to the sink's secret in the mode of
    ConnectResource.secrets (connect_worker.SinkSecret; `env` holds NAME_SECRET_ID on AWS, default
    os.environ), resolved by the worker's config provider, never a value."""
    pg, kafka, connect = res["postgres"], res["kafka"], res["connect"]
    secret = SinkSecret.of(connect.secrets, connect.sink_secret, env)
    return render_connector_config(
        {
            "WL_KAFKA_TOPIC": kafka.topic,
            "WL_PG_HOST": pg.host,
            "WL_PG_PORT": str(pg.port),
            "WL_PG_DB": pg.dbname,
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
