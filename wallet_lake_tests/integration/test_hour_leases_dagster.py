"""Landing-hour leases through Dagster (wallet_lake/defs/ops/hour_leases.py): real
`dagster asset materialize` processes on the project's instance, which bypass the run queue.

- Two runs of the same hour launched concurrently never overlap: the second waits, then runs.
- A run that cannot get its hour in time fails, naming the run that holds it.
- A run killed with SIGKILL keeps its hour until Dagster reports the run finished (what the code
  server or run monitoring does for a dead run worker), then the hour is taken over at once.
- Within a run, a step hands the hours to the next step; the run's last step releases them,
  and so does a failing step."""


import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from wallet_lake.contracts.landing import partition_key_for_hour
from wallet_lake.defs.ops.hour_leases import finished_status, holds_landing_hours
from wallet_lake.ops.hour_leases import HourLeaseTimeout, LeaseSettings, acquire, read_leases
from wallet_lake.partitions import hourly_landing
from wallet_lake.resources import PostgresResource
from wallet_lake_tests.integration import lease_probe_defs as probe

pytestmark = pytest.mark.integration

DEADLINE_S = 240
PROBE_FILE = Path(probe.__file__)


@pytest.fixture
def connect(stack_resources):
    return stack_resources["postgres"].connect


@pytest.fixture
def hour(connect):
    """A random partition hour of March 2026 (other tests use other months); its released lease row
    removed afterwards."""
    h = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(hours=random.Random(time.time_ns()).randrange(24 * 31))
    yield h
    with connect() as conn:
        conn.execute("DELETE FROM landing_hour_leases WHERE landing_hour = %s AND released_at IS NOT NULL", (h,))


def wait_for(predicate, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Probe:
    """`dagster asset materialize` of the probe asset for one hour, its output in a file."""

    def __init__(self, control: Path, hour: datetime, name: str, **env: str) -> None:
        self.control, self.output = control, control / f"{name}.out"
        cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", str(PROBE_FILE),
               "--select", "/".join(probe.PROBE_KEY), "--partition", partition_key_for_hour(hour)]
        environment = {**os.environ, probe.CONTROL_ENV: str(control), "WL_HOUR_LEASE_POLL_SECONDS": "0.2", **env}
        with open(self.output, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=environment, start_new_session=True)

    def text(self) -> str:
        return self.output.read_text()

    def finish(self) -> int:
        try:
            return self.proc.wait(DEADLINE_S)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)


def events(control: Path) -> list[str]:
    log = control / "events.log"
    return log.read_text().splitlines() if log.exists() else []


def entered(control: Path, exclude: tuple[str, ...] = ()) -> str | None:
    """Run id of the first probe that entered its step, other than `exclude`."""
    for e in events(control):
        kind, run_id = e.split(" ", 1)
        if kind == "enter" and run_id not in exclude:
            return run_id
    return None


def test_two_cli_runs_of_the_same_hour_never_overlap_the_second_waits_then_runs(connect, hour, tmp_path):
    first = Probe(tmp_path, hour, "first")
    try:
        run_1 = wait_for(lambda: entered(tmp_path), "the first run to hold the hour")
        second = Probe(tmp_path, hour, "second")
        try:
            waiting = wait_for(lambda: [l for l in second.text().splitlines() if "waiting (up to" in l], "the second run to wait")
            assert f"held by run {run_1}" in waiting[0]
            assert entered(tmp_path, exclude=(run_1,)) is None
            (tmp_path / f"go-{run_1}").touch()
            run_2 = wait_for(lambda: entered(tmp_path, exclude=(run_1,)), "the second run to get the hour")
            (tmp_path / f"go-{run_2}").touch()
            assert second.finish() == 0, second.text()[-3000:]
        finally:
            if second.proc.poll() is None:
                os.killpg(second.proc.pid, signal.SIGKILL)
        assert first.finish() == 0, first.text()[-3000:]
    finally:
        if first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGKILL)
    assert events(tmp_path) == [f"enter {run_1}", f"exit {run_1}", f"enter {run_2}", f"exit {run_2}"]
    [row], _ = read_leases(connect, [hour])
    assert row.holder == run_2 and row.released_at is not None  # the run's only step released it


