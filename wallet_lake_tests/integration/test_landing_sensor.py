"""The S3 arrival sensor against the local moto S3 and a Dagster instance: an open hour waits
without failing the tick and is asked for once it has closed and settled, a late file of a
closed hour is asked for at once, and a tick lists only the prefixes it needs.

Each test gets its own bucket (other sessions write into the shared lake's current hour). The
clock is Dagster's partition clock (`dg.partition_loading_context`), which the sensor reads and
the partitions definition is evaluated at; no test sleeps."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.defs.landing.sensors import evaluate_arrivals, landing_arrivals_sensor
from wallet_lake.lake.arrivals import ArrivalSettings
from wallet_lake.partitions import hourly_landing
from wallet_lake_tests.s3_support import throwaway_lake

pytestmark = pytest.mark.integration
UTC = timezone.utc
H = timedelta(hours=1)


def key(hour: datetime, name: str) -> str:
    return f"raw/payments/dt={hour:%Y/%m/%d/%H}/{name}.ndjson"


def pk(hour: datetime) -> str:
    return f"{hour:%Y-%m-%d-%H}:00"


@pytest.fixture
def lake(stack_resources):
    """A fresh bucket on the local S3, deleted afterwards."""
    with throwaway_lake(stack_resources["lake"], "wl-sensor-test") as own:
        yield own


@pytest.fixture(scope="module")
def repository():
    from wallet_lake.definitions import defs

    d = defs()
    return (d if isinstance(d, dg.Definitions) else d.load()).get_repository_def()  # type: ignore[attr-defined]


def tick(instance, lake, repository, cursor, at: datetime | None = None):
    """One evaluation the way the daemon's code server runs it: the sensor function, then Dagster
    resolving each run request against the job's partitions (where an unknown partition raised)."""
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake}, repository_def=repository)
    if at is None:
        return landing_arrivals_sensor.evaluate_tick(ctx)
    with dg.partition_loading_context(effective_dt=at):
        return landing_arrivals_sensor.evaluate_tick(ctx)


def test_open_hour_waits_and_late_file_of_a_closed_hour_is_asked_for_at_once(lake, repository):
    instance = dg.DagsterInstance.ephemeral()
    store = lake.store()
    settle = ArrivalSettings.from_env().settle
    start = tick(instance, lake, repository, None)  # the empty bucket: nothing to ask for
    assert start.run_requests == []

    now = datetime.now(UTC)
    open_hour = now.replace(minute=0, second=0, microsecond=0)
    closed_hour = open_hour - 2 * H  # today or yesterday: a lookback day
    store.put_bytes(key(open_hour, "live"), b'{"payment_id": "p1"}\n')
    store.put_bytes(key(closed_hour, "late"), b'{"payment_id": "p2"}\n')

    # The real clock: the open hour's partition does not exist yet, and the tick does not fail.
    first = tick(instance, lake, repository, start.cursor)
    assert [r.partition_key for r in first.run_requests] == [pk(closed_hour)]
    assert first.run_requests[0].tags["dagster/partition"] == pk(closed_hour)

    closes = open_hour + H
    waiting = tick(instance, lake, repository, first.cursor, at=closes + settle - timedelta(seconds=1))
    assert waiting.run_requests == []
    assert pk(open_hour) in waiting.skip_message

    settled = tick(instance, lake, repository, waiting.cursor, at=closes + settle)
    assert [r.partition_key for r in settled.run_requests] == [pk(open_hour)]
    assert settled.run_requests[0].run_key.startswith(pk(open_hour) + "@")

    again = tick(instance, lake, repository, settled.cursor, at=closes + settle + timedelta(minutes=1))
    assert again.run_requests == []


class CountingStore:
    """The real S3 store, recording the prefixes it is asked to list."""

    def __init__(self, store) -> None:
        self.store, self.listed = store, []

    def list(self, prefix: str):
        self.listed.append(prefix)
        return self.store.list(prefix)


def _evaluate(instance, store, cursor, now, settings):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
    return evaluate_arrivals(ctx, store, now, settings)


