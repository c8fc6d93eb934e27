"""Bounded lake queries over the compacted lake (lake/compaction.py, lake/scan_plan.py) answer
exactly what the latest-record view over every record answers, in every state the lake passes
through: hour files only, compacted with a movers index, a late file into an old dt, a rerun that
drops records, compacted again.

The expected answers are recomputed here from the records the test published, with the
contract's Python order (contracts.ordering.python_compare), not with the SQL the engine runs.
Payments move across dts: a second record minutes later (some across midnight), refunds days
later (some past every range), duplicates of one record in two landing hours, late landings.
Runs on a local-folder lake and on the stack's S3 (moto, SSE-KMS, a bucket of its own, read
through the API's local file cache)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import uuid
from collections import defaultdict

import pytest
from pyarrow import fs as pafs

from wallet_lake.contracts.landing import DAILY_PREFIX
from wallet_lake.contracts.ordering import python_compare
from wallet_lake.lake.compaction import compact_lake
from wallet_lake.lake.query import DuckDBLake, LakeQueryConfig
from wallet_lake.lake.store import LocalLakeStore, open_lake, s3_client
from wallet_lake_tests.api.conftest import payment
from wallet_lake_tests.lake_support import publish_rows

pytestmark = pytest.mark.integration

D0 = dt.date(2031, 3, 1)
DAYS = [D0 + dt.timedelta(days=i) for i in range(8)]
MERCHANTS = ("m_a", "m_b/x", "m_c")  # a '/' in a merchant id is escaped in the Hive path
STATEMENT = ("SELECT dt, merchant_id, status, sum(payment_count) AS n, sum(amount_cents) AS amount "
             "FROM report_status_daily GROUP BY 1, 2, 3")


def records(seed: int) -> dict[dt.datetime, list[dict]]:
    """Landing hour -> curated records, with payments that move across dts."""
    rng = random.Random(seed)
    by_hour: dict[dt.datetime, list[dict]] = defaultdict(list)

    def land(rec: dict, late: bool = False) -> None:
        hour = rec["created_at"].replace(minute=0, second=0, microsecond=0)
        by_hour[hour + dt.timedelta(hours=rng.randint(1, 40) if late else 0)].append(rec)

    for i in range(360):
        merchant = rng.choice(MERCHANTS)
        pid = f"p{seed}_{i}"
        day = rng.choice(DAYS[:6])
        created = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(
            seconds=rng.choice([rng.randrange(86_400), 86_400 - rng.randint(1, 90)]))
        first = payment(merchant, payment_id=pid, currency="EUR", status=rng.choice(["PENDING", "APPROVED", "DECLINED"]),
                        amount_cents=rng.randint(1, 10_000), created_at=created)
        land(first, late=rng.random() < 0.1)
        if rng.random() < 0.1:  # the same record landed twice
            land(dict(first), late=True)
        if first["status"] == "PENDING" and rng.random() < 0.7:  # settles minutes later, maybe the next dt
            land(payment(merchant, payment_id=pid, currency="EUR", status="APPROVED", amount_cents=first["amount_cents"],
                         created_at=created + dt.timedelta(seconds=rng.randint(1, 300))), late=rng.random() < 0.1)
        if rng.random() < 0.2:  # refunded days later, sometimes past the last range
            land(payment(merchant, payment_id=pid, currency="EUR", status="REFUNDED", amount_cents=first["amount_cents"],
                         created_at=created + dt.timedelta(days=rng.randint(1, 3), seconds=rng.randint(0, 3600))),
                 late=rng.random() < 0.3)
    return dict(by_hour)


def expected(by_hour: dict[dt.datetime, list[dict]], date_from: dt.date, date_to: dt.date) -> dict[tuple, tuple[int, int]]:
    latest: dict[str, dict] = {}
    for rec in (r for rows in by_hour.values() for r in rows):
        kept = latest.get(rec["payment_id"])
        if kept is None or python_compare(rec, kept) < 0:
            latest[rec["payment_id"]] = rec
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for rec in latest.values():
        if date_from <= rec["dt"] <= date_to:
            cell = out[(rec["dt"], rec["merchant_id"], rec["status"])]
            cell[0] += 1
            cell[1] += rec["amount_cents"]
    return {k: tuple(v) for k, v in out.items()}


def answered(engine: DuckDBLake, date_from: dt.date, date_to: dt.date) -> dict[tuple, tuple[int, int]]:
    rows = engine.query(STATEMENT, {}, scan_from=date_from, scan_to=date_to)
    return {(r["dt"], r["merchant_id"], r["status"]): (int(r["n"]), int(r["amount"])) for r in rows}


# Ranges of 1, 2, 4 and 8 days from every dt on a local lake; on S3 (slow small reads through moto) ranges that meet each kind
# of dt: one day, a range with moves inside it, ranges with moves past them, the newest dts.
S3_RANGES = [(DAYS[1], DAYS[1]), (DAYS[0], DAYS[3]), (DAYS[2], DAYS[5]), (DAYS[5], DAYS[7])]


def check_every_range(engine: DuckDBLake, by_hour, state: str) -> None:
    ranges = [(f, t) for i, f in enumerate(DAYS) for t in DAYS[i:] if (t - f).days in (0, 1, 3, 7)]
    if engine.local_root() is None:
        ranges = S3_RANGES
    for date_from, date_to in ranges:
        assert answered(engine, date_from, date_to) == expected(by_hour, date_from, date_to), (state, date_from, date_to)


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path):
    """(store, engine) over an empty lake of the test's own."""
    if request.param == "local":
        store = LocalLakeStore(tmp_path)
        yield store, DuckDBLake(LakeQueryConfig(engine="duckdb", bucket=str(tmp_path)), filesystem=pafs.LocalFileSystem(), store=store)
        return
    config = LakeQueryConfig.from_env()
    bucket = f"wl-compaction-{uuid.uuid4().hex[:12]}"
    client = s3_client(config.s3_endpoint_url, config.region)
    client.create_bucket(Bucket=bucket)
    store = open_lake(f"s3://{bucket}", kms_key_id=os.environ["WL_KMS_KEY_ID"], s3_endpoint_url=config.s3_endpoint_url, region=config.region)
    # As the stack's API reads S3: through local copies of the files (lake/file_cache.py).
    yield store, DuckDBLake(LakeQueryConfig(**{**config.__dict__, "bucket": bucket, "cache_dir": str(tmp_path / "cache")}), store=store)
    keys = [o.key for o in store.list("")]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
    client.delete_bucket(Bucket=bucket)


