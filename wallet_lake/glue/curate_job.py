"""AWS Glue 5.x job entry point for curated_payments: a thin adapter over the pure rules.

    --landing_hours 2026-11-24T13,2026-11-24T14   (or --landing_hour 2026-11-24T13; explicit
                                                   hours, no job bookmarks: reruns are idempotent)
    --lake_uri s3://wallet-lake   --kms_key_id alias/wallet-lake   [--s3_endpoint_url ...]
    [--run_id ...] [--processed_at 2026-11-25T03:15:42Z] [--in_lake true|false]

All hours of one job run are curated in one Spark application (one pass of jobs). Runs under
Glue (getResolvedOptions, GlueContext; Spark reads and writes the lake through s3:// since
driver and executors share no disk: --in_lake defaults to true there) or under plain local
pyspark (argparse; the driver's disk is the scratch). When launched by Dagster Pipes
(PipesGlueClient adds --dagster-pipes-context/--dagster-pipes-messages) it reports the hours'
figures as the materialization's metadata; messages go to S3 or to stdout (CloudWatch), as the
Dagster side reads them. Without Pipes it exits non-zero when an hour failed a blocking check
(that hour is not published)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone

ARGS = ["lake_uri", "kms_key_id"]
# Per-file lists of an hour's figures: its manifest holds them; they stay out of the Pipes metadata.
FILE_LISTS = ("curated_keys", "quarantine_keys", "partitions", "file_bytes")
OPTIONAL_ARGS = ["landing_hour", "landing_hours", "s3_endpoint_url", "run_id", "processed_at", "in_lake"]


def running_on_glue() -> bool:
    try:
        import awsglue  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def parse_args(argv: list[str]) -> dict:
    if running_on_glue():
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

        present = [a for a in OPTIONAL_ARGS if f"--{a}" in argv]
        return getResolvedOptions(argv, ARGS + present)
    p = argparse.ArgumentParser(description="curate landing hours")
    for a in ARGS:
        p.add_argument(f"--{a}", required=True)
    for a in OPTIONAL_ARGS:
        p.add_argument(f"--{a}")
    known, _ = p.parse_known_args(argv[1:])  # Glue and Pipes add arguments of their own
    return vars(known)


def landing_hours(args: dict) -> list[datetime]:
    text = ",".join(x for x in (args.get("landing_hours"), args.get("landing_hour")) if x)
    hours = [datetime.strptime(h.strip(), "%Y-%m-%dT%H").replace(tzinfo=timezone.utc) for h in text.split(",") if h.strip()]
    if not hours:
        raise SystemExit("give --landing_hours 2026-11-24T13[,2026-11-24T14...] or --landing_hour 2026-11-24T13")
    return hours


def spark_session():
    if running_on_glue():
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    else:
        from pyspark.sql import SparkSession

        from wallet_lake.spark import spark_config

        builder = SparkSession.builder
        for k, v in spark_config().items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()
    from wallet_lake.transforms.curate import SPARK_CONF

    for k, v in SPARK_CONF.items():  # the rules are defined in UTC
        spark.conf.set(k, v)
    return spark


@contextmanager
def open_pipes(s3_endpoint_url: str | None):
    """The Pipes context when Dagster launched this run (else None). Messages are written where
    the Dagster side reads them: S3 (PipesS3MessageReader) or stdout (CloudWatch reader)."""
    try:
        from dagster_pipes import (
            PipesCliArgsParamsLoader,
            PipesDefaultMessageWriter,
            PipesMessageWriter,
            PipesS3ContextLoader,
            PipesS3MessageWriter,
            open_dagster_pipes,
        )
    except ImportError:  # dagster-pipes is installed on Glue with --additional-python-modules
        with nullcontext(None) as none:
            yield none
        return
    params = PipesCliArgsParamsLoader()
    if not params.is_dagster_pipes_process():
        with nullcontext(None) as none:
            yield none
        return
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint_url or None)

    class _Writer(PipesMessageWriter):
        def open(self, params):  # noqa: A003 - the PipesMessageWriter interface
            writer = PipesS3MessageWriter(s3, interval=1) if "bucket" in params else PipesDefaultMessageWriter()
            return writer.open(params)

    with open_dagster_pipes(context_loader=PipesS3ContextLoader(s3), message_writer=_Writer(), params_loader=params) as pipes:
        yield pipes


def pipes_metadata(hours: list[dict]) -> dict:
    """Materialization metadata of a run: totals, and every hour's figures (without file keys,
    which are in the hours' manifests) as JSON for the Dagster side's checks."""
    slim = [{k: v for k, v in h.items() if k not in FILE_LISTS} for h in hours]
    total = lambda k: sum(h[k] for h in hours)  # noqa: E731
    return {
        "raw_lines": total("raw_lines"),
        "curated_rows": total("curated_rows"),
        "quarantined_rows": total("quarantined_rows"),
        "duplicates_removed": total("duplicates_removed"),
        "hours": {"raw_value": slim, "type": "json"},
    }


def main(argv: list[str] | None = None) -> list[dict]:
    from dataclasses import asdict, replace

    from wallet_lake.lake.curation_run import CurationSettings, curate_landing_hours
    from wallet_lake.lake.store import open_lake

    argv = argv or sys.argv
    args = parse_args(argv)
    hours = landing_hours(args)
    processed_at = (
        datetime.fromisoformat(args["processed_at"].replace("Z", "+00:00")) if args.get("processed_at")
        else datetime.now(timezone.utc).replace(microsecond=0)
    )
    in_lake = (args.get("in_lake") or ("true" if running_on_glue() else "false")).lower() == "true"
    with open_pipes(args.get("s3_endpoint_url")) as pipes:
        spark = spark_session()
        store = open_lake(args["lake_uri"], kms_key_id=args["kms_key_id"], s3_endpoint_url=args.get("s3_endpoint_url"))
        log = pipes.log if pipes is not None else None
        stats = curate_landing_hours(
            spark, store, hours, processed_at, run_id=args.get("run_id") or None,
            settings=replace(CurationSettings(), in_lake=in_lake), log=log,
        )
        figures = [asdict(s) for s in stats]
        if pipes is not None:
            pipes.report_asset_materialization(metadata=pipes_metadata(figures))
        elif any(not s.published for s in stats):
            raise SystemExit("hours not published (failed blocking checks): " + json.dumps({s.landing_hour: s.failed_checks for s in stats if not s.published}))
    return figures


if __name__ == "__main__":
    for h in main():
        print(json.dumps({k: v for k, v in h.items() if k not in (*FILE_LISTS, "preview", "checks")}))
