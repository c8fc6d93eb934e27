"""Where curated_payments runs its Spark work, chosen by configuration:

- `local`: on the warm curation worker (lake/curation_worker.py: a long-lived Spark session the
  stack starts, WL_SPARK_WORKER_SOCKET), else, when none answers, in the Dagster run's process
  through dagster-pyspark (a JVM and a Spark session per run);
- `glue`: an AWS Glue job run of wallet_lake/glue/curate_job.py through
  dagster_aws.pipes.PipesGlueClient (production). The job reports the hours' figures back
  through Pipes: context through S3, messages through S3 or CloudWatch (the Glue output log).

Unset fields come from the environment when the run starts (WL_CURATION_LAUNCHER,
WL_GLUE_JOB_NAME, WL_PIPES_MESSAGES, WL_GLUE_DATABASE), so the definitions never read it at
import. Tests subclass the resource to hand PipesGlueClient a local stand-in for Glue."""

from __future__ import annotations

import random
import string
from contextlib import contextmanager
from datetime import datetime
from dataclasses import asdict
from typing import Callable, Iterator, Optional, Sequence

import dagster as dg
from dagster_aws.pipes import (
    PipesCloudWatchMessageReader,
    PipesGlueClient,
    PipesS3ContextInjector,
    PipesS3MessageReader,
)
from pydantic import Field

from wallet_lake.defs.curated.results import hours_from_pipes
from wallet_lake.lake import curation_worker
from wallet_lake.lake.curation_run import curate_landing_hours
from wallet_lake.lake.manifests import hour_summary
from wallet_lake.resources import LakeResource

MODES = ("local", "glue")


class _S3MessagesUnderPrefix(PipesS3MessageReader):
    """PipesS3MessageReader that keeps its message chunks under a prefix of the lake bucket."""

    def __init__(self, *, prefix: str, **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix

    @contextmanager
    def get_params(self) -> Iterator[dict]:
        with super().get_params() as params:
            params = dict(params)
            params["key_prefix"] = self.prefix + "".join(random.choices(string.ascii_letters, k=30))
            yield params


def _glue():
    """Defaults of the launcher's unset fields: GlueSettings, read when the run starts."""
    from wallet_lake.settings import GlueSettings, load

    return load(GlueSettings)


class CurationLauncher(dg.ConfigurableResource):
    mode: Optional[str] = Field(default=None, description="local | glue; unset: WL_CURATION_LAUNCHER, else local.")
    glue_job_name: Optional[str] = Field(default=None, description="Glue job; unset: WL_GLUE_JOB_NAME (wallet_lake/settings.py).")
    pipes_messages: Optional[str] = Field(default=None, description="s3 | cloudwatch; unset: WL_PIPES_MESSAGES, else s3.")
    pipes_prefix: str = Field(default="_pipes/", description="Key prefix of Pipes context and messages in the lake bucket.")
    glue_database: Optional[str] = Field(default=None, description="Glue database of the catalog; unset: WL_GLUE_DATABASE, else wallet_db.")
    worker_socket: Optional[str] = Field(default=None, description="local: the warm curation worker's socket; unset: WL_SPARK_WORKER_SOCKET; empty: always curate in the run's process.")

    def resolved_mode(self) -> str:
        mode = (self.mode or _glue().curation_launcher).lower()
        if mode not in MODES:
            raise dg.Failure(f"curation launcher {mode!r} is not one of {', '.join(MODES)} (WL_CURATION_LAUNCHER)")
        return mode

    def job_name(self) -> str:
        return self.glue_job_name or _glue().glue_job_name

    def database(self) -> str:
        return self.glue_database or _glue().glue_database

    def glue_client(self, lake: LakeResource):
        """The Glue API client PipesGlueClient drives (a test substitutes a local runner)."""
        return lake.client("glue")

    def pipes_client(self, lake: LakeResource) -> PipesGlueClient:
        s3 = lake.client("s3")
        messages = (self.pipes_messages or _glue().pipes_messages).lower()
        if messages == "cloudwatch":
            reader = PipesCloudWatchMessageReader(client=lake.client("logs"))
        elif messages == "s3":
            reader = _S3MessagesUnderPrefix(prefix=f"{self.pipes_prefix}messages/", bucket=lake.bucket, client=s3, interval=2)
        else:
            raise dg.Failure(f"WL_PIPES_MESSAGES must be s3 or cloudwatch, not {messages!r}")
        return PipesGlueClient(
            client=self.glue_client(lake),
            context_injector=PipesS3ContextInjector(bucket=lake.bucket, client=s3, key_prefix=f"{self.pipes_prefix}context/"),
            message_reader=reader,
            forward_termination=True,
        )

    def worker_address(self) -> str | None:
        if self.worker_socket is not None:
            return self.worker_socket or None
        from wallet_lake.settings import SparkSettings, load

        return load(SparkSettings).spark_worker_socket

    def run_local(self, context: dg.AssetExecutionContext, lake: LakeResource, spark_session: Callable[[], object],
                  hours: Sequence[datetime], *, run_id: str, processed_at: datetime) -> tuple[list[dict], dict]:
        """Curate `hours` on the warm worker, or in this process (`spark_session()` starts Spark
        here) when no worker answers: (the hours' figures, metadata naming the engine)."""
        address = self.worker_address()
        if address:
            try:
                figures = curation_worker.curate_on_worker(
                    address, lake=lake.model_dump(), hours=hours, processed_at=processed_at, run_id=run_id, log=context.log)
                return figures, {"engine": "curation worker (warm Spark session)"}
            except curation_worker.WorkerUnavailable as e:
                context.log.warning(f"{e}: curating in this run's process (a cold Spark session)")
            except curation_worker.WorkerFailed as e:
                raise dg.Failure(str(e)) from e
        stats = curate_landing_hours(spark_session(), lake.store(), hours, processed_at, run_id=run_id, log=context.log)
        return [asdict(s) for s in stats], {"engine": "Spark in the run's process"}

    def run_on_glue(self, context: dg.AssetExecutionContext, lake: LakeResource, hours: Sequence[datetime], *,
                    run_id: str, processed_at: datetime) -> tuple[list[dict], dict]:
        """One Glue job run curating `hours`: (the hours' figures it reported, the run's AWS Glue
        metadata for the materialization)."""
        args = {
            "--landing_hours": ",".join(f"{h:%Y-%m-%dT%H}" for h in hours),
            "--run_id": run_id,
            "--processed_at": processed_at.isoformat(),
        }
        if lake.s3_endpoint_url:
            args["--s3_endpoint_url"] = lake.s3_endpoint_url
        invocation = self.pipes_client(lake).run(context=context, start_job_run_params={"JobName": self.job_name(), "Arguments": args})
        reported = invocation.get_materialize_result()
        figures = hours_from_pipes(reported)
        for h in figures:  # a local run logs through curate_landing_hours
            context.log.info(hour_summary(h))
        return figures, {k: v for k, v in (reported.metadata or {}).items() if k.startswith("AWS Glue")}