def test_bounded_queries_equal_the_full_latest_view_through_compaction_late_files_and_reruns(lake):
    store, _ = lake
    # A fresh engine per state: each reads the manifests as they are (a long-lived engine would
    # too; this keeps a failure's state obvious).
    engine = functools.partial(DuckDBLake, lake[1].config, filesystem=lake[1]._filesystem, store=store)
    by_hour = records(7)
    late_hours = {h: rows for h, rows in by_hour.items() if h.date() > DAYS[5]}
    current = {h: rows for h, rows in by_hour.items() if h not in late_hours}
    for hour, rows in sorted(current.items()):
        publish_rows(store, hour, rows)
    check_every_range(engine(), current, "hour files only")

    result = compact_lake(store, closed_before=DAYS[5])
    assert len(result.days) == 5 and result.movers_rows > 0
    assert store.list(DAILY_PREFIX)
    check_every_range(engine(), current, "compacted, index current")
    assert compact_lake(store, closed_before=DAYS[5]).summary()["days_compacted"] == 0  # idempotent

    # Hours that landed late (after the compaction) into old dts, and refunds past them.
    for hour, rows in sorted(late_hours.items()):
        publish_rows(store, hour, rows)
        current[hour] = rows
    check_every_range(engine(), current, "late files after the compaction")

    # A processor replays old events: earlier records of payments whose latest record is already
    # in a later, compacted dt land now, into an old dt. The index knew these payments on one dt only.
    later = [r for rows in current.values() for r in rows if r["dt"] == DAYS[3] and r["status"] != "REFUNDED"][:12]
    backdated = [payment(r["merchant_id"], payment_id=r["payment_id"], currency="EUR", status="PENDING",
                         amount_cents=r["amount_cents"], created_at=r["created_at"] - dt.timedelta(days=2)) for r in later]
    replay_hour = dt.datetime.combine(DAYS[7], dt.time(5), tzinfo=dt.timezone.utc)
    publish_rows(store, replay_hour, backdated)
    current[replay_hour] = backdated
    check_every_range(engine(), current, "earlier records of moved payments replayed into an old dt")

    # A rerun of a compacted hour that no longer has some of its records (a rule fix).
    rerun = sorted(h for h in current if h.date() == DAYS[1])[3]
    current[rerun] = current[rerun][::2]
    publish_rows(store, rerun, current[rerun])
    check_every_range(engine(), current, "a rerun dropped records of a compacted dt")

    result = compact_lake(store, closed_before=DAYS[7])
    assert result.summary()["days_compacted"] >= 2 and result.movers_rows is not None
    check_every_range(engine(), current, "compacted again")


