"""pipeline-recon: the pipeline ledger of one UTC day, per landing hour: what each stage did with
the hour's lines and whether the stages agree. Figures, SQL and rule are those of
wallet_lake.serving.ledger, which the asset check `pipeline_reconciled` applies too."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from api.db import Database
from api.reports.sql import ReportQuery
from wallet_lake.serving import ledger

STAGES = ReportQuery("pipeline-recon/stages", ledger.STAGES_SQL)
LOADED_DTS = ReportQuery("pipeline-recon/loaded-dts", ledger.LOADED_DTS_SQL)

Stage = Literal["raw_lines", "curated", "quarantined", "duplicates_removed", "published", "loaded", "counted"]
if set(Stage.__args__) != set(ledger.FIGURES):  # the ledger owns the stages; fail loudly if they move
    raise RuntimeError(f"pipeline-recon stages {Stage.__args__} differ from wallet_lake.serving.ledger.FIGURES")

DESCRIPTION = (
    "For one UTC day (`date`), every landing hour (the folder raw/payments/dt=YYYY/MM/DD/HH/, the Dagster partition "
    "YYYY-MM-DD-HH:00) with what each stage of the pipeline did with it, as each stage recorded it when it last ran "
    "the hour: `raw_lines` (lines of the hour's NDJSON objects), `curated`, `quarantined`, `duplicates_removed` (the "
    "curation the lake holds), `published` (curated payment_ids the Kafka broker acknowledged), `loaded` (curated "
    "payment_ids present in Postgres with a created_at at least the curated one: a record superseded by a later one, "
    "e.g. a refund landed the next day, is not a loss) and `counted` (loaded rows the report aggregates include: the "
    "dt each sat in when loaded has no change older than their verification still pending a refresh). "
    "`reconciled` is true when raw_lines = curated + quarantined + duplicates_removed, published = loaded = curated "
    "(all of the curation the lake holds) and counted = loaded; otherwise `first_difference` names the first stage in "
    "flow order that differs or never ran (its figure is then null) and `detail` says how. Spans every merchant: "
    "API keys scoped to all merchants only (others get 403). Always 24 hours; an hour the pipeline has not run yet "
    "has null figures and first_difference `raw_lines`."
)

_NULL = " null when the stage never recorded the hour."


class HourRecon(BaseModel):
    landing_hour: dt.datetime = Field(description="Start of the landing hour, UTC.", examples=["2026-11-24T13:00:00Z"])
    raw_lines: int | None = Field(ge=0, description=f"Lines of the hour's NDJSON objects ({ledger.RECORDED_BY[ledger.RAW_LINES]})." + _NULL)
    curated: int | None = Field(ge=0, description="Curated rows (one per payment_id) of the curation the lake holds." + _NULL)
    quarantined: int | None = Field(ge=0, description="Lines quarantined with a reason by that curation." + _NULL)
    duplicates_removed: int | None = Field(ge=0, description="Lines the dedupe dropped in that curation." + _NULL)
    published: int | None = Field(
        ge=0, description=f"Curated payment_ids of the hour the Kafka broker acknowledged, each once ({ledger.RECORDED_BY[ledger.PUBLISHED]})." + _NULL
    )
    loaded: int | None = Field(
        ge=0,
        description="Curated payment_ids of the hour present in Postgres with a created_at at least the curated one "
        f"({ledger.RECORDED_BY[ledger.LOADED]})." + _NULL,
    )
    counted: int | None = Field(
        ge=0, description="Loaded rows the report aggregates include (computed when asked). null when loaded is null."
    )
    reconciled: bool = Field(description="Every stage recorded and in agreement (see the endpoint's description).")
    first_difference: Stage | None = Field(description="The first stage, in flow order, that never ran or differs; null when reconciled.")
    detail: str | None = Field(description="What differs, in words; null when reconciled.")
    curation_run_id: str | None = Field(description="The curation run whose files the lake holds for the hour (its manifest's run_id).")
    runs: dict[Stage, str] = Field(description="The Dagster run that recorded each stage (open it at <Dagster UI>/runs/<run id>).")


class PipelineRecon(BaseModel):
    """The pipeline ledger of one UTC day's 24 landing hours."""

    date: dt.date = Field(description="UTC day of the landing hours.")
    as_of: dt.datetime = Field(description="When the ledger was read (database clock, UTC); `counted` is as of this instant.")
    reconciled: bool = Field(description="Every one of the 24 hours reconciled.")
    hours_reconciled: int = Field(ge=0, le=24, description="How many of the 24 hours reconciled.")
    hours: list[HourRecon] = Field(description="The day's 24 landing hours in order.")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc)


