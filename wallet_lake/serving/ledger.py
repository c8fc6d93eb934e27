"""The pipeline ledger: per landing hour, what each stage did with it, and the rule that decides
whether the stages agree (nothing lost, nothing invented). GET /reports/pipeline-recon (api/) and
the asset check `pipeline_reconciled` on postgres/curated_payments read the same tables through
the same SQL and apply the same rule, all defined here. No Dagster or Spark: the API imports it.

Each stage records its own figure for every hour it materializes (table pipeline_ledger,
migration 0006; a rerun replaces the row):

- raw_lines (raw_payments): lines of the hour's NDJSON objects, counted as Spark splits them
  (count_lines), independently of the curation;
- curated, quarantined, duplicates_removed (curated_payments): the figures of a curation that
  was published to the lake (an hour failing a blocking check keeps its previous figures, as it
  keeps its previous files);
- published (kafka/payments_curated): the hour's curated payment_ids the broker acknowledged,
  each counted once;
- loaded (postgres/curated_payments): the hour's curated payment_ids present in Postgres with a
  created_at at least the curated one (a record superseded by a later one, e.g. a refund landed
  the next day, is present: the payment is there in a newer state), with the dt each sits in.

Every figure but raw_lines names the curation run (the manifest's run_id) it describes, so a
stage that last ran on an older curation of the hour is stale even when its count matches.

`counted` is computed when read, never recorded: the loaded rows of the hour, per dt, whose dt's
report aggregates already include them. Every change to curated_payments marks its dt in
report_aggregate_dirty_dts in the same transaction (migrations 0002 and 0005) and a refresh
deletes the marks it rebuilt from, so a dt's aggregates include every change committed before
its oldest pending mark (the aggregates' as_of). The hour's rows in a dt are counted when the
Postgres step had seen them (verified_at, database clock) before that instant, i.e. when the dt
has no pending mark made at or before verified_at. A mark made later belongs to a later change
(another hour's rows) and does not make this hour's rows uncounted.

The rule, in flow order; the first stage that fails is `first_difference`:

1. raw_lines, curated, quarantined, duplicates_removed recorded (a missing row: that stage never
   ran for the hour), the three curation figures from one curation run;
2. raw_lines = curated + quarantined + duplicates_removed, else `curated`;
3. published recorded, of the current curation run, = curated, else `published`;
4. loaded recorded, of the current curation run, = curated, else `loaded`;
5. counted = loaded, else `counted`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wallet_lake.contracts.asset_keys import (
    CURATED_PAYMENTS,
    RAW_PAYMENTS,
    TABLE_CURATED_PAYMENTS,
    TOPIC_PAYMENTS_CURATED,
    user_string,
)

RAW_LINES = "raw_lines"
CURATED = "curated"
QUARANTINED = "quarantined"
DUPLICATES_REMOVED = "duplicates_removed"
PUBLISHED = "published"
LOADED = "loaded"
COUNTED = "counted"

# Recorded stages in flow order (the CHECK of pipeline_ledger.stage lists the same names).
STAGES: tuple[str, ...] = (RAW_LINES, CURATED, QUARANTINED, DUPLICATES_REMOVED, PUBLISHED, LOADED)
CURATION_FIGURES: tuple[str, ...] = (CURATED, QUARANTINED, DUPLICATES_REMOVED)
# Every figure of an hour, in flow order; also the values first_difference can take.
FIGURES: tuple[str, ...] = STAGES + (COUNTED,)

# The asset that records each stage (named in the reasons an hour is not reconciled).
RECORDED_BY: dict[str, str] = {
    RAW_LINES: user_string(RAW_PAYMENTS),
    CURATED: user_string(CURATED_PAYMENTS),
    QUARANTINED: user_string(CURATED_PAYMENTS),
    DUPLICATES_REMOVED: user_string(CURATED_PAYMENTS),
    PUBLISHED: user_string(TOPIC_PAYMENTS_CURATED),
    LOADED: user_string(TABLE_CURATED_PAYMENTS),
}

HOUR = dt.timedelta(hours=1)


def count_lines(data: bytes) -> int:
    """Lines in an NDJSON object as Spark's text reader (Hadoop's LineRecordReader) splits them,
    so that raw_lines and the curation count the same lines: \\n, \\r\\n and a lone \\r each end a
    line, and a last line without a terminator counts (an empty object has none)."""
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (1 if data and not data.endswith((b"\n", b"\r")) else 0)


def day_hours(day: dt.date) -> list[dt.datetime]:
    """The 24 landing hours of a UTC day."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return [start + i * HOUR for i in range(24)]


