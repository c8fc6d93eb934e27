"""The warm curation engine of the local launcher: one long-lived process that holds a Spark
session (JVM started and JIT-warmed once) and curates landing hours on request.

Why: every Dagster run otherwise starts a JVM and a Spark session and runs its jobs cold (20-40 s
of a 1M-event hour). Why not Spark Connect 3.5: the curated job counts invalid lines and
duplicates in the same pass with pyspark Observation, which the Connect client supports only from
Spark 4.0 (README, "Freshness").

    python -m wallet_lake.lake.curation_worker serve   # stack/wallet-stack up starts it
    python -m wallet_lake.lake.curation_worker ping

Protocol: multiprocessing.connection over a Unix socket (WL_SPARK_WORKER_SOCKET, created 0600:
only this user's processes reach it), JSON messages, never pickle. A request names the lake (as
LakeResource does), the hours, the run id and processed_at; the worker answers with log records
then the hours' figures (HourStats as dicts) or an error.

- Start: the socket first, then the Spark session (a run sent meanwhile waits; a session not up
  within SESSION_START_LIMIT_S ends the worker). Then, while it serves, the warm-up
  (WL_SPARK_WORKER_WARMUP_EVENTS generated events curated in a throwaway lake) in a thread of
  its own; a curation request stops it (WarmUp), and it resumes for what the runs have not
  curated once the worker has been idle WL_SPARK_WORKER_WARMUP_RESUME_S (Warming); a failed
  warm-up ends the worker.
- A run is the worker's once it sends {"accepted": true}: its failure from then on is the
  caller's error (WorkerFailed); before that, the caller may curate it elsewhere (WorkerUnavailable).
- One curation at a time: requests wait their turn, so two runs of one hour never curate at once,
  not even when a killed run's request is still finishing.
- The caller gone (its run killed): the worker cancels its Spark jobs; write-audit-publish keeps
  each hour's published state whole either way. A request whose caller left while it queued is
  dropped unread.
- The worker gone during a run it took: the caller sees a clear error (WorkerFailed); no worker
  took it (not started, stopped, gone before it began the run): WorkerUnavailable, and the
  launcher curates in its own process instead."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Callable, Sequence

LEVELS = ("debug", "info", "warning", "error")
# The generated hour the worker curates at its start (Worker.warm_up), in a throwaway lake: in
# objects of at most WARMUP_EVENTS_PER_OBJECT, so that a run stops the warm-up within one
# object's generation (~0.4 s here), not the whole warm-up's (~3.6 s for 100,000 events). One
# hour, the shape the trials measured (docs/benchmarks.md); ten hours of 10,000 were tried too.
WARMUP_HOUR = datetime(2020, 1, 1, tzinfo=timezone.utc)
WARMUP_SEED = 1
WARMUP_EVENTS_PER_OBJECT = 10_000
# A worker whose JVM and Spark session have not started by then exits, so that the runs waiting
# at its socket (it listens first) curate elsewhere instead of waiting on it forever; and one
# whose warm-up will not stop for a run.
SESSION_START_LIMIT_S = 180.0
WARMUP_STOP_LIMIT_S = 60.0


class WorkerUnavailable(RuntimeError):
    """No worker took the run: nothing at the socket (not started, stopped), or the worker went
    away before it began the run (while starting, or with the run still waiting its turn), or a
    ping's timeout passed. The run may curate elsewhere."""


class WorkerFailed(RuntimeError):
    """The worker took the request and then failed or died."""


# ---------------------------------------------------------------- client (the launcher's side)

def _connect(address: str) -> Connection:
    try:
        return Client(address, family="AF_UNIX")
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise WorkerUnavailable(f"no curation worker at {address} ({e.__class__.__name__})") from e


