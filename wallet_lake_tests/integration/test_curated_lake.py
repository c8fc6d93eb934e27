"""Curation of landing hours into a folder lake (the same code as on S3, without the stack):
hand-written events across landing hours and midnight, the latest view on DuckDB, reruns and
backfills leaving the lake identical, readers never seeing half an hour, the quarantine as
Parquet that DuckDB reads, and replaying quarantined lines after a fix."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from wallet_lake.contracts.landing import manifest_key
from wallet_lake.lake import curation_run as cr
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.reader import current_curated_keys, read_curated_hour, read_quarantine_hour_table
from wallet_lake.lake.replay import replay_quarantine, split_concatenated_objects
from wallet_lake.lake.spark_runner import WRITE_PARTITIONS_CONF
from wallet_lake.lake.store import LocalLakeStore
from wallet_lake.lake.views import LATEST_VIEW_SQL

UTC = timezone.utc
H1 = datetime(2026, 5, 17, 22, tzinfo=UTC)  # three landing hours across midnight
H2 = H1 + timedelta(hours=1)
H3 = H1 + timedelta(hours=3)  # 2026-05-18T01
PROCESSED = datetime(2026, 5, 18, 2, 0, 0, tzinfo=UTC)


def ev(pid: str, status: str, created: str, amount: int = 1000, merchant: str = "m-1", **extra) -> str:
    body = {"payment_id": pid, "merchant_id": merchant, "amount_cents": amount, "currency": "EUR", "status": status,
            "created_at": created, **extra}
    return json.dumps(body, separators=(",", ":"))


HOURS = {
    H1: [
        ev("p-refund", "APPROVED", "2026-05-17T22:10:00Z"),
        ev("p-state", "PENDING", "2026-05-17T22:20:00Z"),
        ev("p-tie", "DECLINED", "2026-05-17T22:30:00Z", decline_reason="do_not_honor"),
        ev("p-resend", "APPROVED", "2026-05-17T22:40:00Z"),
        ev("p-late-midnight", "APPROVED", "2026-05-17T23:59:59.900-02:00"),  # 2026-05-18T01:59:59.9Z
        "not json at all",
        '{"payment_id":"p-joined-1","merchant_id":"m-2","amount_cents":5,"currency":"EUR","status":"APPROVED","created_at":"2026-05-17T22:50:00Z"}'
        '{"payment_id":"p-joined-2","merchant_id":"m-2","amount_cents":6,"currency":"EUR","status":"APPROVED","created_at":"2026-05-17T22:51:00Z"}',
    ],
    H2: [
        ev("p-state", "APPROVED", "2026-05-17T22:20:00Z"),  # same instant, later lifecycle state
        ev("p-tie", "FAILED", "2026-05-17T22:30:00Z"),  # same instant, same rank: contents decide
        ev("p-resend", "APPROVED", "2026-05-17T22:40:00Z"),  # an exact re-send an hour later
        ev("p-two-in-hour", "PENDING", "2026-05-17T23:05:00Z"),
        ev("p-two-in-hour", "APPROVED", "2026-05-17T23:06:00Z", merchant="m-2"),
    ],
    H3: [
        ev("p-refund", "REFUNDED", "2026-05-18T00:30:00+00:00"),  # hours later, after midnight
        ev("p-state", "PENDING", "2026-05-17T22:20:00Z"),  # an old state arriving late
        ev("p-two-in-hour", "REFUNDED", "2026-05-18T03:06:00+02:00", merchant="m-2"),  # 01:06Z
    ],
}
# By hand: the latest record per payment over the three hours.
LATEST = {
    "p-refund": ("REFUNDED", date(2026, 5, 18), "m-1"),
    "p-state": ("APPROVED", date(2026, 5, 17), "m-1"),
    "p-tie": ("FAILED", date(2026, 5, 17), "m-1"),  # status DESC: FAILED > DECLINED
    "p-resend": ("APPROVED", date(2026, 5, 17), "m-1"),
    "p-late-midnight": ("APPROVED", date(2026, 5, 18), "m-1"),
    "p-two-in-hour": ("REFUNDED", date(2026, 5, 18), "m-2"),
}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    from wallet_lake.spark import spark_config

    builder = SparkSession.builder
    for k, v in {**spark_config(), "spark.master": "local[1]", "spark.sql.shuffle.partitions": "2",
                 "spark.ui.showConsoleProgress": "false"}.items():
        builder = builder.config(k, v)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def land(store, hours: dict, name: str = "events-0000.ndjson") -> None:
    for hour, lines in hours.items():
        store.put_bytes(f"raw/payments/dt={hour:%Y/%m/%d/%H}/{name}", "".join(line + "\n" for line in lines).encode())


def snapshot(store) -> dict:
    """Per hour: curated rows (without processed_at) and file count; plus every curated file."""
    out = {}
    for hour in HOURS:
        rows = read_curated_hour(store, hour)
        out[hour] = (sorted(json.dumps({k: str(v) for k, v in r.items() if k != "processed_at"}, sort_keys=True) for r in rows),
                     len(read_manifest(store, hour)["curated_keys"]))
    return out


def all_curated_files(store) -> set[str]:
    return {o.key for o in store.list("curated/payments/") if o.key.endswith(".parquet")}


def curated_view(con, files: list[str]) -> None:
    """curated_payments in DuckDB over these files (dt and merchant_id from the Hive path)."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW curated_payments AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
                "hive_types = {'dt': DATE, 'merchant_id': VARCHAR})")


