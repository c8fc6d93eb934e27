"""AWS Glue 5.x job entry point for curated_payments: a thin adapter over the pure rules.

    --landing_hour 2026-11-24T13   (explicit arguments, no job bookmarks: reruns are idempotent)
    --lake_uri s3://wallet-lake    --kms_key_id alias/wallet-lake   [--s3_endpoint_url ...]

Runs under Glue (getResolvedOptions, GlueContext) or plain local pyspark (argparse). When
launched by Dagster Pipes it reports the hour's figures back as materialization metadata."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

ARGS = ["landing_hour", "lake_uri", "kms_key_id"]
OPTIONAL_ARGS = ["s3_endpoint_url"]


def parse_args(argv: list[str]) -> dict:
    try:  # inside Glue
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

        present = [a for a in OPTIONAL_ARGS if f"--{a}" in argv]
        return getResolvedOptions(argv, ARGS + present)
    except ImportError:
        p = argparse.ArgumentParser(description="curate one landing hour")
        for a in ARGS:
            p.add_argument(f"--{a}", required=True)
        for a in OPTIONAL_ARGS:
            p.add_argument(f"--{a}")
        known, _ = p.parse_known_args(argv[1:])  # Glue adds its own --JOB_* arguments
        return vars(known)


def spark_session():
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        return GlueContext(SparkContext.getOrCreate()).spark_session
    except ImportError:
        from pyspark.sql import SparkSession

        from wallet_lake.spark import spark_config

        builder = SparkSession.builder
        for k, v in spark_config().items():
            builder = builder.config(k, v)
        return builder.getOrCreate()


def main(argv: list[str] | None = None) -> dict:
    from dataclasses import asdict

    from wallet_lake.lake.curation_run import curate_landing_hour
    from wallet_lake.lake.store import open_lake

    args = parse_args(argv or sys.argv)
    hour = datetime.strptime(args["landing_hour"], "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    spark = spark_session()
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # the rules are defined in UTC
    store = open_lake(args["lake_uri"], kms_key_id=args["kms_key_id"], s3_endpoint_url=args.get("s3_endpoint_url"))
    stats = curate_landing_hour(spark, store, hour, datetime.now(timezone.utc).replace(microsecond=0))
    if not stats.accounted:
        raise RuntimeError(f"landing hour {args['landing_hour']} is not accounted for: {asdict(stats)}")
    return asdict(stats)


if __name__ == "__main__":
    result = main()
    print({k: v for k, v in result.items() if not k.endswith("_keys")})
