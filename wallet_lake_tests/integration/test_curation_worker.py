"""The warm curation worker (lake/curation_worker.py), a worker of the test's own on its own socket
over a folder lake: it curates what the generator put in an hour; a caller SIGKILLed mid-run
leaves the worker serving (its jobs cancelled, the hour whole) and the next run of that hour
correct; a worker SIGKILLed mid-run is a clear error for its caller, then "unavailable"; with no
worker the launcher curates in the run's own process and says so."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.generator.events import generate_with_stats
from wallet_lake.generator.writer import write_generated
from wallet_lake.lake import curation_worker, scratch
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.reader import read_curated_hour
from wallet_lake.lake.store import LocalLakeStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOUR = datetime(2026, 2, 3, 4, tzinfo=timezone.utc)


class Records:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level):
        return lambda msg: self.lines.append((level, msg))


def _spawn(socket: Path, log: Path, warmup_events: int = 0, *, tmp: Path | None = None, fault: str = "",
           resume_s: float = 600) -> subprocess.Popen:
    """A worker process of the test's own, not waited for; `tmp` its temp folder (TMPDIR), and
    `fault` Python run in it before the worker's main (a failure injected on purpose)."""
    env = {**os.environ, "WL_SPARK_MASTER": "local[1]", "WL_SPARK_WORKER_WARMUP_EVENTS": str(warmup_events),
           "WL_SPARK_WORKER_WARMUP_RESUME_S": str(resume_s)}
    if tmp is not None:
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
    warm_up = [] if warmup_events else ["--no-warm-up"]
    program = ["-c", f"{fault}\nfrom wallet_lake.lake.curation_worker import main; raise SystemExit(main())"] if fault else \
        ["-m", "wallet_lake.lake.curation_worker"]
    return subprocess.Popen([sys.executable, *program, "serve", *warm_up, "--socket", str(socket)],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _serve(socket: Path, log: Path, warmup_events: int = 0, *, tmp: Path | None = None, resume_s: float = 600) -> subprocess.Popen:
    """A worker process of the test's own, once it answers a ping."""
    proc = _spawn(socket, log, warmup_events, tmp=tmp, resume_s=resume_s)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            curation_worker.ping(str(socket))
            return proc
        except curation_worker.WorkerUnavailable:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"worker did not answer within 180 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    d = tmp_path_factory.mktemp("worker")
    socket, log = d / "w.sock", d / "worker.log"
    proc = _serve(socket, log)
    yield proc, socket, log
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _lake(tmp_path: Path, events: int, seed: int):
    store = LocalLakeStore(tmp_path / "lake")
    generated = generate_with_stats(HOUR, HOUR + timedelta(hours=1), seed=seed, events_per_hour=events)
    write_generated(store, generated, seed=seed)
    return store, generated.stats.hours[HOUR], {"bucket": "unused", "lake_uri": store.uri}


def _curate(socket: Path, lake: dict, run_id: str, log=None) -> list[dict]:
    return curation_worker.curate_on_worker(str(socket), lake=lake, hours=[HOUR], processed_at=datetime.now(timezone.utc),
                                            run_id=run_id, log=log)


def _assert_whole(store, stats, fig: dict) -> None:
    """Every generated line accounted for, and the published hour is what the figures say."""
    assert fig["published"] and fig["raw_lines"] == stats.lines
    assert fig["quarantined_rows"] == stats.bad_lines
    assert fig["raw_lines"] == fig["curated_rows"] + fig["quarantined_rows"] + fig["duplicates_removed"]
    assert len(read_curated_hour(store, HOUR)) == fig["curated_rows"]
    assert read_manifest(store, HOUR)["run_id"] == fig["run_id"]


def _wait_for(log: Path, text: str, seconds: float = 180) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in (content := log.read_text()):
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the worker's log within {seconds} s:\n{log.read_text()[-3000:]}")


def test_worker_warms_up_on_generated_events_in_the_background_once_it_serves(tmp_path):
    """WL_SPARK_WORKER_WARMUP_EVENTS: the warm-up curates that many generated events (one hour, in
    objects of WARMUP_EVENTS_PER_OBJECT), every line accounted for, while the worker answers."""
    events = 2 * curation_worker.WARMUP_EVENTS_PER_OBJECT + 500  # three objects
    socket, log = tmp_path / "wu.sock", tmp_path / "wu.log"
    proc = _serve(socket, log, warmup_events=events)
    try:
        _wait_for(log, f"warm-up: {events:,} events generated in 3 objects, curating them")
        assert curation_worker.ping(str(socket))["pong"]
        assert "warmed up on" not in log.read_text()  # answered while the warm-up curates
        text = _wait_for(log, "warmed up on")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    found = re.search(rf"warmed up on {events:,} generated events: ([\d,]+) lines = curated ([\d,]+) "
                      r"\+ quarantined ([\d,]+) \+ duplicates ([\d,]+) in [\d.]+ s\n", text)
    assert found, text[-3000:]
    raw, curated, quarantined, duplicates = (int(g.replace(",", "")) for g in found.groups())
    parts = list(curation_worker.warmup_parts(events))  # generated again the same way
    assert (raw, quarantined) == (sum(p.lines for p in parts), sum(p.bad_lines for p in parts))
    assert raw == curated + quarantined + duplicates and curated > 0


@pytest.mark.parametrize("moment", ["generating", "curating"])
def test_a_run_stops_the_warm_up_and_curates_on_the_worker(tmp_path, moment):
    """A run arriving while the worker warms up (just after a start or restart) does not wait for
    the warm-up: its generation stops before the next object, or its Spark jobs are cancelled, and
    the run curates on the worker."""
    socket, log = tmp_path / "wu.sock", tmp_path / "wu.log"
    proc = _serve(socket, log, warmup_events=200_000)  # 20 objects: far longer than the test's run, in local[1]
    store, stats, lake = _lake(tmp_path, 600, seed=14)
    try:
        if moment == "curating":
            _wait_for(log, "warm-up: 200,000 events generated in 20 objects, curating them")  # its Spark jobs start
        [fig] = _curate(socket, lake, "t-cuts-warm-up")
        _assert_whole(store, stats, fig)
        text = log.read_text()
        assert "stopping the warm-up: run t-cuts-warm-up came" in text, text[-3000:]
        stopped = re.search(r"warm-up stopped after [\d.]+ s \((\w+): ", text)
        assert stopped, text[-3000:]
        if moment == "generating":
            assert stopped.group(1) == "WarmUpCut" and "curating them" not in text, text[-3000:]
        else:
            assert stopped.group(1) != "WarmUpCut", text[-3000:]  # its running jobs were cancelled
        assert "warmed up on" not in text and "warm-up failed" not in text
        assert text.index("warm-up stopped") < text.index("run t-cuts-warm-up: curating")
        assert curation_worker.ping(str(socket))["pong"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("run_events", [600, 60_000])
def test_a_stopped_warm_up_resumes_for_what_the_runs_did_not_curate(tmp_path, run_events):
    """WL_SPARK_WORKER_WARMUP_RESUME_S: a run stops the warm-up; once the worker has been idle that
    long, the warm-up resumes for its events less the raw lines the run curated, and stops for
    good once done. A run as busy as the warm-up warmed the JIT itself: nothing resumes."""
    warmup = 2 * curation_worker.WARMUP_EVENTS_PER_OBJECT
    socket, log = tmp_path / "re.sock", tmp_path / "re.log"
    store, stats, lake = _lake(tmp_path, run_events, seed=18)
    proc = _serve(socket, log, warmup_events=warmup, resume_s=2)
    try:
        [fig] = _curate(socket, lake, "t-first")
        _assert_whole(store, stats, fig)
        text = log.read_text()
        assert "stopping the warm-up: run t-first came" in text and "warmed up on" not in text, text[-3000:]
        owed = warmup - stats.lines
        if owed > 0:
            text = _wait_for(log, f"warmed up on {owed:,} generated events")
            assert f"resuming the warm-up after 2 s without a run: {owed:,} events" in text, text[-3000:]
            assert text.index("run t-first: done") < text.index("resuming the warm-up")
        [fig] = _curate(socket, lake, "t-second")  # the warm-up done, or owed nothing: no resume after it
        time.sleep(5)
        text = log.read_text()
        assert text.count("resuming the warm-up") == (1 if owed > 0 else 0), text[-3000:]
        assert text.count("warmed up on") == (1 if owed > 0 else 0) and "warm-up failed" not in text
        assert curation_worker.ping(str(socket))["pong"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_each_resumed_warm_up_a_run_stops_doubles_the_idle_time_before_the_next(tmp_path):
    """What a stopped warm-up did is not counted, so a resumed one that a run stops makes the next
    wait twice as long: small runs just over the idle time apart start it a few times, not once
    per run. The first warm-up, stopped by the first run, does not count."""
    warmup = 5 * curation_worker.WARMUP_EVENTS_PER_OBJECT
    socket, log = tmp_path / "bo.sock", tmp_path / "bo.log"
    store, stats, lake = _lake(tmp_path, 600, seed=19)
    proc = _serve(socket, log, warmup_events=warmup, resume_s=2)
    try:
        _curate(socket, lake, "t-one")
        owed = warmup - stats.lines
        _wait_for(log, f"resuming the warm-up after 2 s without a run: {owed:,} events")
        [fig] = _curate(socket, lake, "t-two")  # at once: the resumed warm-up still runs (its generation alone takes seconds)
        _assert_whole(store, stats, fig)
        owed -= stats.lines
        text = _wait_for(log, f"warmed up on {owed:,} generated events")
        assert "stopping the warm-up: run t-two came" in text, text[-3000:]
        assert f"resuming the warm-up after 4 s without a run: {owed:,} events" in text, text[-3000:]
        assert text.count("resuming the warm-up") == 2 and "warm-up failed" not in text, text[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_warm_up_that_fails_ends_the_worker(tmp_path):
    """A worker that cannot curate generated events takes no run: it exits (status 1) with the
    reason, its socket refuses the next run (whose launcher curates in its own process), and
    its throwaway lake is gone."""
    socket, log, tmp = tmp_path / "f.sock", tmp_path / "f.log", tmp_path / "tmp"
    fault = ("import wallet_lake.lake.curation_run as run\n"
             "real = run.curate_landing_hours\n"
             "def failing(*a, **k):\n"
             "    if k.get('run_id') == 'warmup': raise OSError('injected: the warm-up cannot write its lake')\n"
             "    return real(*a, **k)\n"
             "run.curate_landing_hours = failing")
    proc = _spawn(socket, log, warmup_events=500, tmp=tmp, fault=fault)
    try:
        assert proc.wait(180) == 1, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert "error: warm-up failed, stopping the worker: OSError: injected: the warm-up cannot write its lake" in text, text[-3000:]
    assert "warmed up on" not in text
    assert not list(tmp.glob("wl-worker-warmup-*")), list(tmp.iterdir())
    with pytest.raises(curation_worker.WorkerUnavailable):
        _curate(socket, {"bucket": "unused", "lake_uri": str(tmp_path / "lake")}, "t-after-failed-warm-up")


def test_what_a_killed_worker_left_on_disk_is_removed_by_the_next_one(tmp_path):
    """A worker SIGKILLed (with its JVM) while it warms up leaves its throwaway lake, its
    curation's local output and Spark's blocks; the next worker's start removes them, and only
    them (a live process's folder stays)."""
    socket, log, tmp = tmp_path / "r.sock", tmp_path / "r.log", tmp_path / "tmp"
    proc = _serve(socket, log, warmup_events=100_000, tmp=tmp)
    _wait_for(log, "curating them")
    deadline = time.monotonic() + 120
    while not any(f.is_file() for f in tmp.glob("wl-spark-*/blockmgr-*/*/*")):  # killed once Spark has shuffle blocks
        assert time.monotonic() < deadline and "warmed up on" not in log.read_text(), log.read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sorted(p.name.split(str(proc.pid))[0] for p in tmp.iterdir() if f"-{proc.pid}." in p.name)
    assert left == ["wl-curate-", "wl-spark-", "wl-worker-warmup-"], sorted(p.name for p in tmp.iterdir())
    assert sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) > 100_000  # the generated lake at least
    assert list(tmp.glob(f"wl-spark-{proc.pid}.*/liblz4-java-*.so"))  # the JVM's temp folder is the swept one too
    live = scratch.make(scratch.CURATION_PREFIX, tmp)  # this process's: it runs
    log2 = tmp_path / "r2.log"
    proc2 = _serve(socket, log2, tmp=tmp)
    try:
        assert sorted(p.name for p in tmp.iterdir() if f"-{proc.pid}." in p.name) == []
        assert live.exists()
        assert log2.read_text().count("left by a process that was killed") == 3, log2.read_text()[-3000:]
        store, stats, lake = _lake(tmp_path, 600, seed=17)
        [fig] = _curate(socket, lake, "t-after-sweep")
        _assert_whole(store, stats, fig)
    finally:
        os.killpg(proc2.pid, signal.SIGKILL)
        proc2.wait()


def test_worker_curates_an_hour_and_streams_its_log(worker, tmp_path):
    _, socket, _ = worker
    store, stats, lake = _lake(tmp_path, 600, seed=11)
    records = Records()
    [fig] = _curate(socket, lake, "t-worker-1", log=records)
    _assert_whole(store, stats, fig)
    assert ("info", f"{HOUR.isoformat()}: raw {stats.lines} = curated {fig['curated_rows']} + quarantined {stats.bad_lines} "
            f"+ duplicates {fig['duplicates_removed']} ({fig['curated_files']} files, published)") in records.lines, records.lines


def test_a_ping_behind_a_run_gives_up_in_time_and_the_worker_serves_on(worker, tmp_path):
    """A ping waits its turn behind a run; with a timeout it gives up (WorkerUnavailable), and the
    worker, finding that ping's caller gone when it gets to it, serves on."""
    proc, socket, _ = worker
    store, stats, lake = _lake(tmp_path, 60_000, seed=16)
    busy = threading.Thread(target=lambda: _curate(socket, lake, "t-busy"))
    busy.start()
    try:
        time.sleep(1.0)  # its request taken
        with pytest.raises(curation_worker.WorkerUnavailable, match="did not answer within 0.5 s"):
            curation_worker.ping(str(socket), timeout=0.5)
    finally:
        busy.join()
    assert curation_worker.ping(str(socket))["pong"] and proc.poll() is None
    assert read_manifest(store, HOUR)["run_id"] == "t-busy"


def test_caller_killed_mid_run_leaves_the_worker_serving(worker, tmp_path):
    proc, socket, log = worker
    store, stats, lake = _lake(tmp_path, 60_000, seed=12)
    caller = subprocess.Popen([sys.executable, "-c", (
        "import json,sys; from datetime import datetime, timezone; from wallet_lake.lake import curation_worker as w;"
        f"w.curate_on_worker({str(socket)!r}, lake=json.loads(sys.argv[1]), hours=[datetime.fromisoformat({HOUR.isoformat()!r})],"
        " processed_at=datetime.now(timezone.utc), run_id='t-killed')"), json.dumps(lake)], cwd=ROOT)
    deadline = time.monotonic() + 120  # killed once its Spark jobs run (the raw lines are being read)
    while "run t-killed: curating" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    [fig] = _curate(socket, lake, "t-after-kill")  # waits for the killed run's request to end
    _assert_whole(store, stats, fig)
    assert proc.poll() is None
    text = log.read_text()
    assert "caller of run t-killed left" in text or "dropped run t-killed" in text, text[-2000:]


def test_worker_killed_mid_run_is_a_clear_error_and_a_run_it_had_not_taken_goes_elsewhere(tmp_path):
    """The run the worker was curating fails (WorkerFailed); a run still waiting its turn had not
    been taken, so its caller may curate it elsewhere (WorkerUnavailable: the launcher's own
    process); then the socket is gone."""
    socket, log = tmp_path / "k.sock", tmp_path / "k.log"
    proc = _serve(socket, log)
    _, _, lake = _lake(tmp_path, 60_000, seed=13)
    queued: dict[str, Exception] = {}

    def wait_in_line():
        try:
            _curate(socket, lake, "t-queued")
        except Exception as e:  # noqa: BLE001 - the test inspects it
            queued["t-queued"] = e

    def queue_then_kill():
        _wait_for(log, "run t-worker-killed: curating", 120)
        waiting = threading.Thread(target=wait_in_line)
        try:
            waiting.start()
            time.sleep(2)  # its request sent, behind the running one
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
        waiting.join()

    killer = threading.Thread(target=queue_then_kill)
    try:
        killer.start()
        with pytest.raises(curation_worker.WorkerFailed, match="went away during run t-worker-killed"):
            _curate(socket, lake, "t-worker-killed")
        killer.join()
        proc.wait()
        assert isinstance(queued.get("t-queued"), curation_worker.WorkerUnavailable), queued
        assert "went away before taking run t-queued" in str(queued["t-queued"])
        assert "run t-queued: curating" not in log.read_text()
        with pytest.raises(curation_worker.WorkerUnavailable, match="no curation worker"):
            _curate(socket, lake, "t-next")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_run_sent_while_the_worker_starts_waits_for_it(tmp_path):
    """The socket exists before the JVM and the Spark session: a run sent then is curated by the
    worker once it serves, not refused (which would start a cold JVM in the run's process)."""
    socket, log = tmp_path / "s.sock", tmp_path / "s.log"
    proc = _spawn(socket, log)
    store, stats, lake = _lake(tmp_path, 600, seed=15)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        text = log.read_text()  # the JVM and the session still starting: the case under test
        assert "Setting default log level" not in text and "serving on" not in text, text
        [fig] = _curate(socket, lake, "t-while-starting")
        _assert_whole(store, stats, fig)
        text = log.read_text()
        assert text.index("serving on") < text.index("run t-while-starting: curating")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_launcher_without_a_worker_curates_in_the_runs_process(tmp_path, stack_resources):
    from dagster_pyspark import LazyPySparkResource

    from wallet_lake.defs.curated.assets import curated_payments
    from wallet_lake.defs.curated.launcher import CurationLauncher
    from wallet_lake.resources import LakeResource
    from wallet_lake.spark import spark_config
    from wallet_lake_tests.ledger_support import forget_hours

    store, stats, lake = _lake(tmp_path, 300, seed=14)
    try:
        result = dg.materialize(
            [curated_payments], partition_key=HOUR.strftime("%Y-%m-%d-%H:00"),
            resources={
                "lake": LakeResource(**lake),
                "lazy_pyspark": LazyPySparkResource(spark_config={**spark_config(), "spark.master": "local[1]"}),
                "curation_launcher": CurationLauncher(mode="local", worker_socket=str(tmp_path / "none.sock")),
                "postgres": stack_resources["postgres"],
            },
            run_config={"ops": {curated_payments.op.name: {"config": {"register_partitions": False}}}},
        )
    finally:
        forget_hours(stack_resources["postgres"], [HOUR])
    md = next(e.materialization for e in result.get_asset_materialization_events()
              if e.asset_key == dg.AssetKey(CURATED_PAYMENTS)).metadata
    assert md["engine"].value == "Spark in the run's process"
    assert md["raw_lines"].value == stats.lines
    assert len(read_curated_hour(store, HOUR)) == md["curated_rows"].value
