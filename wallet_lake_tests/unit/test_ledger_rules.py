"""The pipeline ledger's rule (wallet_lake/serving/ledger.py), pure: every stage that differs or
never ran is named as the first difference, superseded records are not losses, a dt's pending
refresh uncounts only rows verified after the change it waits for; and raw lines are counted as
Spark's reader splits them. Expected values are written out by hand."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet_lake.serving import ledger
from wallet_lake.serving.ledger import LoadedDt, StageRow, count_lines, reconcile_hour, reconcile_hours

UTC = dt.timezone.utc
HOUR = dt.datetime(2026, 11, 24, 13, tzinfo=UTC)
DAY = dt.date(2026, 11, 24)
VERIFIED = dt.datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
CURATION = "20261124T142002-b71d03c9"
MIGRATION = Path(__file__).resolve().parents[2] / "wallet_lake" / "serving" / "migrations" / "0006.pipeline-ledger.sql"

# An hour that reconciles: 1000 lines = 900 curated + 40 quarantined + 60 duplicates; 900 on the
# topic, 900 in Postgres (880 in its dt, 20 in the next one), all counted.
FIGURES = {"raw_lines": 1000, "curated": 900, "quarantined": 40, "duplicates_removed": 60, "published": 900, "loaded": 900}


def rows(**overrides) -> dict[str, StageRow]:
    """The hour's ledger rows; overrides: stage=count, stage=None (no row), or stage=StageRow."""
    out = {}
    for stage, n in {**FIGURES, **overrides}.items():
        if isinstance(n, StageRow):
            out[stage] = n
        elif n is not None:
            out[stage] = row(stage, n)
    return out


def row(stage: str, n: int, *, curation: str | None = CURATION) -> StageRow:
    return StageRow(
        landing_hour=HOUR, stage=stage, row_count=n, curation_run_id=None if stage == "raw_lines" else curation,
        run_id=f"run-{stage}", recorded_at=VERIFIED, verified_at=VERIFIED if stage == "loaded" else None,
    )


def dts(pending_today=None, pending_tomorrow=None, today=880, tomorrow=20) -> list[LoadedDt]:
    return [LoadedDt(HOUR, DAY, today, pending_today), LoadedDt(HOUR, DAY + dt.timedelta(days=1), tomorrow, pending_tomorrow)]


def test_an_hour_whose_stages_agree_is_reconciled():
    r = reconcile_hour(HOUR, rows(), dts())
    assert (r.reconciled, r.first_difference, r.detail) == (True, None, None)
    assert r.figures == {**FIGURES, "counted": 900}
    assert r.curation_run_id == CURATION
    assert r.runs == {s: f"run-{s}" for s in FIGURES}


@pytest.mark.parametrize("stage", ledger.STAGES)
def test_a_stage_that_never_ran_is_the_first_difference(stage):
    r = reconcile_hour(HOUR, rows(**{stage: None}), dts())
    assert (r.reconciled, r.first_difference) == (False, stage)
    assert r.figures[stage] is None
    assert "never recorded" in r.detail and ledger.RECORDED_BY[stage] in r.detail
    if stage == "loaded":
        assert r.figures["counted"] is None  # nothing loaded is recorded, so nothing counted


def test_nothing_recorded_names_raw_lines():
    r = reconcile_hour(HOUR, {}, [])
    assert (r.reconciled, r.first_difference) == (False, "raw_lines")
    assert set(r.figures.values()) == {None} and r.runs == {} and r.curation_run_id is None


@pytest.mark.parametrize(
    ("overrides", "stage", "words"),
    [
        # raw != curated + quarantined + duplicates (a line more landed than the curation read)
        ({"raw_lines": 1001}, "curated", "raw lines 1001 != curated 900 + quarantined 40 + duplicates removed 60"),
        ({"quarantined": 39}, "curated", "raw lines 1000 != curated 900 + quarantined 39"),
        ({"duplicates_removed": 61}, "curated", "duplicates removed 61"),
        # one message fewer acknowledged than curated (loaded agrees: published is still first)
        ({"published": 899}, "published", "published 899 != curated 900: 1 curated rows not acknowledged"),
        ({"published": 901}, "published", "published 901 != curated 900"),
        ({"loaded": 897}, "loaded", "loaded 897 != curated 900: 3 curated rows not present in Postgres"),
    ],
)
def test_each_stage_that_differs_is_named_first(overrides, stage, words):
    loaded = overrides.get("loaded", 900)
    r = reconcile_hour(HOUR, rows(**overrides), dts(today=loaded - 20))
    assert (r.reconciled, r.first_difference) == (False, stage)
    assert words in r.detail


