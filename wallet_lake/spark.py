"""Spark settings for local runs (dagster-pyspark); Glue sets its own cluster settings."""

from wallet_lake.lake.scratch import spark_local_dir
from wallet_lake.lake.spark_runner import WRITE_PARTITIONS_CONF
from wallet_lake.settings import SparkSettings, load
from wallet_lake.transforms.curate import SPARK_CONF


def spark_config() -> dict:
    spark = load(SparkSettings)
    local = spark_local_dir()
    return {
        "spark.master": spark.spark_master,
        "spark.app.name": "wallet-lake",
        "spark.driver.memory": spark.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(spark.spark_shuffle_partitions),
        WRITE_PARTITIONS_CONF: str(spark.spark_write_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # progress bars are noise in run logs
        # What Spark's status store keeps of past work, which nothing reads here (no UI): at the
        # defaults (1,000 jobs, stages and SQL executions) the curation worker's heap after a full GC
        # grew to 182-199 MB over 250-400 curations, against 110-138 MB with these (docs/benchmarks.md).
        "spark.ui.retainedJobs": "50",
        "spark.ui.retainedStages": "100",
        "spark.sql.ui.retainedExecutions": "50",
        "spark.ui.retainedTasks": "10000",
        # Shuffle blocks and PySpark's files in a folder named after this process, so that the next
        # curation removes what a killed one left (lake/scratch.py); Spark's default, /tmp itself, keeps them.
        "spark.local.dir": local,
        # The driver JVM's temp folder too: the native library lz4-java unpacks in every JVM (~170 KB,
        # left in /tmp by each one here) and Spark's own temp folders.
        "spark.driver.extraJavaOptions": f'-Djava.io.tmpdir="{local}"',
        **SPARK_CONF,
    }