def latest_view(store) -> dict:
    con = duckdb.connect()
    curated_view(con, [str(Path(store.root) / k) for k in current_curated_keys(store)])
    rows = con.execute(f"SELECT payment_id, status, dt, merchant_id FROM ({LATEST_VIEW_SQL})").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.fixture
def lake(tmp_path):
    store = LocalLakeStore(tmp_path / "lake")
    land(store, HOURS)
    return store


def test_each_hour_has_one_row_per_payment_and_the_latest_view_keeps_the_latest_record(spark, lake):
    for hour in HOURS:
        stats = cr.curate_landing_hour(spark, lake, hour, PROCESSED)
        assert stats.published and stats.accounted, stats.failed_checks
        ids = [r["payment_id"] for r in read_curated_hour(lake, hour)]
        assert len(ids) == len(set(ids))
    h2 = {r["payment_id"]: r for r in read_curated_hour(lake, H2)}
    assert (h2["p-two-in-hour"]["status"], h2["p-two-in-hour"]["merchant_id"]) == ("APPROVED", "m-2")
    assert latest_view(lake) == LATEST


def test_accounting_per_hour_by_hand(spark, lake):
    stats = {s.landing_hour: s for s in cr.curate_landing_hours(spark, lake, list(HOURS), PROCESSED)}
    h1, h2, h3 = (stats[h.isoformat()] for h in (H1, H2, H3))
    assert (h1.raw_lines, h1.curated_rows, h1.quarantined_rows, h1.duplicates_removed) == (7, 5, 2, 0)
    assert (h2.raw_lines, h2.curated_rows, h2.quarantined_rows, h2.duplicates_removed) == (5, 4, 0, 1)
    assert (h3.raw_lines, h3.curated_rows, h3.quarantined_rows, h3.duplicates_removed) == (3, 3, 0, 0)
    assert h1.quarantine_reasons == {"not_a_json_object": 2}


def test_rerun_and_backfill_leave_the_lake_identical(spark, lake):
    for hour in HOURS:
        cr.curate_landing_hour(spark, lake, hour, PROCESSED)
    before, files_before = snapshot(lake), all_curated_files(lake)
    assert files_before == set(current_curated_keys(lake))

    cr.curate_landing_hour(spark, lake, H2, PROCESSED + timedelta(hours=1))  # rerun one hour
    after_rerun, files_rerun = snapshot(lake), all_curated_files(lake)
    assert after_rerun == before
    assert len(files_rerun) == len(files_before) and files_rerun == set(current_curated_keys(lake))
    assert files_rerun != files_before  # new run-scoped names for H2; the old ones are gone

    stats = cr.curate_landing_hours(spark, lake, list(HOURS), PROCESSED + timedelta(hours=2))  # backfill, one pass
    assert {s.run_id for s in stats} == {stats[0].run_id}
    assert snapshot(lake) == before
    assert len(all_curated_files(lake)) == len(files_before) and all_curated_files(lake) == set(current_curated_keys(lake))
    assert latest_view(lake) == LATEST