# ------------------------------------------------------------------------------------------ SQL
# Parameterized (psycopg `%(name)s`), Postgres only: the ledger lives next to curated_payments.

UPSERT_STAGE_SQL = """
INSERT INTO public.pipeline_ledger (landing_hour, stage, row_count, curation_run_id, run_id, verified_at)
VALUES (%(landing_hour)s, %(stage)s, %(row_count)s, %(curation_run_id)s, %(run_id)s, %(verified_at)s)
ON CONFLICT (landing_hour, stage) DO UPDATE
SET row_count = EXCLUDED.row_count, curation_run_id = EXCLUDED.curation_run_id, run_id = EXCLUDED.run_id,
    recorded_at = now(), verified_at = EXCLUDED.verified_at
""".strip()

DELETE_LOADED_DTS_SQL = "DELETE FROM public.pipeline_ledger_loaded_dts WHERE landing_hour = %(landing_hour)s"

INSERT_LOADED_DT_SQL = """
INSERT INTO public.pipeline_ledger_loaded_dts (landing_hour, dt, row_count)
VALUES (%(landing_hour)s, %(dt)s, %(row_count)s)
""".strip()

# The recorded stages of the hours in [hour_from, hour_to).
STAGES_SQL = """
SELECT landing_hour, stage, row_count, curation_run_id, run_id, recorded_at, verified_at
FROM public.pipeline_ledger
WHERE landing_hour >= %(hour_from)s AND landing_hour < %(hour_to)s
""".strip()

# The loaded rows of the hours in [hour_from, hour_to) per dt, with the dt's oldest pending
# aggregate mark (NULL: its aggregates include every committed change). One index lookup per dt
# (report_aggregate_dirty_dts_dt_idx, migration 0005).
LOADED_DTS_SQL = """
SELECT d.landing_hour, d.dt, d.row_count,
       (SELECT min(m.marked_at) FROM public.report_aggregate_dirty_dts AS m WHERE m.dt = d.dt) AS pending_since
FROM public.pipeline_ledger_loaded_dts AS d
WHERE d.landing_hour >= %(hour_from)s AND d.landing_hour < %(hour_to)s
""".strip()

# Read the stages and the dts in one snapshot, so an hour recorded in between is never half seen.
READ_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
NOW_SQL = "SELECT now() AS as_of"
# The instant by which every row a preceding statement saw had been committed.
CLOCK_SQL = "SELECT clock_timestamp()"


# ------------------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class StageRow:
    """A row of pipeline_ledger."""

    landing_hour: dt.datetime
    stage: str
    row_count: int
    curation_run_id: str | None
    run_id: str
    recorded_at: dt.datetime
    verified_at: dt.datetime | None = None


@dataclass(frozen=True)
class LoadedDt:
    """The loaded rows of a landing hour in one dt, and the dt's oldest pending aggregate mark."""

    landing_hour: dt.datetime
    dt: dt.date
    row_count: int
    pending_since: dt.datetime | None

    def counted(self, verified_at: dt.datetime) -> bool:
        """The dt's aggregates include every change committed before pending_since; the rows
        were committed before verified_at."""
        return self.pending_since is None or self.pending_since > verified_at


