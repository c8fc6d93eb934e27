"""The soak-and-chaos run (bench/soak.py is its command line; the short variant is a test).

Phases, on the local stack as `scripts/run` leaves it (services up; Dagster webserver + daemon and
the reports API serving, started here with `stack/wallet-stack apps` when they are not):

1. The writer (a thread) lands the plan (wallet_lake_tests/soak/plan.py) in rounds: the closed
   hours' backlog, late files, out-of-order approvals, replays, and the open hour's parts as they
   fall due. The landing sensor and the daemon do the rest; nothing here materializes anything.
2. A UI-style backfill (launchPartitionBackfill through the webserver's GraphQL API) of the oldest
   closed hours, while the sensor asks for the same hours.
3. Kills, each followed by the operator's recovery (the README's command for the target), the
   operator's rerun of runs the fault failed (re-execute, as from the UI) and of runs left
   STARTED without a process (terminate, then re-execute), and the time until the reports agree
   with the table again.
4. Drain: the writer stops, every landed hour is processed (open hours too with wait_open_hour).
5. The independent check (wallet_lake_tests/soak/check.py), the sensors' failed ticks, the API's
   5xx answers; the results as JSON. Finally every service is made healthy again.

Honesty rules: counts come from the stores and the instance, never from the harness's own
bookkeeping; a recovery or a convergence that did not happen within its deadline is reported as
such (the deadline, `timed_out`), never left out."""

from __future__ import annotations

import json
import os
import platform
import random
import threading
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS

from wallet_lake_tests.soak import check as checker
from wallet_lake_tests.soak import plan as planning
from wallet_lake_tests.soak import stack

UTC = timezone.utc
HOUR = timedelta(hours=1)
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")
FAILED = ("FAILURE", "CANCELED")
APPS = ("dagster-code-server", "dagster-webserver", "dagster-daemon", "api")

# How the operator recovers each target (README, Operations: faults and recovery).
RECOVERY: dict[str, tuple[str, ...]] = {
    "broker": ("up",),
    "connect": ("up",),
    "postgres": ("up",),
    "daemon": ("apps",),
    "run_worker": (),  # the code server marks the run failed; the operator re-executes it
    "api": ("apps",),
    "curation_worker": ("up",),  # the run it served fails clearly; the operator re-executes it
}
# The services `up` brings back (named as stack.health names them): what else is found down
# after a recovery is brought back the same way.
UP_SERVICES = frozenset(t for t, commands in RECOVERY.items() if "up" in commands)


@dataclass
class Options:
    hours: int = 12
    kills: int = 24
    seed: int = 11
    short: bool = False
    events_per_hour: int = 500
    round_s: float = 45
    open_part_s: int = 300
    staleness_deadline_s: float = 300
    drain_timeout_s: float = 5400
    wait_open_hour: bool = True
    backfill_hours: int = 4
    restore_apps: bool = True  # stop the apps at the end when they were not running at the start
    operator_reruns: bool = True  # re-execute runs a fault failed (off: measure what heals by itself)
    out: Path | None = None
    command: str = ""

    @classmethod
    def short_variant(cls, **overrides) -> "Options":
        base = dict(hours=2, kills=3, events_per_hour=150, round_s=15, open_part_s=45, staleness_deadline_s=150,
                    drain_timeout_s=600, wait_open_hour=False, backfill_hours=1, short=True)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


class Log:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = path.open("a")
        self.started = time.monotonic()

    def __call__(self, msg: str) -> None:
        line = f"[soak {time.monotonic() - self.started:7.1f}s {datetime.now(UTC):%H:%M:%S}] {msg}"
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


# --------------------------------------------------------------------------------- the writer