def ping(address: str, timeout: float | None = None) -> dict:
    """The worker's pong. A ping waits its turn like a run (one connection at a time) and while
    the worker's Spark session starts (bounded: SESSION_START_LIMIT_S); `timeout` gives up
    sooner (WorkerUnavailable)."""
    with _connect(address) as conn:
        conn.send_bytes(json.dumps({"ping": True}).encode())
        if timeout is not None and not conn.poll(timeout):
            raise WorkerUnavailable(f"the curation worker at {address} did not answer within {timeout:g} s (starting, or curating)")
        return json.loads(conn.recv_bytes())


def curate_on_worker(address: str, *, lake: dict, hours: Sequence[datetime], processed_at: datetime, run_id: str,
                     log=None) -> list[dict]:
    """Curate `hours` on the worker at `address`; the hours' figures (HourStats as dicts). The
    worker's log records are replayed to `log` as they come."""
    request = {
        "lake": lake,
        "hours": [h.astimezone(timezone.utc).isoformat() for h in hours],
        "processed_at": processed_at.astimezone(timezone.utc).isoformat(),
        "run_id": run_id,
    }
    accepted = False
    with _connect(address) as conn:
        try:
            conn.send_bytes(json.dumps(request).encode())
        except (BrokenPipeError, ConnectionResetError) as e:
            raise WorkerUnavailable(f"the curation worker at {address} closed before taking run {run_id}") from e
        while True:
            try:
                msg = json.loads(conn.recv_bytes())
            except (EOFError, ConnectionResetError) as e:
                if not accepted:  # it never began this run (it died starting, or with the run still queued): curate elsewhere
                    raise WorkerUnavailable(f"the curation worker at {address} went away before taking run {run_id}") from e
                raise WorkerFailed(f"the curation worker at {address} went away during run {run_id}") from e
            accepted = True  # any message: {"accepted"} first; a worker older than it sends logs first
            if "log" in msg:
                if log is not None:
                    getattr(log, msg.get("level", "info") if msg.get("level") in LEVELS else "info")(msg["log"])
            elif "error" in msg:
                raise WorkerFailed(f"the curation worker failed run {run_id}: {msg['error']}")
            elif "hours" in msg:
                return msg["hours"]


# ---------------------------------------------------------------- server

