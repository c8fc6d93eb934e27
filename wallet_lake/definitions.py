"""The wallet-lake Dagster code location: everything under defs/ plus the shared resources."""

from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource

from wallet_lake.defs.ops.freshness import with_freshness_policy
from wallet_lake.resources import dagster_env, resource_values
from wallet_lake.spark import spark_config


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent / "defs"),
        dg.Definitions(resources={**resource_values(dagster_env), "pyspark": PySparkResource(spark_config=spark_config())}),
    ).map_asset_specs(func=with_freshness_policy)  # cross-cutting: every asset's freshness (defs/ops/freshness.py)