class Writer(threading.Thread):
    """Lands the plan round by round (the payment processor's stand-in)."""

    def __init__(self, plan: planning.LandingPlan, round_s: float, log: Log) -> None:
        super().__init__(name="soak-writer", daemon=True)
        from wallet_lake.lake.store import open_lake_from_env

        self.plan, self.round_s, self.log = plan, round_s, log
        self.store = open_lake_from_env()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.round = 0
        self.done: set[int] = set()
        self.open_written: set[tuple[datetime, int]] = set()
        self.replayed = False
        self.files: Counter = Counter()
        self.lines: Counter = Counter()
        self.hours: dict[datetime, float] = {}  # landing hour -> last write (epoch s)
        self.errors: list[str] = []

    def _put(self, hour: datetime, name: str, lines: tuple[str, ...], kind: str) -> None:
        from wallet_lake.contracts.landing import landing_prefix
        from wallet_lake.generator.events import to_ndjson

        if not lines:
            return
        self.store.put_bytes(landing_prefix(hour) + name, to_ndjson(list(lines)))
        self.files[kind] += 1
        self.lines[kind] += len(lines)
        self.hours[hour] = time.time()

    def do_round(self, final: bool = False) -> None:
        with self.lock:
            r = self.round
            now = datetime.now(UTC)
            try:
                for i, p in enumerate(self.plan.puts):
                    if i not in self.done and (final or p.round <= r):
                        self._put(p.hour, p.name, p.lines, p.kind)
                        self.done.add(i)
                # The parts of an hour that fell due since the last round: one file (the
                # processor flushes what it has).
                due: dict[datetime, list[int]] = {}
                for hour, part in planning.due_open_parts(self.plan, now, self.open_written):
                    due.setdefault(hour, []).append(part)
                for hour, parts in due.items():
                    name, kind = planning.open_part_name(self.plan, hour, parts[0], now)
                    self._put(hour, name, tuple(x for part in parts for x in planning.open_part(self.plan, hour, part)), kind)
                    self.open_written.update((hour, part) for part in parts)
                if not self.replayed and (final or r >= self.plan.replay_round):
                    from wallet_lake.contracts.landing import hour_token

                    open_hour = now.replace(minute=0, second=0, microsecond=0)
                    src = self.plan.replay_source
                    self._put(open_hour, f"replay-of-{hour_token(src)}-{self.plan.seed}.ndjson", self.plan.replay_into_open, "replay_into_open")
                    self.replayed = True
            except Exception as exc:  # noqa: BLE001 - recorded and reported; the next round retries
                self.errors.append(f"round {r}: {type(exc).__name__}: {exc}")
                self.log(f"writer: round {r} failed: {exc}")
            self.round += 1

    def run(self) -> None:
        while not self.stop_event.wait(self.round_s):
            self.do_round()

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=120)
        self.do_round(final=True)
        self.log(f"writer: stopped after {self.round} rounds; files {dict(self.files)}")


# ------------------------------------------------------------------------------- the operator

class Operator:
    """What the README tells an operator to do after a fault, done through the same interfaces:
    the stack script, and the webserver's GraphQL API (the UI's buttons)."""

    def __init__(self, gql: stack.Dagster, since: float, log: Log, reruns: bool = True) -> None:
        self.gql, self.since, self.log, self.reruns = gql, since, log, reruns
        self.handled: set[str] = set()
        self.actions: list[dict] = []
        self.no_worker_since: float | None = None
        self.sink_failed_since: float | None = None

    def _record(self, action: str, **details) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": action, **details}
        self.actions.append(entry)
        self.log(f"operator: {action} {details}")

    def tend(self) -> None:
        """One look: cancel runs whose process is gone, re-execute failed runs of the pipeline
        whose hours no later run covers, restart a sink task left FAILED."""
        try:
            self._tend()
        except (httpx.HTTPError, RuntimeError) as exc:  # the webserver or its database coming back
            self.log(f"operator: {type(exc).__name__}: {str(exc)[:300]}; will look again")

    def _tend(self) -> None:
        runs = self.gql.runs(created_after=self.since)
        now = time.time()
        in_progress = [r for r in runs if r["status"] in IN_PROGRESS]
        if in_progress and not stack.run_workers():
            self.no_worker_since = self.no_worker_since or now
            if now - self.no_worker_since > 60:
                for r in in_progress:
                    result = self.gql.terminate(r["runId"])
                    self._record("terminate run without a process (UI: Terminate, mark as canceled)",
                                 run=r["runId"], status=r["status"], partitions=stack.run_partitions(r), result=result)
                self.no_worker_since = None
                runs = self.gql.runs(created_after=self.since)
        else:
            self.no_worker_since = None
        for r in sorted(runs, key=lambda r: r["creationTime"]):
            if r["status"] not in FAILED or r["runId"] in self.handled or not stack.pipeline_run(r):
                continue
            self.handled.add(r["runId"])
            parts = set(stack.run_partitions(r))
            later = [s for s in runs if s["creationTime"] > r["creationTime"] and s["status"] in ("SUCCESS", *ACTIVE)]
            covered = set().union(*(stack.run_partitions(s) for s in later)) if later else set()
            if parts <= covered:
                self._record("no rerun needed: later runs cover the hours", run=r["runId"], partitions=sorted(parts),
                             why=self.gql.run_failure(r["runId"]) if r["status"] == "FAILURE" else "canceled")
                continue
            why = self.gql.run_failure(r["runId"]) if r["status"] == "FAILURE" else "canceled"
            if not self.reruns:
                self._record("failed run NOT re-executed (--no-operator-reruns)", run=r["runId"], status=r["status"],
                             partitions=sorted(parts), why=why)
                continue
            new = self.gql.reexecute(r["runId"])
            self._record("re-execute failed run (UI: Re-execute all steps)", run=r["runId"], status=r["status"],
                         partitions=sorted(parts), new_run=new, why=why)
        failed_tasks = stack.connect_failed_tasks()
        if failed_tasks:
            self.sink_failed_since = self.sink_failed_since or now
            if now - self.sink_failed_since > 180:  # connect_sink_monitor did not bring it back
                url = f"{stack.env('WL_CONNECT_URL')}/connectors/{stack.env('WL_CONNECTOR_NAME')}/restart?includeTasks=true&onlyFailed=true"
                httpx.post(url, auth=stack.connect_auth(), timeout=10)
                self._record("restart failed sink tasks (README: When the sink fails)", tasks=failed_tasks)
                self.sink_failed_since = None
        else:
            self.sink_failed_since = None