class _ReplyLog:
    """A logger for curate_landing_hours that sends each record to the caller (and to stderr)."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.gone = conn, False
        self._lock = threading.Lock()

    def _send(self, level: str, msg: object) -> None:
        print(f"[curation-worker] {level}: {msg}", file=sys.stderr, flush=True)
        with self._lock:
            if self.gone:
                return
            try:
                self.conn.send_bytes(json.dumps({"log": str(msg), "level": level}).encode())
            except OSError:
                self.gone = True

    def __getattr__(self, level: str) -> Callable[[object], None]:
        if level not in LEVELS:
            raise AttributeError(level)
        return lambda msg, *a, **k: self._send(level, msg)


def _caller_left(conn: Connection) -> bool:
    """True once the caller closed its end (it sends nothing after its request)."""
    try:
        if conn.poll(0):
            conn.recv_bytes()
        return False
    except (EOFError, OSError):
        return True


class Worker:
    def __init__(self, spark) -> None:
        self.spark = spark

    def curate(self, request: dict, log) -> list[dict]:
        from wallet_lake.lake.curation_run import curate_landing_hours
        from wallet_lake.lake.store import open_lake

        lake = request["lake"]
        store = open_lake(lake.get("lake_uri") or f"s3://{lake['bucket']}", kms_key_id=lake.get("kms_key_id") or None,
                          s3_endpoint_url=lake.get("s3_endpoint_url") or None, region=lake.get("region") or None)
        hours = [datetime.fromisoformat(h) for h in request["hours"]]
        stats = curate_landing_hours(self.spark, store, hours, datetime.fromisoformat(request["processed_at"]),
                                     run_id=request["run_id"], log=log)
        return [asdict(s) for s in stats]

    def handle(self, conn: Connection, before_run: Callable[[str], None] | None = None) -> int | None:
        """Serve one connection: a ping, or a run (`before_run` called first). The raw lines the
        run curated (0 when it failed or was not taken); None when there was no run (a ping, or
        a request whose caller left while it waited)."""
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            return None
        if request.get("ping"):
            try:
                conn.send_bytes(json.dumps({"pong": True, "spark": self.spark.version, "pid": os.getpid()}).encode())
            except OSError:  # the pinger gave up waiting (ping's timeout): nothing to tell it
                pass
            return None
        if _caller_left(conn):
            print(f"[curation-worker] dropped run {request.get('run_id')}: its caller left while it waited", file=sys.stderr, flush=True)
            return None
        if before_run is not None:
            before_run(f"run {request.get('run_id')} came")
        print(f"[curation-worker] run {request.get('run_id')}: curating {', '.join(request.get('hours', []))}", file=sys.stderr, flush=True)
        try:  # from here on the run is the worker's: its failure is the caller's error, not a reason to curate elsewhere
            conn.send_bytes(json.dumps({"accepted": True}).encode())
        except OSError:
            return 0
        log = _ReplyLog(conn)
        done = threading.Event()

        def watch() -> None:  # the caller gone mid-run: stop the Spark jobs, not the worker
            while not done.wait(1.0):
                if _caller_left(conn):
                    log.gone = True
                    print(f"[curation-worker] caller of run {request.get('run_id')} left: cancelling its Spark jobs", file=sys.stderr, flush=True)
                    self.spark.sparkContext.cancelAllJobs()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            t = time.perf_counter()
            reply = {"hours": self.curate(request, log)}
            seconds = (reply["hours"][0].get("seconds") if reply["hours"] else None) or {}
            print(f"[curation-worker] run {request.get('run_id')}: done in {time.perf_counter() - t:.2f} s {seconds}", file=sys.stderr, flush=True)
        except Exception as e:  # the caller gets the reason; the worker serves the next request
            reply = {"error": f"{type(e).__name__}: {e}"}
        finally:
            done.set()
            watcher.join()
        if not log.gone:
            try:
                conn.send_bytes(json.dumps(reply).encode())
            except OSError:
                pass
        return sum(h.get("raw_lines", 0) for h in reply.get("hours", []))

    def warm_up(self, events: int, cut: threading.Event | None = None) -> str:
        """One curation of `events` generated events in a throwaway folder lake, so that the first
        real hour runs on JIT-compiled code; what it did, as one line. Why the size matters: the
        JIT compiles a method once it has run some thousands of times, so 2,000 events leave the
        per-row code of the parse, the dedupe and the write mostly interpreted, and the first busy
        hour pays for it (docs/benchmarks.md, freshness, session 34). The events come as objects of
        WARMUP_EVENTS_PER_OBJECT in one landing hour; `cut` set stops it between two objects'
        generation (WarmUpCut; WarmUp cancels its Spark jobs)."""
        from wallet_lake.lake import scratch
        from wallet_lake.lake.curation_run import curate_landing_hours
        from wallet_lake.lake.store import LocalLakeStore

        t = time.perf_counter()
        d = scratch.make(scratch.WARMUP_PREFIX)  # a SIGKILLed worker's is swept by the next curation
        try:
            store = LocalLakeStore(d)
            objects = len(list(warmup_parts(events, store, cut)))
            print(f"[curation-worker] warm-up: {events:,} events generated in {objects} objects, curating them", file=sys.stderr, flush=True)
            [stats] = curate_landing_hours(self.spark, store, [WARMUP_HOUR], datetime.now(timezone.utc), run_id="warmup")
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return (f"{stats.raw_lines:,} lines = curated {stats.curated_rows:,} + quarantined {stats.quarantined_rows:,} "
                f"+ duplicates {stats.duplicates_removed:,} in {time.perf_counter() - t:.1f} s")


def warmup_parts(events: int, store=None, cut: threading.Event | None = None):
    """The warm-up's objects, all in WARMUP_HOUR (one landing hour, as a processor's several
    objects): the generator's figures of each (HourStats), each of at most
    WARMUP_EVENTS_PER_OBJECT events and its own seed, written to `store` when given; WarmUpCut
    when `cut` is set between two."""
    from wallet_lake.generator.events import generate_with_stats
    from wallet_lake.generator.writer import write_generated

    per = WARMUP_EVENTS_PER_OBJECT
    hour = WARMUP_HOUR
    for i, size in enumerate([per] * (events // per) + ([events % per] if events % per else [])):
        if cut is not None and cut.is_set():
            raise WarmUpCut("while generating its events")
        generated = generate_with_stats(hour, hour + timedelta(hours=1), seed=WARMUP_SEED + i, events_per_hour=size)
        if store is not None:
            write_generated(store, generated, seed=WARMUP_SEED + i)
        yield generated.stats.hours[hour]
    if cut is not None and cut.is_set():
        raise WarmUpCut("before its Spark jobs")


class WarmUpCut(RuntimeError):
    """The warm-up stopped for a run."""


class WarmUp:
    """The warm-up curation in a thread of its own, started once the worker serves, so that a run
    arriving meanwhile neither waits for all of it nor curates in a cold JVM of its own beside it
    (a 1M-event hour landing as the worker restarted: 84 s curating in the run's own process
    while the worker's warm-up took 66 s, both on the same 2 cores; docs/benchmarks.md). The
    first curation request stops it (its Spark jobs cancelled, or its generation stopped between
    two objects) and then curates, on a JVM as warm as the warm-up got it."""

    GROUP = "wl-curation-worker-warm-up"

    def __init__(self, worker: Worker, events: int, on_failure: Callable[[], None],
                 on_done: Callable[[], None] | None = None, resumed: bool = False) -> None:
        self.worker, self.events, self.on_failure, self.on_done = worker, events, on_failure, on_done
        self.resumed = resumed  # not the worker's first warm-up: one that a run had stopped
        self.cut = threading.Event()
        self.thread = threading.Thread(target=self._run, name="curation-worker-warm-up", daemon=True)
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.thread.start()

    def _run(self) -> None:
        # A job group is the thread's (PySpark pins a JVM thread to each Python thread), so it
        # names the warm-up's jobs and no run's.
        self.worker.spark.sparkContext.setJobGroup(self.GROUP, "curation worker warm-up", interruptOnCancel=True)
        try:
            done = self.worker.warm_up(self.events, self.cut)
            print(f"[curation-worker] warmed up on {self.events:,} generated events: {done}", file=sys.stderr, flush=True)
            if self.on_done is not None:
                self.on_done()
        except Exception as e:
            if self.cut.is_set():
                print(f"[curation-worker] warm-up stopped after {time.perf_counter() - self.started:.1f} s ({type(e).__name__}: {e})",
                      file=sys.stderr, flush=True)
            else:  # a worker that cannot curate generated events should take no run: stop it
                print(f"[curation-worker] error: warm-up failed, stopping the worker: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                self.on_failure()

    def stop(self, reason: str) -> None:
        """Stop it if it runs, and wait until it has: its Spark jobs cancelled until none is left
        (a job may start between two cancels). A warm-up still running after WARMUP_STOP_LIMIT_S
        ends the worker (the run waiting has not been taken: its caller curates elsewhere)."""
        if not self.thread.is_alive():
            return
        self.cut.set()
        print(f"[curation-worker] stopping the warm-up: {reason}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + WARMUP_STOP_LIMIT_S
        while self.thread.is_alive():
            if time.monotonic() > deadline:
                print(f"[curation-worker] error: the warm-up did not stop within {WARMUP_STOP_LIMIT_S:g} s: exiting", file=sys.stderr, flush=True)
                os._exit(1)
            self.worker.spark.sparkContext.cancelJobGroup(self.GROUP)
            self.thread.join(0.2)


class Warming:
    """The worker's warm-up over its life: one WarmUp once it serves; each run stops the one
    running; after `resume_after_s` without a run, another resumes for the events still owed:
    the warm-up's size less the raw lines the runs curated since it started (a run as busy as the
    warm-up warms the JIT itself). Why: a run that stops the warm-up curates on a cold JIT, and
    a small one leaves the JIT cold for the next busy hour. Not sooner than that idle time, so
    that it takes no CPU from the steps that follow a run in the pipeline (publish, sink). What a
    stopped warm-up did is not counted (a cut Spark job's share is not known); instead each
    resumed warm-up a run stops doubles the idle time before the next (up to
    RESUME_BACKOFF_LIMIT times it), so that small runs coming just over that idle time apart
    start and stop it a few times, not once per run (a few seconds of CPU each)."""

    # 60 s doubled up to 64 min: past that, runs an hour apart never resume it; their lines pay what is owed.
    RESUME_BACKOFF_LIMIT = 64

    def __init__(self, worker: Worker, events: int, resume_after_s: float, on_failure: Callable[[], None]) -> None:
        self.worker, self.resume_after_s, self.on_failure = worker, resume_after_s, on_failure
        self.owed = events  # events still to curate before the JIT counts as warm
        self.current: WarmUp | None = None
        self.timer: threading.Timer | None = None
        self.busy = False  # a run curates, or the worker stops: no warm-up starts
        self.resumes_stopped = 0  # resumed warm-ups that a run stopped (the backoff's exponent)
        # Re-entrant: the SIGTERM handler (shutdown) runs on the main thread, which may hold it.
        self._lock = threading.RLock()

    def start(self) -> None:
        with self._lock:
            self._start(resumed=False)

    def _start(self, resumed: bool) -> None:  # under the lock
        if self.busy or self.owed <= 0 or (self.current is not None and self.current.thread.is_alive()):
            return
        self.current = WarmUp(self.worker, self.owed, self.on_failure, on_done=self._done, resumed=resumed)
        self.current.start()

    def _done(self) -> None:
        with self._lock:
            self.owed = 0

    def before_run(self, reason: str) -> None:
        """A run came: no warm-up beside it."""
        with self._lock:
            self.busy = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            current = self.current
            if current is not None and current.resumed and current.thread.is_alive():
                self.resumes_stopped += 1
        if current is not None:
            current.stop(reason)

    def after_run(self, lines: int) -> None:
        """The run ended, having curated `lines` raw lines: the warm-up resumes after the idle
        time if events are still owed."""
        with self._lock:
            self.busy = False
            self.owed -= lines
            if self.owed <= 0:
                return
            timer = threading.Timer(self.resume_delay_s(), self._resume)  # its interval is what _resume says it waited
            timer.daemon = True
            self.timer = timer
            timer.start()

    def _resume(self) -> None:
        with self._lock:
            if threading.current_thread() is not self.timer or self.busy:  # a run came meanwhile and cancelled it
                return
            waited = self.timer.interval
            self.timer = None
            if self.owed > 0:
                print(f"[curation-worker] resuming the warm-up after {waited:g} s without a run: "
                      f"{self.owed:,} events", file=sys.stderr, flush=True)
            self._start(resumed=True)

    def resume_delay_s(self) -> float:
        """The idle time before the next resume: the setting, doubled for each resumed warm-up a
        run stopped, at most RESUME_BACKOFF_LIMIT times it (0 stays 0: no wait, no backoff)."""
        return self.resume_after_s * min(2 ** self.resumes_stopped, self.RESUME_BACKOFF_LIMIT)

    def shutdown(self) -> threading.Thread | None:
        """The worker stops: no warm-up starts, and the one running stops between two objects
        (its Spark jobs end as Spark stops); its thread, to join once Spark has stopped (the
        throwaway lake is removed as it unwinds)."""
        with self._lock:
            self.busy = True
            if self.timer is not None:
                self.timer.cancel()
            current = self.current
        if current is None:
            return None
        current.cut.set()
        return current.thread


def serve(address: str, *, warmup_events: int, warmup_resume_s: float = 60.0) -> None:
    from pyspark.sql import SparkSession

    from wallet_lake.lake import scratch
    from wallet_lake.spark import spark_config

    for gone in scratch.sweep():  # a killed worker's warm-up lake and Spark folder
        print(f"[curation-worker] removed {gone.name}, left by a process that was killed", file=sys.stderr, flush=True)
    # The socket first: a run that comes while the JVM and the session start (seconds, more on a
    # busy machine) waits for them here instead of starting a cold JVM of its own beside them.
    path = Path(address)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # left by a killed worker
        path.unlink()
    old = os.umask(0o077)  # the socket file: this user only
    try:
        listener = Listener(address, family="AF_UNIX", backlog=16)
    finally:
        os.umask(old)

    def give_up_starting() -> None:
        print(f"[curation-worker] error: no Spark session after {SESSION_START_LIMIT_S:g} s: exiting", file=sys.stderr, flush=True)
        os._exit(1)  # the runs waiting at the socket see it closed before it took them: they curate elsewhere

    watchdog = threading.Timer(SESSION_START_LIMIT_S, give_up_starting)
    watchdog.daemon = True
    watchdog.start()
    spark = SparkSession.builder.config(map=spark_config()).getOrCreate()
    watchdog.cancel()
    worker = Worker(spark)
    status = {"exit": 0}

    def fail() -> None:  # from the warm-up's thread: the main thread stops the worker
        status["exit"] = 1
        os.kill(os.getpid(), signal.SIGTERM)

    warming = Warming(worker, warmup_events, warmup_resume_s, on_failure=fail) if warmup_events else None

    def stop(*_):
        # The listener stays open until this unwinds (the finally below): a run waiting its turn
        # sees the socket close only once the run in hand has stopped.
        warm_up = warming.shutdown() if warming is not None else None
        try:
            spark.stop()
        except Exception as e:  # the JVM stopped first (the stack signals the worker's whole process group)
            print(f"[curation-worker] Spark stopped already: {type(e).__name__}", file=sys.stderr, flush=True)
        if warm_up is not None:
            warm_up.join(10)  # its throwaway lake removed as it unwinds
        sys.exit(status["exit"])

    signal.signal(signal.SIGTERM, stop)
    print(f"[curation-worker] serving on {address} (pid {os.getpid()}, Spark {spark.version})", file=sys.stderr, flush=True)
    if warming is not None:
        warming.start()
    try:
        while True:
            with listener.accept() as conn:
                lines = worker.handle(conn, before_run=warming.before_run if warming is not None else None)
            if lines is not None and warming is not None:
                warming.after_run(lines)
    finally:
        listener.close()


def main(argv: Sequence[str] | None = None) -> int:
    from wallet_lake.settings import SparkSettings, load

    p = argparse.ArgumentParser(prog="python -m wallet_lake.lake.curation_worker", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("serve", "ping"))
    p.add_argument("--socket", help="Unix socket (default: WL_SPARK_WORKER_SOCKET)")
    p.add_argument("--no-warm-up", action="store_true", help="serve without the warm-up curation")
    args = p.parse_args(argv)
    settings = load(SparkSettings)
    address = args.socket or settings.spark_worker_socket
    if not address:
        p.error("no socket: set WL_SPARK_WORKER_SOCKET or pass --socket")
    if args.command == "ping":
        try:
            print(json.dumps(ping(address)))
            return 0
        except (WorkerUnavailable, EOFError, OSError) as e:
            print(f"curation worker: {e}", file=sys.stderr)
            return 1
    serve(address, warmup_events=0 if args.no_warm_up else settings.spark_worker_warmup_events,
          warmup_resume_s=settings.spark_worker_warmup_resume_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