def test_plan_reads_only_the_range_and_the_index_when_nothing_changed(tmp_path):
    store = LocalLakeStore(tmp_path)
    base = DuckDBLake(LakeQueryConfig(engine="duckdb", bucket=str(tmp_path)), filesystem=pafs.LocalFileSystem(), store=store)
    by_hour = records(11)
    for hour, rows in sorted(by_hour.items()):
        publish_rows(store, hour, rows)
    compact_lake(store, closed_before=DAYS[-1] + dt.timedelta(days=10))
    plan = DuckDBLake(base.config, filesystem=base._filesystem, store=store).snapshot(DAYS[1], DAYS[2])
    assert {f.dt for f in plan.day_files} == {DAYS[1], DAYS[2]} and not plan.hour_files
    assert not plan.presence_day_files and not plan.presence_hour_files and plan.rows_from is None
    assert plan.movers_key and min(plan.movers_dts) == DAYS[1]


def test_the_daily_asset_compacts_closed_dts_only_and_queries_use_them(stack_resources, lake):
    """The Dagster asset over a lake of its own: dts closed WL_COMPACTION_CLOSED_AFTER_DAYS ago
    are compacted, today's is not; a second run does nothing; answers stay exact."""
    import dagster as dg

    from wallet_lake.defs.curated.compaction import curated_payments_daily
    from wallet_lake.resources import with_changes

    store, engine = lake
    if not isinstance(store, LocalLakeStore):
        lake_resource = with_changes(stack_resources["lake"], bucket=store.bucket)
    else:
        lake_resource = with_changes(stack_resources["lake"], lake_uri=store.uri)
    today = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    by_hour: dict[dt.datetime, list[dict]] = {}
    for days_ago in (5, 4, 0):
        hour = today - dt.timedelta(days=days_ago)
        by_hour[hour] = [payment("m_a", payment_id=f"asset_{days_ago}_{i}", currency="EUR", status="APPROVED",
                                 amount_cents=10 + i, created_at=hour + dt.timedelta(minutes=i)) for i in range(5)]
        publish_rows(store, hour, by_hour[hour])
    # One payment refunded on the open dt: on the closed dts it no longer counts.
    refund = dict(by_hour[today - dt.timedelta(days=5)][0], status="REFUNDED", created_at=today + dt.timedelta(minutes=30))
    refund = payment("m_a", payment_id=refund["payment_id"], currency="EUR", status="REFUNDED", amount_cents=10, created_at=refund["created_at"])
    later = today + dt.timedelta(hours=1)
    by_hour[later] = [refund]
    publish_rows(store, later, [refund])

    def run() -> dict:
        result = dg.materialize([curated_payments_daily], resources={"lake": lake_resource}, instance=dg.DagsterInstance.ephemeral())
        assert result.success
        return result.asset_materializations_for_node("curated_payments_daily")[0].metadata

    first = run()
    assert first["days_compacted"].value == 2 and first["movers_rows"].value == 2
    assert run()["days_compacted"].value == 0
    first_day, last_day = (today - dt.timedelta(days=5)).date(), today.date()
    answer = answered(engine, first_day, last_day)
    assert answer == expected(by_hour, first_day, last_day)
    assert answer[(first_day, "m_a", "APPROVED")] == (4, 11 + 12 + 13 + 14)
