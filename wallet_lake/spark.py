"""Spark settings for local runs (dagster-pyspark); Glue sets its own cluster settings."""

import os

from wallet_lake.transforms.curate import SPARK_CONF


def spark_config() -> dict:
    return {
        "spark.master": os.environ.get("WL_SPARK_MASTER", "local[2]"),
        "spark.app.name": "wallet-lake",
        "spark.driver.memory": os.environ.get("WL_SPARK_DRIVER_MEMORY", "2g"),
        "spark.sql.shuffle.partitions": os.environ.get("WL_SPARK_SHUFFLE_PARTITIONS", "4"),
        "spark.ui.enabled": "false",
        **SPARK_CONF,
    }