def test_rerun_after_the_hours_input_changed_replaces_exactly_that_hours_rows(spark, lake):
    for hour in HOURS:
        cr.curate_landing_hour(spark, lake, hour, PROCESSED)
    others = {h: read_curated_hour(lake, h) for h in (H1, H3)}
    land(lake, {H2: HOURS[H2][:1] + [ev("p-new", "APPROVED", "2026-05-17T23:30:00Z", merchant="m-9")]})
    cr.curate_landing_hour(spark, lake, H2, PROCESSED)
    assert sorted(r["payment_id"] for r in read_curated_hour(lake, H2)) == ["p-new", "p-state"]
    assert {h: read_curated_hour(lake, h) for h in (H1, H3)} == others
    assert not [k for k in all_curated_files(lake) if "merchant_id=m-2" in k and f"lh-{H2:%Y%m%dT%H}-" in k]


class WatchedStore(LocalLakeStore):
    """A folder lake that, after every write or delete, checks what readers would see."""

    def __init__(self, root, check):
        super().__init__(root)
        self.check, self.events = check, 0

    def put_bytes(self, key, data):
        super().put_bytes(key, data)
        self.events += 1
        self.check(self)

    def put_file(self, key, path):
        super().put_file(key, path)
        self.events += 1
        self.check(self)

    def delete(self, keys):
        for k in list(keys):
            super().delete([k])
            self.events += 1
            self.check(self)


def test_readers_see_the_old_hour_or_the_new_one_at_every_step_of_a_rerun(spark, tmp_path):
    plain = LocalLakeStore(tmp_path / "lake")
    land(plain, HOURS)
    for hour in HOURS:
        cr.curate_landing_hour(spark, plain, hour, PROCESSED)
    old = {r["payment_id"]: r["status"] for r in read_curated_hour(plain, H2)}
    land(plain, {H2: HOURS[H2] + [ev("p-extra", "APPROVED", "2026-05-17T23:40:00Z", merchant="m-7")]})
    new = {**old, "p-extra": "APPROVED"}
    seen = []

    def check(store):
        # Through the manifest: every listed file exists and the hour is old or new, whole.
        rows = {r["payment_id"]: r["status"] for r in read_curated_hour(store, H2)}
        assert rows in (old, new), rows
        seen.append("new" if rows == new else "old")
        # Listing the prefix (as Athena does): the latest view still has each payment once.
        con = duckdb.connect()
        curated_view(con, [str(p) for p in Path(store.root, "curated/payments").rglob("*.parquet")])
        ids = [r[0] for r in con.execute(f"SELECT payment_id FROM ({LATEST_VIEW_SQL})").fetchall()]
        assert len(ids) == len(set(ids)) and set(new) - {"p-extra"} <= set(ids)

    watched = WatchedStore(plain.root, check)
    cr.curate_landing_hour(spark, watched, H2, PROCESSED + timedelta(hours=1))
    assert watched.events >= 3 and seen[0] == "old" and seen[-1] == "new"
    assert seen == sorted(seen, key=["old", "new"].index)  # never back to old