@dataclass(frozen=True)
class HourRecon:
    landing_hour: dt.datetime
    figures: dict[str, int | None]  # FIGURES -> count, None when the stage has no row
    reconciled: bool
    first_difference: str | None
    detail: str | None
    curation_run_id: str | None = None  # the curation the lake holds for the hour
    runs: dict[str, str] = field(default_factory=dict)  # stage -> Dagster run id that recorded it

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (Dagster metadata)."""
        return {
            "landing_hour": self.landing_hour.isoformat(),
            **self.figures,
            "reconciled": self.reconciled,
            "first_difference": self.first_difference,
            "detail": self.detail,
            "curation_run_id": self.curation_run_id,
            "runs": dict(self.runs),
        }


def _never_ran(stage: str) -> str:
    return f"{stage} was never recorded for this hour: {RECORDED_BY[stage]} has not run it (or failed before recording)"


def _stale(stage: str, row: StageRow, curation: str | None) -> str:
    return (
        f"{stage} describes curation run {row.curation_run_id}, but the lake holds curation run {curation}: "
        f"{RECORDED_BY[stage]} has not run on the current curation of the hour"
    )


def reconcile_hour(
    landing_hour: dt.datetime, stages: Mapping[str, StageRow], loaded_dts: Iterable[LoadedDt] = ()
) -> HourRecon:
    """Figures of one landing hour and whether they agree (see the module doc for the rule).

    stages: the hour's pipeline_ledger rows by stage; loaded_dts: its pipeline_ledger_loaded_dts
    rows with their dts' pending marks. Pure."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown ledger stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    figures: dict[str, int | None] = {s: (stages[s].row_count if s in stages else None) for s in STAGES}
    loaded = stages.get(LOADED)
    dts = [d for d in loaded_dts if d.landing_hour == landing_hour]
    behind = [d for d in dts if loaded is not None and loaded.verified_at is not None and not d.counted(loaded.verified_at)]
    figures[COUNTED] = None if loaded is None else sum(d.row_count for d in dts) - sum(d.row_count for d in behind)
    curation = stages[CURATED].curation_run_id if CURATED in stages else None
    runs = {s: stages[s].run_id for s in STAGES if s in stages}

    def answer(stage: str | None, detail: str | None) -> HourRecon:
        return HourRecon(landing_hour, figures, stage is None, stage, detail, curation, runs)

    for s in (RAW_LINES, *CURATION_FIGURES):
        if s not in stages:
            return answer(s, _never_ran(s))
    for s in (QUARANTINED, DUPLICATES_REMOVED):
        if stages[s].curation_run_id != curation:
            return answer(s, _stale(s, stages[s], curation))
    raw, cur, quar, dup = (figures[s] for s in (RAW_LINES, *CURATION_FIGURES))
    if raw != cur + quar + dup:
        return answer(CURATED, (
            f"raw lines {raw} != curated {cur} + quarantined {quar} + duplicates removed {dup}: the curation read "
            "other lines than raw_payments counted (objects landed or changed between the two steps); rerun the hour"
        ))
    for s in (PUBLISHED, LOADED):
        if s not in stages:
            return answer(s, _never_ran(s))
        if stages[s].curation_run_id != curation:
            return answer(s, _stale(s, stages[s], curation))
        if figures[s] != cur:
            verb = "acknowledged by the broker" if s == PUBLISHED else "present in Postgres"
            return answer(s, f"{s} {figures[s]} != curated {cur}: {cur - figures[s]} curated rows not {verb}")
    if figures[COUNTED] != figures[LOADED]:
        if sum(d.row_count for d in dts) != figures[LOADED]:
            return answer(COUNTED, f"the loaded rows' dts hold {sum(d.row_count for d in dts)} rows, not {figures[LOADED]}")
        waiting = ", ".join(
            f"{d.dt} ({d.row_count} rows, pending since {d.pending_since.astimezone(dt.timezone.utc).isoformat()})"
            for d in sorted(behind, key=lambda d: d.dt)
        )
        return answer(COUNTED, (
            f"counted {figures[COUNTED]} of {figures[LOADED]} loaded: the report aggregates of {waiting} do not include "
            "changes made before the rows were verified yet (the refresher or the next Postgres step refreshes them)"
        ))
    return answer(None, None)


def reconcile_hours(
    hours: Sequence[dt.datetime], stage_rows: Iterable[StageRow], loaded_dts: Iterable[LoadedDt]
) -> list[HourRecon]:
    """reconcile_hour for each of `hours` (in that order) from the rows STAGES_SQL and
    LOADED_DTS_SQL returned for them. Pure."""
    by_hour: dict[dt.datetime, dict[str, StageRow]] = {h: {} for h in hours}
    for row in stage_rows:
        if row.landing_hour in by_hour:
            by_hour[row.landing_hour][row.stage] = row
    dts = list(loaded_dts)
    return [reconcile_hour(h, by_hour[h], dts) for h in hours]