def test_the_first_of_several_differences_is_named():
    r = reconcile_hour(HOUR, rows(published=800, loaded=700), dts(today=680))
    assert r.first_difference == "published"
    r = reconcile_hour(HOUR, rows(raw_lines=5, loaded=None), [])
    assert r.first_difference == "curated"
    r = reconcile_hour(HOUR, rows(raw_lines=None, published=1), dts())
    assert r.first_difference == "raw_lines"


@pytest.mark.parametrize("stage", ["published", "loaded", "quarantined", "duplicates_removed"])
def test_a_stage_of_an_older_curation_is_stale_even_with_equal_counts(stage):
    # The hour was curated again (e.g. a late file that only re-sent known payments: same curated
    # count); a stage that did not run on the new curation misses its newer records.
    stale = row(stage, FIGURES[stage], curation="20261124T012003-5e0c2a1f")
    r = reconcile_hour(HOUR, rows(**{stage: stale}), dts())
    assert (r.reconciled, r.first_difference) == (False, stage)
    assert "20261124T012003-5e0c2a1f" in r.detail and CURATION in r.detail


def test_rows_waiting_for_a_refresh_of_their_dt_are_not_counted():
    # The next day's aggregates hold a change made before the rows were verified: its 20 rows
    # are not in the reports yet; the day's own 880 are.
    pending = VERIFIED - dt.timedelta(minutes=3)
    r = reconcile_hour(HOUR, rows(), dts(pending_tomorrow=pending))
    assert (r.reconciled, r.first_difference, r.figures["counted"]) == (False, "counted", 880)
    assert "counted 880 of 900 loaded" in r.detail and "2026-11-25 (20 rows" in r.detail
    r = reconcile_hour(HOUR, rows(), dts(pending_today=pending, pending_tomorrow=pending))
    assert r.figures["counted"] == 0


def test_a_change_pending_since_exactly_the_verification_uncounts_the_rows():
    # Its transaction began at verified_at: it may hold the hour's own rows, committed no later.
    r = reconcile_hour(HOUR, rows(), dts(pending_today=VERIFIED))
    assert (r.first_difference, r.figures["counted"]) == ("counted", 20)


def test_a_change_made_after_the_verification_does_not_uncount_the_rows():
    # Another hour's rows loaded into the same dt later: the reports include this hour's rows
    # (the dt's aggregates hold every change committed before the pending mark).
    later = VERIFIED + dt.timedelta(microseconds=1)
    r = reconcile_hour(HOUR, rows(), dts(pending_today=later, pending_tomorrow=later + dt.timedelta(hours=5)))
    assert (r.reconciled, r.figures["counted"]) == (True, 900)


def test_loaded_rows_whose_dts_do_not_add_up_are_not_counted():
    r = reconcile_hour(HOUR, rows(), dts(today=870))
    assert (r.reconciled, r.first_difference, r.figures["counted"]) == (False, "counted", 890)
    assert "hold 890 rows, not 900" in r.detail


def test_an_empty_hour_reconciles_with_zeros():
    zeros = {s: 0 for s in FIGURES}
    r = reconcile_hour(HOUR, rows(**zeros), [])
    assert (r.reconciled, r.figures) == (True, {**zeros, "counted": 0})


def test_superseded_records_loaded_in_the_newer_records_dt_reconcile():
    # verify_hour's figures (integration/test_verify_hour.py checks them against Postgres): four
    # curated payments, one counted in the next day's dt where a later refund moved it.
    by_dt = {DAY: 3, DAY + dt.timedelta(days=1): 1}
    four = {"raw_lines": 4, "curated": 4, "quarantined": 0, "duplicates_removed": 0, "published": 4, "loaded": 4}
    r = reconcile_hour(HOUR, rows(**four), [LoadedDt(HOUR, d, n, None) for d, n in by_dt.items()])
    assert (r.reconciled, r.figures["loaded"], r.figures["counted"]) == (True, 4, 4)