def test_quarantine_is_parquet_under_its_prefix_that_duckdb_reads_with_source_and_line(spark, lake):
    cr.curate_landing_hours(spark, lake, list(HOURS), PROCESSED)
    con = duckdb.connect()
    rows = con.execute(
        "SELECT landing_hour, source_object, line_number, raw_line, reasons, reason, curated_version "
        "FROM read_parquet(?, hive_partitioning = true) ORDER BY line_number",
        [str(Path(lake.root) / "quarantine/payments/*/*.parquet")],
    ).fetchall()
    key = f"raw/payments/dt={H1:%Y/%m/%d/%H}/events-0000.ndjson"
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (f"{H1:%Y%m%dT%H}", key, 6, ["not_a_json_object"]),
        (f"{H1:%Y%m%dT%H}", key, 7, ["not_a_json_object"]),
    ]
    lines = (Path(lake.root) / key).read_text().split("\n")
    assert [r[3] for r in rows] == [lines[5], lines[6]]
    assert pq.read_schema(next(Path(lake.root, "quarantine/payments").rglob("*.parquet"))).names[:3] == ["source_object", "line_number", "raw_line"]


def test_replay_of_repaired_quarantined_lines_curates_them_on_the_next_run(spark, lake):
    cr.curate_landing_hour(spark, lake, H1, PROCESSED)
    dry = replay_quarantine(lake, H1, reasons=["not_a_json_object"], repair=split_concatenated_objects, dry_run=True)
    assert (dry.lines_selected, dry.lines_written, dry.written) == (2, 3, False)  # garbage stays one line
    result = replay_quarantine(lake, H1, reasons=["not_a_json_object"], repair=split_concatenated_objects)
    assert result.written and result.key.startswith(f"raw/payments/dt={H1:%Y/%m/%d/%H}/replay-")
    again = replay_quarantine(lake, H1, reasons=["not_a_json_object"], repair=split_concatenated_objects)
    assert again.key == result.key and not again.written  # same content: nothing new

    stats = cr.curate_landing_hour(spark, lake, H1, PROCESSED + timedelta(hours=1))
    ids = {r["payment_id"] for r in read_curated_hour(lake, H1)}
    assert {"p-joined-1", "p-joined-2"} <= ids
    # The original bad lines stay quarantined, and the garbage line twice now (original + replay).
    assert (stats.raw_lines, stats.quarantined_rows, stats.accounted) == (10, 3, True)
    sources = {r["source_object"] for r in read_quarantine_hour_table(lake, H1).to_pylist()}
    assert sources == {f"raw/payments/dt={H1:%Y/%m/%d/%H}/events-0000.ndjson", result.key}


def test_in_lake_mode_reads_and_writes_through_the_lake_and_matches_local_mode(spark, lake, tmp_path):
    cr.curate_landing_hours(spark, lake, list(HOURS), PROCESSED)
    local = snapshot(lake)
    stats = cr.curate_landing_hours(spark, lake, list(HOURS), PROCESSED, settings=replace(cr.CurationSettings(), in_lake=True))
    assert all(s.published for s in stats)
    assert snapshot(lake) == local
    assert not lake.list(cr.SCRATCH_PREFIX)  # Spark's output in the lake is cleaned up


def test_an_hour_without_landing_objects_publishes_an_empty_hour(spark, lake):
    empty = H1 - timedelta(hours=5)
    stats = cr.curate_landing_hour(spark, lake, empty, PROCESSED)
    assert (stats.raw_lines, stats.curated_rows, stats.published) == (0, 0, True)
    assert json.loads(lake.get_bytes(manifest_key(empty)))["curated_keys"] == []