# ---------------------------------------------------------------------------------- the soak

class Soak:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        stack.load_stack_env()
        self.log = Log(stack.stack_dir() / "logs" / "soak.log")
        self.gql = stack.Dagster()
        self.kills: list[dict] = []
        self.staleness: list[dict] = []
        self.backfills: list[dict] = []
        self.api_metrics_5xx = Counter()
        self.notes: list[str] = []
        self.quiescent = False

    # ---- helpers
    def wait(self, what: str, probe, timeout: float, poll: float = 2.0) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if probe():
                    return time.monotonic() - start
            except Exception:  # noqa: BLE001 - a probe against a recovering service may raise
                pass
            time.sleep(poll)
        self.log(f"{what}: not within {timeout:.0f}s")
        return None

    def healthy(self) -> dict[str, bool]:
        return stack.health(self.gql)

    def report_window(self) -> tuple[date, date]:
        first = self.plan.closed[0] - 3 * HOUR  # late events reach 3 hours back
        last = max(self.plan.open_lines) + HOUR
        return first.date(), last.date()

    def scrape_api_metrics(self) -> None:
        """5xx counters of the running API process (they reset when it restarts: scraped before
        every API kill and at the end, and summed)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{stack.env('WL_API_PORT')}/metrics", timeout=5).text
        except httpx.HTTPError:
            return
        for line in text.splitlines():
            if line.startswith("wallet_lake_api_requests_total{") and 'status="5' in line:
                labels, value = line.rsplit(" ", 1)
                route = labels.split('route="', 1)[1].split('"', 1)[0]
                status = labels.split('status="', 1)[1].split('"', 1)[0]
                self.api_metrics_5xx[f"{route} {status}"] += int(float(value))

    # ---- phases
    def preflight(self) -> None:
        o = self.opts
        self.t0 = time.time()
        self.log(f"soak: hours={o.hours} kills={o.kills} seed={o.seed} short={o.short} root={stack.ROOT}")
        self.apps_were_running = all(stack.pid_of(a) is not None for a in APPS)
        for cmd in (("up",), ("apps",)):
            res = stack.operator_command(*cmd)
            if res.returncode != 0:
                raise RuntimeError(f"{res.command} failed:\n{res.tail}")
        if self.wait("stack healthy", lambda: all(self.healthy().values()), 300) is None:
            raise RuntimeError(f"the stack is not healthy before the soak: {self.healthy()}")
        self.key_id, key = stack.create_api_key("soak harness (bench/soak.py)")
        self.api = stack.Api(key)
        api_log = stack.stack_dir() / "logs" / "api.log"
        self.api_log_offset = api_log.stat().st_size if api_log.exists() else 0
        self.operator = Operator(self.gql, self.t0 - 5, self.log, reruns=self.opts.operator_reruns)

    def plan_landing(self) -> None:
        from wallet_lake.generator.events import generate_with_stats

        o = self.opts
        now = datetime.now(UTC)
        self.h0 = now.replace(minute=0, second=0, microsecond=0)
        last = self.h0 - HOUR
        if o.short:
            # The short variant drains within minutes: its closed hours must have settled by then
            # (closed + WL_LANDING_SETTLE_SECONDS), or the sensor leaves them for later and the
            # check sees fewer hours than planned, depending on the minute CI starts.
            settle = int(os.environ.get("WL_LANDING_SETTLE_SECONDS", "300"))
            last = (now - timedelta(seconds=settle)).replace(minute=0, second=0, microsecond=0) - HOUR
        closed = [last - (o.hours - 1 - i) * HOUR for i in range(o.hours)]
        # The short variant lands everything within its first three rounds (fewer reruns of the
        # same hours: it has to finish in minutes); the full one spreads it over the chaos.
        rounds = 3 if o.short else max(4, int(o.kills * 120 / o.round_s))
        generated = generate_with_stats(closed[0], self.h0 + 4 * HOUR, o.seed, events_per_hour=o.events_per_hour)
        self.plan = planning.build_plan(generated.lines, closed, o.seed, rounds=rounds, open_part_seconds=o.open_part_s)
        lookback = int(os.environ.get("WL_LANDING_LOOKBACK_DAYS", "2"))
        oldest_watched = (now.date() - timedelta(days=lookback - 1))
        unwatched = [h for h in closed if h.date() < oldest_watched]
        if unwatched:
            self.notes.append(f"{len(unwatched)} closed hour(s) are older than the sensor's lookback "
                              f"(WL_LANDING_LOOKBACK_DAYS={lookback}): only the backfill processes them")
        self.log(f"plan: closed hours {closed[0]:%Y-%m-%dT%H}..{closed[-1]:%Y-%m-%dT%H}, open from {self.h0:%H}:00, "
                 f"{len(self.plan.puts)} planned files over {rounds} rounds, {len(self.plan.held_payments)} out-of-order approvals")

    def start_writer(self) -> None:
        self.writer = Writer(self.plan, self.opts.round_s, self.log)
        self.writer.do_round()  # round 0: the backlog, at once
        self.writer.start()
        self.log(f"writer: round 0 landed {dict(self.writer.files)}")

    def launch_backfill(self, hours: list[datetime], why: str) -> None:
        keys = [h.strftime(stack.PARTITION_FORMAT) for h in hours]
        backfill_id = self.gql.launch_backfill(keys, f"soak: {why}")
        self.backfills.append({"id": backfill_id, "partitions": keys, "why": why, "at": datetime.now(UTC).isoformat(timespec="seconds")})
        self.log(f"backfill {backfill_id} launched through GraphQL (launchPartitionBackfill) for {keys}: {why}")

    def pipeline_run_in_progress(self) -> dict | None:
        runs = [r for r in self.gql.runs(created_after=self.t0 - 5, statuses=["STARTED"]) if stack.pipeline_run(r)]
        return runs[0] if runs else None

    def wait_for_run(self, timeout: float) -> dict | None:
        start = time.monotonic()
        backfilled = False
        while time.monotonic() - start < timeout:
            self.operator.tend()
            try:
                run = self.pipeline_run_in_progress()
            except (httpx.HTTPError, RuntimeError):
                run = None
            if run is not None:
                return run
            if not backfilled and time.monotonic() - start > timeout / 2:
                # Nothing landing needs a run right now: give the operator's kill a run to hit, as
                # someone re-materializing an hour from the UI would.
                self.launch_backfill([random.Random(time.time_ns()).choice(self.plan.closed)], "a run to kill")
                backfilled = True
            time.sleep(2)
        return None

    def recent_run_seconds(self, last: int = 10) -> list[float]:
        """How long the pipeline's last finished runs since the start took (their own records)."""
        try:
            runs = self.gql.runs(created_after=self.t0 - 5, statuses=["SUCCESS"])
        except (httpx.HTTPError, RuntimeError):
            return []
        done = sorted((r for r in runs if stack.pipeline_run(r) and r.get("startTime") and r.get("endTime")),
                      key=lambda r: r["endTime"])
        return [r["endTime"] - r["startTime"] for r in done[-last:]]

    def kill(self, spec: planning.KillSpec) -> dict | None:
        """Kill the target; returns the event, or None when there was nothing to kill."""
        run = None
        after_start = None
        if spec.during_run:
            run = self.wait_for_run(150 if self.opts.short else 420)
            if run is None and spec.target == "run_worker":
                return None
            if run is not None:
                after_start = planning.kill_delay_s(spec, self.recent_run_seconds())
                started = run.get("startTime") or time.time()
                time.sleep(max(0.0, started + after_start - time.time()))
        t = spec.target
        event = {"target": t, "at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "during_run": run["runId"] if run else None, "partitions": stack.run_partitions(run) if run else [],
                 "planned_after_run_start_s": after_start}
        if t == "broker":
            event["how"] = stack.sigkill_group_or_pid(_need(stack.pid_of("kafka"), "kafka"))
        elif t == "connect":
            event["how"] = stack.sigkill_group_or_pid(_need(stack.pid_of("connect"), "connect"))
        elif t == "postgres":
            event["how"] = stack.postgres_immediate_stop()
        elif t == "daemon":
            pid = _need(stack.pid_of("dagster-daemon"), "dagster-daemon")
            os.kill(pid, 9)
            event["how"] = f"kill -KILL {pid} (the daemon process; its code server and a run in progress outlive it)"
        elif t == "api":
            self.scrape_api_metrics()
            event["how"] = stack.sigkill_group_or_pid(_need(stack.pid_of("api"), "api"))
        elif t == "curation_worker":
            # The warm Spark session every run curates on: its Python process and its JVM.
            event["how"] = stack.sigkill_group_or_pid(_need(stack.pid_of("curation-worker"), "curation-worker"))
        elif t == "run_worker":
            current = self.pipeline_run_in_progress()
            workers = stack.run_workers()
            if current is None or not workers:
                return None
            start = current.get("startTime") or time.time()
            worker = min(workers, key=lambda p: abs(p.started - start))
            event.update(during_run=current["runId"], partitions=stack.run_partitions(current))
            event["how"] = stack.sigkill_tree(worker.pid)
        self.log(f"KILL {t}: {event['how']} (run {event['during_run']}, hours {event['partitions']})")
        return event

    def recover(self, spec: planning.KillSpec, event: dict, killed_at: float) -> None:
        time.sleep(spec.outage_s)
        started = time.monotonic()
        commands = []
        for cmd in RECOVERY[spec.target]:
            res = stack.operator_command(cmd)
            commands.append({"command": res.command, "returncode": res.returncode, "seconds": res.seconds})
            if res.returncode != 0:
                self.log(f"recovery {res.command} failed ({res.returncode}): {res.tail[-500:]}")
        # Anything else down now went down with the target: the operator brings it back too.
        collateral = []
        for attempt in range(3):
            h = self.healthy()
            down = sorted(k for k, ok in h.items() if not ok)
            if not down:
                break
            if self.wait("health after recovery", lambda: all(self.healthy().values()), 90 if attempt == 0 else 120) is not None:
                break
            down = sorted(k for k, ok in self.healthy().items() if not ok)
            collateral.append(down)
            for cmd in (("up",) if set(down) & UP_SERVICES else ()) + ("apps",):
                res = stack.operator_command(cmd)
                commands.append({"command": res.command, "returncode": res.returncode, "seconds": res.seconds, "collateral": down})
        healthy = all(self.healthy().values())
        event.update(
            outage_s=spec.outage_s, recovery_commands=commands, collateral_down=collateral, healthy_after=healthy,
            recovery_s=round(time.monotonic() - started, 1), down_s=round(time.monotonic() - killed_at, 1),
        )
        self.log(f"RECOVERED {spec.target}: {'healthy' if healthy else 'NOT HEALTHY'} {event['recovery_s']}s after the "
                 f"operator acted ({[c['command'] for c in commands] or 'no command'}){' collateral ' + str(collateral) if collateral else ''}")

    def measure_staleness(self, label: str) -> dict:
        """Seconds from now until the reports (through the API) agree with the table again."""
        date_from, date_to = self.report_window()
        start = time.monotonic()
        attempts = moved = 0
        last_diffs: list[str] = []
        next_tend = 0.0
        while True:
            elapsed = time.monotonic() - start
            if elapsed > self.opts.staleness_deadline_s:
                result = {"after": label, "seconds": round(elapsed, 1), "timed_out": True, "attempts": attempts,
                          "table_moved": moved, "last_differences": last_diffs[:5]}
                break
            if elapsed >= next_tend:
                self.operator.tend()
                next_tend = elapsed + 20
            attempts += 1
            try:
                agree, diffs, _ = checker.reports_agree_once(self.api, date_from, date_to)
            except Exception as exc:  # noqa: BLE001 - API or Postgres still coming back
                agree, diffs = False, [f"{type(exc).__name__}: {exc}"]
            if agree:
                result = {"after": label, "seconds": round(time.monotonic() - start, 1), "timed_out": False,
                          "attempts": attempts, "table_moved": moved}
                break
            if agree is None:
                moved += 1
            else:
                last_diffs = diffs
            time.sleep(2)
        self.staleness.append(result)
        self.log(f"reports {'agreed with the table' if not result['timed_out'] else 'did NOT agree'} "
                 f"{result['seconds']}s after {label}")
        return result

    def chaos(self) -> None:
        o = self.opts
        schedule = planning.kill_schedule(o.kills, o.seed, short=o.short)
        rng = random.Random(f"soak-pauses:{o.seed}")
        for n, spec in enumerate(schedule, 1):
            event = None
            for _ in range(3):  # run_worker: a run to hit may need a few tries
                event = self.kill(spec)
                if event is not None:
                    break
            if event is None:
                self.notes.append(f"kill {n} ({spec.target}) skipped: no pipeline run to hit")
                self.log(f"kill {n}/{len(schedule)} ({spec.target}): skipped, no run to hit")
                continue
            killed_at = time.monotonic()
            self.recover(spec, event, killed_at)
            self.operator.tend()
            event["report_staleness"] = self.measure_staleness(f"recovery of {spec.target} (kill {n})")
            self.kills.append(event)
            pause = rng.uniform(1, 4) if o.short else rng.uniform(10, 45)
            self.log(f"kill {n}/{len(schedule)} done; next in {pause:.0f}s")
            time.sleep(pause)

    def hour_done(self, hour: datetime, pg_done: dict[str, float]) -> bool:
        """The hour's manifest accounts for every raw line landed now, and the Postgres step ran
        after that curation."""
        lake = checker.Lake()
        m = lake.manifest(hour)
        if not m:
            return False
        raw = sum(checker.expect.count_lines(d) for d in lake.raw_hour(hour).values())
        if m.get("raw_lines") != raw:
            return False
        processed = m.get("processed_at")
        curated_at = datetime.fromisoformat(processed).timestamp() if processed else 0
        return pg_done.get(hour.strftime(stack.PARTITION_FORMAT), 0) > curated_at

    def drain(self) -> tuple[list[datetime], list[datetime]]:
        """Wait until every landed hour is processed and nothing runs; returns (hours to check,
        hours left out because they were still open or settling)."""
        o = self.opts
        settle = int(os.environ.get("WL_LANDING_SETTLE_SECONDS", "300"))
        start = time.monotonic()
        self.log(f"drain: waiting for {len(self.writer.hours)} landed hours (open hours too: {o.wait_open_hour})")
        while True:
            self.operator.tend()
            now = datetime.now(UTC)
            hours = sorted(self.writer.hours)
            closed_enough = [h for h in hours if h + HOUR + timedelta(seconds=settle) <= now]
            waiting_open = [h for h in hours if h not in closed_enough]
            try:
                keys = [h.strftime(stack.PARTITION_FORMAT) for h in closed_enough]
                pg_done = self.gql.materializations(list(TABLE_CURATED_PAYMENTS), keys)
                pending = [h for h in closed_enough if not self.hour_done(h, pg_done)]
                active = [r for r in self.gql.runs(created_after=self.t0 - 5) if r["status"] in ACTIVE and stack.pipeline_run(r)]
            except (httpx.HTTPError, RuntimeError) as exc:
                self.log(f"drain: {exc}")
                pending, active = closed_enough, [None]
            quiet = not pending and not active
            if quiet and (not waiting_open or not o.wait_open_hour):
                self.quiescent = True
                self.log(f"drain: quiescent after {time.monotonic() - start:.0f}s; {len(closed_enough)} hours processed"
                         + (f", {len(waiting_open)} still open/settling: {[f'{h:%H}:00' for h in waiting_open]}" if waiting_open else ""))
                return closed_enough, waiting_open
            if time.monotonic() - start > o.drain_timeout_s:
                self.notes.append(f"drain timed out after {o.drain_timeout_s:.0f}s: hours not processed "
                                  f"{[h.isoformat() for h in pending]}, runs active {len(active)}, open {len(waiting_open)}")
                self.log(f"drain: TIMED OUT; pending {[f'{h:%Y-%m-%dT%H}' for h in pending]}, active runs {len(active)}")
                return closed_enough, waiting_open
            # The short variant's drain is most of CI's soak: look again soon after the last run ends.
            time.sleep(3 if o.short else 10)

    def api_5xx_from_log(self) -> dict:
        path = stack.stack_dir() / "logs" / "api.log"
        by: Counter = Counter()
        reports = 0
        if path.exists():
            with path.open("rb") as f:
                f.seek(self.api_log_offset)
                for raw in f:
                    try:
                        e = json.loads(raw)
                    except ValueError:
                        continue
                    status = e.get("status")
                    if e.get("logger") == "api.access" and isinstance(status, int) and status >= 500:
                        by[f"{e.get('route')} {status}"] += 1
                        reports += str(e.get("route") or "").startswith("/reports/")
        return {"reports_5xx": reports, "by_route_status": dict(by)}

    # ---- the whole run
    def run(self) -> dict:
        o = self.opts
        result: dict = {}
        error = None
        try:
            self.preflight()
            self.plan_landing()
            self.start_writer()
            oldest = self.plan.closed[: max(1, min(o.backfill_hours, len(self.plan.closed)))]
            self.launch_backfill(oldest, "UI-style backfill of the oldest closed hours while the sensor runs")
            self.chaos()
            self.writer.finish()
            checked, open_hours = self.drain()
            self.log(f"check: {len(checked)} landing hours")
            found = checker.check(checked, self.api, log=self.log)
            runs_after = self.gql.runs(created_after=time.time() - 5)
            if any(stack.pipeline_run(r) for r in runs_after):
                self.notes.append("a pipeline run started while the check read the stores")
            result = self.results(found, checked, open_hours)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.log(f"soak FAILED: {error}\n{traceback.format_exc()}")
            result = self.results(None, [], [], error=error)
        finally:
            self.cleanup()
        return result

    def results(self, found: dict | None, checked: list[datetime], open_hours: list[datetime], error: str | None = None) -> dict:
        o = self.opts
        kills = Counter(k["target"] for k in self.kills)
        try:
            ticks = self.gql.failed_ticks(self.t0) if hasattr(self, "t0") else {}
        except (httpx.HTTPError, RuntimeError) as exc:
            ticks, error = {}, (error or "") + f"; failed ticks unreadable: {exc}"
        self.scrape_api_metrics()
        api5 = self.api_5xx_from_log() if hasattr(self, "api_log_offset") else {"reports_5xx": None, "by_route_status": {}}
        stale = [s["seconds"] for s in self.staleness]
        res = {
            "benchmark": "soak",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": o.command,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items() if k != "command"},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_1m_at_end": os.getloadavg()[0]},
            "duration_s": round(time.time() - self.t0, 1) if hasattr(self, "t0") else None,
            "error": error,
            "landing_hours": len(checked),
            "kills": {t: kills.get(t, 0) for t in planning.TARGETS},
            "kills_total": sum(kills.values()),
            "lost_rows": found["lost_rows"] if found else None,
            "duplicated_rows": found["duplicated_rows"] if found else None,
            "regressed_rows": found["regressed_rows"] if found else None,
            "ledger_mismatches": found["ledger_mismatches"] if found else None,
            "sensor_tick_errors": sum(len(v) for v in ticks.values()),
            "api_5xx": api5["reports_5xx"],
            "max_report_staleness_s": max(stale) if stale else None,
            # Further counts the check makes; each must be 0 as well.
            "field_mismatches": found["field_mismatches"] if found else None,
            "accounting_mismatches": found["accounting_mismatches"] if found else None,
            "report_mismatches": found["report_mismatches"] if found else None,
            "details": {
                "hours_checked": [h.isoformat() for h in checked],
                "hours_left_open": [h.isoformat() for h in open_hours],
                "quiescent_at_check": self.quiescent,
                "writer": {"files": dict(self.writer.files), "lines": dict(self.writer.lines), "errors": self.writer.errors,
                           "out_of_order_approvals": len(self.plan.held_payments)} if hasattr(self, "writer") else None,
                "backfills": self.backfills,
                "kill_events": self.kills,
                "report_staleness": self.staleness,
                "staleness_timeouts": sum(1 for s in self.staleness if s["timed_out"]),
                "operator_actions": self.operator.actions if hasattr(self, "operator") else [],
                "operator_reruns": sum(1 for a in (self.operator.actions if hasattr(self, "operator") else [])
                                       if a["action"].startswith("re-execute")),
                "sensor_tick_errors_by_sensor": {k: len(v) for k, v in ticks.items() if v},
                "sensor_tick_error_examples": {k: [(t.get("error") or {}).get("message", "")[:300] for t in v[:3]] for k, v in ticks.items() if v},
                "api_5xx_by_route_status": api5["by_route_status"],
                "api_5xx_from_metrics": dict(self.api_metrics_5xx),
                "check": found,
                "notes": self.notes,
            },
        }
        goals = {k: res[k] == 0 for k in ("lost_rows", "duplicated_rows", "regressed_rows", "ledger_mismatches",
                                          "sensor_tick_errors", "api_5xx", "field_mismatches", "accounting_mismatches", "report_mismatches")}
        goals["max_report_staleness_s"] = res["max_report_staleness_s"] is not None and res["max_report_staleness_s"] <= 120 and not res["details"]["staleness_timeouts"]
        goals["landing_hours"] = res["landing_hours"] >= (o.hours if o.short else max(12, o.hours))
        goals["kills"] = res["kills_total"] >= o.kills
        goals["quiescent"] = self.quiescent  # every landed hour processed and no run left when the check read the stores
        res["goals"] = {"met": all(goals.values()) and error is None, "each": goals}
        return res

    def cleanup(self) -> None:
        """Whatever happened: the writer stopped, every service healthy, the key revoked, the
        apps as they were found."""
        if hasattr(self, "writer") and self.writer.is_alive():
            self.writer.stop_event.set()
            self.writer.join(timeout=120)
        # `up` only when a service the soak kills is still down (every recovery already ran it).
        commands = [("apps",)] if all(self.healthy_services().values()) else [("up",), ("apps",)]
        for cmd in commands:
            res = stack.operator_command(*cmd)
            if res.returncode != 0:
                self.log(f"cleanup: {res.command} failed: {res.tail[-500:]}")
        if hasattr(self, "key_id"):
            stack.revoke_api_key(self.key_id)
            self.api.close()
        if self.opts.restore_apps and hasattr(self, "apps_were_running") and not self.apps_were_running:
            # Queued runs would start under the next daemon; cancel what this soak left behind.
            try:
                for r in self.gql.runs(created_after=self.t0 - 5):
                    if r["status"] in ACTIVE:
                        self.gql.terminate(r["runId"])
            except (httpx.HTTPError, RuntimeError) as exc:
                self.log(f"cleanup: could not cancel runs left active: {exc}")
            stack.operator_command("apps-down")
            self.log("cleanup: apps stopped (they were not running before the soak)")
        self.log(f"cleanup: stack {'healthy' if all(self.healthy_services().values()) else 'NOT healthy'}: {self.healthy_services()}")

    def healthy_services(self) -> dict[str, bool]:
        return {"postgres": stack.postgres_up(), "broker": stack.broker_up(), "connect": stack.connect_up()}


def _need(pid: int | None, name: str) -> int:
    if pid is None:
        raise RuntimeError(f"{name} is not running (no live PID in {stack.stack_dir() / 'pids'})")
    return pid


def write_results(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