def test_reconcile_hours_keeps_the_order_asked_and_ignores_other_hours():
    hours = ledger.day_hours(DAY)
    assert len(hours) == 24 and hours[0] == dt.datetime(2026, 11, 24, tzinfo=UTC) and hours[-1] == dt.datetime(2026, 11, 24, 23, tzinfo=UTC)
    assert ledger.hour_bounds(hours) == {"hour_from": hours[0], "hour_to": dt.datetime(2026, 11, 25, tzinfo=UTC)}
    other = dt.datetime(2026, 11, 25, 0, tzinfo=UTC)
    stage_rows = list(rows().values()) + [StageRow(other, "raw_lines", 5, None, "r", VERIFIED)]
    # The database may answer in another time zone: the same instant is the same hour.
    stage_rows.append(StageRow(HOUR.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))), "raw_lines", 1000, None, "r2", VERIFIED))
    out = reconcile_hours(hours, stage_rows, dts() + [LoadedDt(other, DAY, 5, None)])
    assert [h.landing_hour for h in out] == hours
    assert [h.hour for h in (o.landing_hour for o in out if o.reconciled)] == [13]
    assert out[13].figures["counted"] == 900 and out[13].runs["raw_lines"] == "r2"
    assert {o.first_difference for o in out if not o.reconciled} == {"raw_lines"}


def test_unknown_stages_are_refused():
    with pytest.raises(ValueError, match="unknown ledger stage"):
        reconcile_hour(HOUR, {"reported": row("raw_lines", 1)})


def test_the_migrations_stage_list_is_the_modules():
    sql = MIGRATION.read_text()
    listed = re.search(r"CHECK \(stage IN \(([^)]*)\)\)", sql).group(1)
    assert tuple(s.strip().strip("'") for s in listed.split(",")) == ledger.STAGES
    assert ledger.FIGURES == ledger.STAGES + ("counted",)


def test_as_dict_is_json_ready():
    import json

    d = reconcile_hour(HOUR, rows(published=899), dts()).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["landing_hour"] == "2026-11-24T13:00:00+00:00" and d["first_difference"] == "published" and d["counted"] == 900


# --- raw lines as Spark counts them --------------------------------------------------------------

CASES = [b"", b"\n", b"a", b"a\n", b"a\nb", b"a\r\nb\r\n", b"a\rb\r", b"a\r\rb", b"\n\n", b"a\n\nb\n", b"\r\n", b"a\r",
         b"a\n\r\nb", "é\n\u2028x\n".encode(), b"{}\n{}"]
# Lines by hand (Hadoop's LineRecordReader: \n, \r\n, \r end a line; an unterminated last line counts).
EXPECTED = [0, 1, 1, 1, 2, 2, 2, 3, 2, 3, 1, 1, 3, 2, 2]


def test_count_lines_by_hand():
    assert [count_lines(c) for c in CASES] == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"{}"]), max_size=12))
def test_count_lines_is_the_number_of_split_lines(parts):
    data = b"".join(parts)
    # An independent statement of the same rule: split on the terminators, drop one empty tail.
    pieces = re.split(rb"\r\n|\r|\n", data)
    expected = len(pieces) - (1 if pieces[-1] == b"" else 0)
    assert count_lines(data) == expected


def test_count_lines_agrees_with_spark(spark, tmp_path):
    from pyspark.sql import functions as F

    for i, data in enumerate(CASES):
        (tmp_path / f"{i:02d}.ndjson").write_bytes(data)
    counted = {
        r["f"]: r["n"]
        for r in spark.read.text(str(tmp_path)).groupBy(F.input_file_name().alias("f")).count().withColumnRenamed("count", "n").collect()
    }
    by_index = {int(Path(f).name.split(".")[0]): n for f, n in counted.items()}
    assert [by_index.get(i, 0) for i in range(len(CASES))] == [count_lines(c) for c in CASES]