def test_a_tick_lists_only_the_days_it_watches_and_the_waiting_hours(lake):
    instance = dg.DagsterInstance.ephemeral()
    store = CountingStore(lake.store())
    settings = ArrivalSettings(settle_seconds=300, lookback_days=1, backstop_days=3)
    # History the sensor must not read: a landing object in each of 20 older days.
    for back in range(5, 25):
        store.store.put_bytes(key(datetime(2026, 11, 24, 8, tzinfo=UTC) - timedelta(days=back), "old"), b"{}\n")
    last_hour = datetime(2026, 11, 23, 23, tzinfo=UTC)
    store.store.put_bytes(key(last_hour, "a"), b'{"payment_id": "p"}\n')

    def day(d: date) -> str:
        return f"raw/payments/dt={d:%Y/%m/%d}/"

    # 00:02: hour 23 of yesterday closed two minutes ago and settles at 00:05.
    r1 = _evaluate(instance, store, None, datetime(2026, 11, 24, 0, 2, tzinfo=UTC), settings)
    assert store.listed == [day(date(2026, 11, 24)), day(date(2026, 11, 23))]
    assert r1.run_requests == []
    store.listed.clear()
    r2 = _evaluate(instance, store, r1.cursor, datetime(2026, 11, 24, 0, 3, tzinfo=UTC), settings)
    assert store.listed == [day(date(2026, 11, 24)), day(date(2026, 11, 22)), "raw/payments/dt=2026/11/23/23/"]
    assert r2.run_requests == []
    store.listed.clear()
    r3 = _evaluate(instance, store, r2.cursor, datetime(2026, 11, 24, 0, 5, tzinfo=UTC), settings)
    assert store.listed == [day(date(2026, 11, 24)), day(date(2026, 11, 21)), "raw/payments/dt=2026/11/23/23/"]
    assert [r.partition_key for r in r3.run_requests] == [pk(last_hour)]


def test_first_tick_skips_hours_already_curated_and_a_rewrite_is_asked_for(lake):
    instance = dg.DagsterInstance.ephemeral()
    store = lake.store()
    settings = ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=0)
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    curated, fresh = datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 11, 24, 10, tzinfo=UTC)
    store.put_bytes(key(curated, "a"), b'{"payment_id": "p1"}\n')
    store.put_bytes(key(fresh, "a"), b'{"payment_id": "p2"}\n')
    # A run materializes curated_payments of hour 09 after its object landed (a backfill, say).
    @dg.asset(key=dg.AssetKey(CURATED_PAYMENTS), partitions_def=hourly_landing)
    def curated_payments() -> None:
        return None

    assert dg.materialize([curated_payments], instance=instance, partition_key=pk(curated)).success

    first = _evaluate(instance, store, None, now, settings)
    assert [r.partition_key for r in first.run_requests] == [pk(fresh)]

    # New content under the same key (a new ETag): asked for, although hour 09 was curated.
    store.put_bytes(key(curated, "a"), b'{"payment_id": "p1", "amount_cents": 5}\n')
    second = _evaluate(instance, store, first.cursor, now + timedelta(seconds=30), settings)
    assert [r.partition_key for r in second.run_requests] == [pk(curated)]
    third = _evaluate(instance, store, second.cursor, now + timedelta(seconds=60), settings)
    assert third.run_requests == []


