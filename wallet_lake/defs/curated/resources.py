"""Resources of the curated stage: the launcher (local Spark or Glue) and a lazy local Spark
session (started only when a run curates locally, so a Glue run starts no JVM here)."""

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.spark import spark_config

defs = dg.Definitions(
    resources={
        "curation_launcher": CurationLauncher(),
        "lazy_pyspark": LazyPySparkResource(spark_config=spark_config()),
    }
)