def stage_row(row: Mapping[str, Any]) -> StageRow:
    """A StageRow from a STAGES_SQL row (a mapping of its column names)."""
    return StageRow(**{k: row[k] for k in StageRow.__dataclass_fields__})


def loaded_dt(row: Mapping[str, Any]) -> LoadedDt:
    """A LoadedDt from a LOADED_DTS_SQL row (a mapping of its column names)."""
    return LoadedDt(**{k: row[k] for k in LoadedDt.__dataclass_fields__})


def hour_bounds(hours: Sequence[dt.datetime]) -> dict[str, dt.datetime]:
    """The [hour_from, hour_to) parameters of STAGES_SQL and LOADED_DTS_SQL covering `hours`."""
    return {"hour_from": min(hours), "hour_to": max(hours) + HOUR}


# -------------------------------------------------------------------- writing and reading (psycopg)


def record_stage(conn, landing_hour: dt.datetime, stage: str, row_count: int, *, run_id: str,
                 curation_run_id: str | None, verified_at: dt.datetime | None = None) -> None:
    """Upsert one stage's figure of one hour (the caller commits)."""
    if stage not in STAGES:
        raise ValueError(f"unknown ledger stage {stage!r}; known: {', '.join(STAGES)}")
    conn.execute(UPSERT_STAGE_SQL, {
        "landing_hour": landing_hour, "stage": stage, "row_count": row_count, "curation_run_id": curation_run_id,
        "run_id": run_id, "verified_at": verified_at,
    })


def record_curation(conn, landing_hour: dt.datetime, *, curated: int, quarantined: int, duplicates_removed: int,
                    run_id: str, curation_run_id: str) -> None:
    """The three figures of a published curation of the hour, in one transaction."""
    with conn.transaction():
        for stage, n in ((CURATED, curated), (QUARANTINED, quarantined), (DUPLICATES_REMOVED, duplicates_removed)):
            record_stage(conn, landing_hour, stage, n, run_id=run_id, curation_run_id=curation_run_id)


def record_published_curations(conn, hours: Sequence[Mapping[str, Any]], *, run_id: str) -> None:
    """record_curation for every published hour of a curation run (HourStats as dicts)."""
    for h in hours:
        if h.get("published"):
            record_curation(conn, dt.datetime.fromisoformat(h["landing_hour"]), curated=h["curated_rows"],
                            quarantined=h["quarantined_rows"], duplicates_removed=h["duplicates_removed"],
                            run_id=run_id, curation_run_id=h["run_id"])


def record_loaded(conn, landing_hour: dt.datetime, by_dt: Mapping[dt.date, int], *, run_id: str,
                  curation_run_id: str, verified_at: dt.datetime) -> None:
    """The hour's loaded rows (per dt of their record in Postgres) and when they were verified,
    in one transaction."""
    with conn.transaction():
        record_stage(conn, landing_hour, LOADED, sum(by_dt.values()), run_id=run_id,
                     curation_run_id=curation_run_id, verified_at=verified_at)
        conn.execute(DELETE_LOADED_DTS_SQL, {"landing_hour": landing_hour})
        for day, n in sorted(by_dt.items()):
            if n:
                conn.execute(INSERT_LOADED_DT_SQL, {"landing_hour": landing_hour, "dt": day, "row_count": n})


def read_recon(conn, hours: Sequence[dt.datetime]) -> list[HourRecon]:
    """The reconciliation of `hours` from one snapshot. `conn` is a psycopg connection without an
    open transaction (the snapshot is set at the transaction's start)."""
    from psycopg.rows import dict_row

    params = hour_bounds(hours)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(READ_SNAPSHOT_SQL)
        stages = [stage_row(r) for r in cur.execute(STAGES_SQL, params).fetchall()]
        dts = [loaded_dt(r) for r in cur.execute(LOADED_DTS_SQL, params).fetchall()]
    return reconcile_hours(hours, stages, dts)