def _run(instance, partition_key: str, status: dg.DagsterRunStatus, selection=None) -> dg.DagsterRun:
    """A run of the hourly job as the daemon records it (status and partition tag; a queued run
    must name the code location it will be launched from)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="wallet_lake.definitions"))
    origin = RemoteJobOrigin(repository_origin=RemoteRepositoryOrigin(code_location_origin=location, repository_name="__repository__"),
                             job_name="hourly_payments")
    run = dg.DagsterRun(job_name="hourly_payments", run_id=str(uuid.uuid4()), status=status, remote_job_origin=origin,
                        tags={"dagster/partition": partition_key}, asset_selection=selection)
    return instance.add_run(run)


def test_a_change_while_the_hours_run_is_still_queued_asks_for_no_second_run(lake):
    """An upload spanning two ticks: the second tick finds the hour's run still queued (it lists
    the hour later, so it reads the new object too) and asks for nothing; once no run of the hour
    is waiting to begin (it started, or was cancelled), a change is asked for again. A queued run
    of a subset that does not curate, or of another hour, does not count."""
    from wallet_lake.contracts.asset_keys import TOPIC_PAYMENTS_CURATED

    instance = dg.DagsterInstance.ephemeral()
    store = lake.store()
    settings = ArrivalSettings(settle_seconds=300, lookback_days=2, backstop_days=0)
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    store.put_bytes(key(hour, "a"), b'{"payment_id": "p1"}\n')
    first = _evaluate(instance, store, None, now, settings)
    assert [r.partition_key for r in first.run_requests] == [pk(hour)]
    queued = _run(instance, pk(hour), dg.DagsterRunStatus.QUEUED)  # the daemon queues the request
    _run(instance, pk(hour - H), dg.DagsterRunStatus.QUEUED)  # another hour's

    store.put_bytes(key(hour, "b"), b'{"payment_id": "p2"}\n')  # the upload's second half
    second = _evaluate(instance, store, first.cursor, now + timedelta(seconds=5), settings)
    assert second.run_requests == []
    assert second.cursor != first.cursor  # the change is accounted for: that run will read it

    instance.report_run_canceled(queued)
    _run(instance, pk(hour), dg.DagsterRunStatus.QUEUED, selection=frozenset({dg.AssetKey(TOPIC_PAYMENTS_CURATED)}))
    store.put_bytes(key(hour, "c"), b'{"payment_id": "p3"}\n')
    third = _evaluate(instance, store, second.cursor, now + timedelta(seconds=10), settings)
    assert [r.partition_key for r in third.run_requests] == [pk(hour)]  # a queued subset curates nothing

    _run(instance, pk(hour), dg.DagsterRunStatus.STARTED)  # began: it may have listed already
    store.put_bytes(key(hour, "d"), b'{"payment_id": "p4"}\n')
    fourth = _evaluate(instance, store, third.cursor, now + timedelta(seconds=15), settings)
    assert [r.partition_key for r in fourth.run_requests] == [pk(hour)]


def test_the_backstop_schedule_skips_an_hour_the_sensor_curated_and_runs_one_that_changed(lake):
    """The :20 schedule's tick against the local S3 and a Dagster instance: an hour curated (raw and
    curated materialized by one successful run) after its objects landed is skipped; after a run
    that failed past curation, after a new object, or for an hour never curated, it asks for a run.
    (The tick function, not evaluate_tick: a schedule context needs a persistent instance, and
    instance_for_test leaves a definitions state behind that breaks later loads in the session.)"""
    from wallet_lake.contracts.asset_keys import RAW_PAYMENTS, TOPIC_PAYMENTS_CURATED
    from wallet_lake.defs.landing.backstop import backstop_tick

    instance = dg.DagsterInstance.ephemeral()
    store = lake.store()
    now = datetime.now(UTC)
    scheduled = now.replace(minute=20, second=0, microsecond=0)
    hour = scheduled.replace(minute=0) - H
    store.put_bytes(key(hour, "a"), b'{"payment_id": "p1"}\n')
    store.put_bytes(key(hour, "b"), b'{"payment_id": "p2"}\n{"payment_id": "p3"}\n')
    listed = [o for o in store.list(f"raw/payments/dt={hour:%Y/%m/%d/%H}/")]

    @dg.asset(key=dg.AssetKey(RAW_PAYMENTS), partitions_def=hourly_landing)
    def raw_payments() -> dg.MaterializeResult:  # what the raw step records for a one-hour run
        return dg.MaterializeResult(metadata={"objects": len(listed), "bytes": sum(o.size for o in listed), "hours": 1})

    @dg.asset(key=dg.AssetKey(CURATED_PAYMENTS), partitions_def=hourly_landing, deps=[raw_payments])
    def curated_payments() -> None:
        return None

    @dg.asset(key=dg.AssetKey(TOPIC_PAYMENTS_CURATED), partitions_def=hourly_landing, deps=[curated_payments])
    def topic() -> None:
        raise RuntimeError("the broker is down")  # curated, then the run failed

    def asked(result) -> list[str]:
        return [result.partition_key] if isinstance(result, dg.RunRequest) else []

    assert asked(backstop_tick(instance, store, scheduled)) == [pk(hour)]  # never curated

    failed = dg.materialize([raw_payments, curated_payments, topic], instance=instance, partition_key=pk(hour), raise_on_error=False)
    assert not failed.success
    assert asked(backstop_tick(instance, store, scheduled)) == [pk(hour)]  # its run did not reach Postgres

    assert dg.materialize([raw_payments, curated_payments], instance=instance, partition_key=pk(hour)).success
    skipped = backstop_tick(instance, store, scheduled)
    assert isinstance(skipped, dg.SkipReason) and "already curated" in skipped.skip_message

    store.put_bytes(key(hour, "c"), b'{"payment_id": "p4"}\n')  # a late file after that run
    assert asked(backstop_tick(instance, store, scheduled)) == [pk(hour)]
    _run(instance, pk(hour), dg.DagsterRunStatus.QUEUED)  # the sensor asked for it: that run will read it
    queued = backstop_tick(instance, store, scheduled)
    assert isinstance(queued, dg.SkipReason) and "queued" in queued.skip_message