def shape(day: dt.date, as_of: dt.datetime, hours: list[ledger.HourRecon]) -> PipelineRecon:
    lines = [
        HourRecon(
            landing_hour=_utc(h.landing_hour),
            **h.figures,
            reconciled=h.reconciled,
            first_difference=h.first_difference,
            detail=h.detail,
            curation_run_id=h.curation_run_id,
            runs=h.runs,
        )
        for h in hours
    ]
    done = sum(1 for h in lines if h.reconciled)
    return PipelineRecon(date=day, as_of=_utc(as_of), reconciled=done == len(lines), hours_reconciled=done, hours=lines)


async def run(database: Database, day: dt.date) -> PipelineRecon:
    """Read the day's ledger in one snapshot (REPEATABLE READ) and reconcile it."""
    hours = ledger.day_hours(day)
    params = ledger.hour_bounds(hours)
    async with database.connection() as conn, conn.transaction():
        await conn.execute(ledger.READ_SNAPSHOT_SQL)
        as_of = (await conn.fetch(ledger.NOW_SQL))[0]["as_of"]
        stages = [ledger.stage_row(r) for r in await conn.fetch(STAGES.sql, STAGES.bind(**params))]
        dts = [ledger.loaded_dt(r) for r in await conn.fetch(LOADED_DTS.sql, LOADED_DTS.bind(**params))]
    return shape(day, as_of, ledger.reconcile_hours(hours, stages, dts))


# The OpenAPI example (three of the 24 hours): reconciled; loaded but a dt's aggregates not yet
# refreshed; the last hour of the day not run yet.
EXAMPLE = {
    "date": "2026-11-24",
    "as_of": "2026-11-25T00:20:41.512Z",
    "reconciled": False,
    "hours_reconciled": 22,
    "hours": [
        {
            "landing_hour": "2026-11-24T00:00:00Z", "raw_lines": 12019, "curated": 11412, "quarantined": 121,
            "duplicates_removed": 486, "published": 11412, "loaded": 11412, "counted": 11412, "reconciled": True,
            "first_difference": None, "detail": None, "curation_run_id": "20261124T012003-5e0c2a1f",
            "runs": {stage: "5e0c2a1f-7a4e-4c55-9d36-0f3b9a8e2c71" for stage in ledger.STAGES},
        },
        {
            "landing_hour": "2026-11-24T13:00:00Z", "raw_lines": 11876, "curated": 11290, "quarantined": 117,
            "duplicates_removed": 469, "published": 11290, "loaded": 11290, "counted": 11201, "reconciled": False,
            "first_difference": "counted",
            "detail": "counted 11201 of 11290 loaded: the report aggregates of 2026-11-25 (89 rows, pending since "
            "2026-11-25T00:19:58.104000+00:00) do not include changes made before the rows were verified yet "
            "(the refresher or the next Postgres step refreshes them)",
            "curation_run_id": "20261124T142002-b71d03c9",
            "runs": {stage: "b71d03c9-1f0d-4b8e-a6a2-33c5e7d0f918" for stage in ledger.STAGES},
        },
        {
            "landing_hour": "2026-11-24T23:00:00Z", "raw_lines": None, "curated": None, "quarantined": None,
            "duplicates_removed": None, "published": None, "loaded": None, "counted": None, "reconciled": False,
            "first_difference": "raw_lines",
            "detail": "raw_lines was never recorded for this hour: raw_payments has not run it (or failed before recording)",
            "curation_run_id": None, "runs": {},
        },
    ],
}