@pytest.mark.parametrize("one_pass_bytes", [cr.CurationSettings().quarantine_one_pass_bytes, 0], ids=["one-pass", "count-first"])
@pytest.mark.parametrize("split_bytes", [2048, cr.CurationSettings().split_bytes], ids=["2KiB-splits", "default-splits"])
def test_quarantined_lines_carry_their_object_and_line_number_across_input_splits(spark, tmp_path, split_bytes, one_pass_bytes):
    """Objects cut into many input splits (2 KiB) or packed together into one (the default): each
    invalid line is numbered within its own object, as counted here from the objects' text,
    whether the quarantine counts the splits in its own pass or first (few or many invalid lines)."""
    import random

    rng = random.Random(30)
    store = LocalLakeStore(tmp_path / "lake")
    names = ["events-0000.ndjson", "events 0001+é.ndjson", "events-0002.ndjson"]
    expected, raw_lines = set(), {}
    for hour in (H1, H2):
        raw_lines[hour] = 0
        for n, name in enumerate(names):
            lines = [ev(f"p-{hour:%H}-{n}-{i}", "APPROVED", f"{hour:%Y-%m-%dT%H}:{i % 60:02d}:00Z", merchant=f"m-é{i % 3}")
                     for i in range(150 + 40 * n)]
            for at in sorted({0, len(lines) - 1, *rng.sample(range(len(lines)), 12)}, reverse=True):
                lines[at] = rng.choice(["not json", "", '{"payment_id": 7}', "{" + "x" * rng.randint(1, 400)])
            key = f"raw/payments/dt={hour:%Y/%m/%d/%H}/{name}"
            store.put_bytes(key, "".join(line + "\n" for line in lines).encode())
            raw_lines[hour] += len(lines)
            expected |= {(f"{hour:%Y%m%dT%H}", key, i + 1, line) for i, line in enumerate(lines) if not line.startswith('{"payment_id":"')}
    settings = replace(cr.CurationSettings(), split_bytes=split_bytes, quarantine_one_pass_bytes=one_pass_bytes)
    stats = cr.curate_landing_hours(spark, store, [H1, H2], PROCESSED, settings=settings)
    assert all(s.published and s.accounted for s in stats)
    assert {s.landing_hour: s.raw_lines for s in stats} == {h.isoformat(): n for h, n in raw_lines.items()}
    rows = duckdb.connect().execute(
        "SELECT landing_hour, source_object, line_number, raw_line FROM read_parquet(?, hive_partitioning = true)",
        [str(Path(store.root) / "quarantine/payments/*/*.parquet")],
    ).fetchall()
    assert len(rows) == len(expected) and set(rows) == expected


def _stage_task_counts(spark, group: str) -> set[int]:
    tracker = spark.sparkContext.statusTracker()
    return {tracker.getStageInfo(s).numTasks for j in tracker.getJobIdsForGroup(group)
            for s in tracker.getJobInfo(j).stageIds if tracker.getStageInfo(s) is not None}


def test_the_write_partitions_setting_sets_the_write_tasks_and_changes_no_row_or_file(spark, tmp_path):
    """spark_write_partitions (WRITE_PARTITIONS_CONF, set by spark_config()): the curated write's
    task count. Each (hour, dt, merchant_id) stays one task's, so one file, and the hour's rows are
    the same with 1 or 7 tasks as with Spark's shuffle partitions (unset: Glue's way)."""
    merchants = 12
    lines = [ev(f"p-{i}", "APPROVED", f"2026-05-17T22:{i % 60:02d}:00Z", merchant=f"m-{i % merchants}") for i in range(90)]
    original = spark.conf.get(WRITE_PARTITIONS_CONF, None)
    seen = {}
    try:
        for tasks in (0, 1, 7):
            store = LocalLakeStore(tmp_path / f"lake-{tasks}")
            land(store, {H1: lines})
            spark.conf.set(WRITE_PARTITIONS_CONF, str(tasks))
            group = f"t-write-partitions-{tasks}"
            spark.sparkContext.setJobGroup(group, group)
            stats = cr.curate_landing_hour(spark, store, H1, PROCESSED)
            assert stats.published and stats.curated_rows == 90
            assert len(read_manifest(store, H1)["curated_keys"]) == merchants  # one dt: one file per merchant
            counts = _stage_task_counts(spark, group)
            assert (7 in counts) == (tasks == 7), counts  # 7 tasks only when asked for (1 is also the raw read's)
            seen[tasks] = sorted(json.dumps({k: str(v) for k, v in r.items() if k != "processed_at"}, sort_keys=True)
                                 for r in read_curated_hour(store, H1))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # this thread's later jobs in no group
        if original is None:
            spark.conf.unset(WRITE_PARTITIONS_CONF)
        else:
            spark.conf.set(WRITE_PARTITIONS_CONF, original)
    assert seen[1] == seen[0] and seen[7] == seen[0]
