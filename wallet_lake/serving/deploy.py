"""The Postgres sink connector's config for this deployment (rendered from connect/)."""

from __future__ import annotations

from wallet_lake.serving.connect import render_connector_config


def sink_connector_config(res: dict) -> dict:
    pg, kafka, connect = res["postgres"], res["kafka"], res["connect"]
    return render_connector_config(
        {
            "WL_KAFKA_TOPIC": kafka.topic,
            "WL_PG_HOST": pg.host,
            "WL_PG_PORT": str(pg.port),
            "WL_PG_DB": pg.dbname,
            "WL_PG_USER": pg.user,
            "WL_CONNECT_REPLICATION_FACTOR": str(connect.replication_factor),
        }
    )
