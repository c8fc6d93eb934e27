"""Spark settings for local runs (dagster-pyspark); Glue sets its own cluster settings."""

from wallet_lake.lake.scratch import spark_local_dir
from wallet_lake.settings import SparkSettings, load
from wallet_lake.transforms.curate import SPARK_CONF


def spark_config() -> dict:
    spark = load(SparkSettings)
    return {
        "spark.master": spark.spark_master,
        "spark.app.name": "wallet-lake",
        "spark.driver.memory": spark.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(spark.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # progress bars are noise in run logs
        # Shuffle blocks and PySpark's files in a folder named after this process, so that the next
        # curation removes what a killed one left (lake/scratch.py); Spark's default, /tmp itself, keeps them.
        "spark.local.dir": spark_local_dir(),
        **SPARK_CONF,
    }