def test_a_cli_run_that_cannot_get_its_hour_in_time_fails_naming_the_holder(connect, hour, tmp_path):
    holder = acquire(connect, [hour], "test-holder-run", detail="a test", settings=LeaseSettings(ttl=timedelta(minutes=10)))
    try:
        run = Probe(tmp_path, hour, "late", WL_HOUR_LEASE_WAIT_SECONDS="1")
        assert run.finish() != 0
    finally:
        holder.release()
    out = run.text()
    assert f"{hour:%Y-%m-%dT%H} is held by run test-holder-run (a test)" in out
    assert "Only one run may work on a landing hour at a time" in out
    assert events(tmp_path) == []  # the probe's work never started


def test_a_killed_run_keeps_its_hour_until_dagster_reports_it_failed_then_it_is_taken_over(connect, hour, tmp_path):
    instance = dg.DagsterInstance.get()
    victim = Probe(tmp_path, hour, "victim", WL_HOUR_LEASE_TTL_SECONDS="600")
    try:
        run_id = wait_for(lambda: entered(tmp_path), "the run to hold the hour")
    finally:
        os.killpg(victim.proc.pid, signal.SIGKILL)  # the run worker and its step process
    victim.proc.wait(DEADLINE_S)
    wait_for(lambda: not _group_alive(victim.proc.pid), "the killed processes to be gone")
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.STARTED  # nothing watches a CLI run: Dagster still thinks it runs

    quick = LeaseSettings(wait=timedelta(0))
    with pytest.raises(HourLeaseTimeout, match=f"held by run {run_id}"):
        acquire(connect, [hour], "test-next-run", settings=quick, finished=finished_status(instance))
    instance.report_run_failed(run)  # what the code server or run monitoring does for a dead run worker
    taker = acquire(connect, [hour], "test-next-run", settings=quick, finished=finished_status(instance))
    [row], _ = read_leases(connect, [hour])
    assert (row.holder, row.previous_holder, row.takeover_reason) == ("test-next-run", run_id, "holder run FAILURE")
    taker.release()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------ steps within one run

SEEN: dict[str, object] = {}


class SecondConfig(dg.Config):
    fail: bool = False


@dg.asset(key=["zz_test", "lease_first"], partitions_def=hourly_landing)
@holds_landing_hours
def lease_first(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    SEEN["first"] = read_leases(postgres.connect, [hourly_landing_hour(context)])[0][0]
    return dg.MaterializeResult()


@dg.asset(key=["zz_test", "lease_second"], deps=[["zz_test", "lease_first"]], partitions_def=hourly_landing)
@holds_landing_hours
def lease_second(context: dg.AssetExecutionContext, config: SecondConfig, postgres: PostgresResource) -> dg.MaterializeResult:
    SEEN["second"] = read_leases(postgres.connect, [hourly_landing_hour(context)])[0][0]
    if config.fail:
        raise dg.Failure("injected failure")
    return dg.MaterializeResult()


def hourly_landing_hour(context) -> datetime:
    from wallet_lake.contracts.landing import hour_from_partition_key

    return hour_from_partition_key(context.partition_key)


def materialize(stack_resources, hour, assets, fail=False):
    config = {"ops": {"zz_test__lease_second": {"config": {"fail": fail}}}} if lease_second in assets else None
    return dg.materialize(assets, partition_key=partition_key_for_hour(hour), resources={"postgres": stack_resources["postgres"]},
                          run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_a_step_hands_the_hours_to_the_next_step_and_the_last_step_releases_them(stack_resources, connect, hour):
    SEEN.clear()
    result = materialize(stack_resources, hour, [lease_first, lease_second])
    assert result.success
    first, second = SEEN["first"], SEEN["second"]
    assert first.holder == second.holder == result.run_id
    # The second step found the hour still held by its run (taken when the first step began), not released.
    assert second.acquired_at == first.acquired_at and second.released_at is None
    [after], _ = read_leases(connect, [hour])
    assert after.holder == result.run_id and after.released_at is not None


def test_a_run_of_the_first_step_alone_releases_the_hours_at_its_end(stack_resources, connect, hour):
    result = materialize(stack_resources, hour, [lease_first])
    assert result.success
    [after], _ = read_leases(connect, [hour])
    assert after.holder == result.run_id and after.released_at is not None


def test_a_failing_step_releases_the_hours(stack_resources, connect, hour):
    SEEN.clear()
    result = materialize(stack_resources, hour, [lease_first, lease_second], fail=True)
    assert not result.success and "second" in SEEN
    [after], _ = read_leases(connect, [hour])
    assert after.holder == result.run_id and after.released_at is not None
