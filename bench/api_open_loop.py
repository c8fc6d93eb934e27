"""Reports API at fixed request rates (open loop), over the 10M-row benchmark database (by hand,
never in the tests).

    eval "$(stack/wallet-stack env)"; .venv/bin/python bench/api_open_loop.py --headline

1. Prepares wallet_lake_bench exactly as bench/api_load.py does (its prepare_database: rows
   loaded once, aggregates of every dt built).
2. Builds the driver into $WL_CACHE_DIR when missing (--driver):
   - open-loop (the default): bench/open_loop_driver, a small Go program (standard library
     only) that schedules request k at t0 + (k+1)/rate whatever the answers do, over at most
     --connections keep-alive connections opened before t0, and writes each request's due time,
     send time, response time and status. One thread and one epoll loop: 0.06-0.11 ms of CPU
     a request against vegeta's 0.20-0.36 ms, CPU the API shares on two cores
     (docs/benchmarks.md, session 25);
   - vegeta (VEGETA_VERSION, `go install` through the Go module proxy), the driver of sessions
     14-24, kept for comparison: the same constant pacer, results stamped when a worker takes
     a request.
   Both read one targets file (vegeta's JSON format; the API key travels in it, never on a
   command line); a request sent late because every connection was busy counts from its schedule.
3. Starts the API as bench/api_load.py does (`python -m api.serve`, a SO_REUSEPORT socket per
   worker, or with --server uvicorn `uvicorn --workers`; --workers, --pool per worker) and drives
   it at each --rates for --duration seconds with bench/api_load.py's mix (random_path, written
   out as a targets file), after the machine is quiet (1-minute load average below --quiet-load
   and CPUs less than --quiet-busy busy).
4. Latency is measured from each request's SCHEDULED send time (no coordinated omission): the
   open-loop driver records the schedule itself; for vegeta, which stamps request seq k when a
   worker takes it (>= its tick), the schedule is t0 + (k+1)/rate with t0 fitted as the earliest
   start any request allows. A request's latency is its lateness in being sent plus its response
   time. Requests the open-loop driver never sent (still queued 30 s after the last was due) are
   errors.
5. Says what each attack's tail is made of (`over_p99`, tail_figures): the requests slower than
   the p99 by kind of request against each kind's share, and grouped into episodes (a stall or
   a burst the machine could not serve at once, against requests slow on their own); and how
   fast the host ran Python just before and after the attack (`host_probe_before/after`).
6. Records the run under open_loop.options_tried in bench/results/api.json (by --label); with
   --headline also as open_loop's figures and open_loop_p99_ms_at_1000. The closed-loop
   figures of bench/api_load.py stay as they are.
7. --app drives another ASGI app in the API's place, for comparison only (never the headline):
   bench/api_lean_app.py answers the same reports without FastAPI's routing and validation.

Goal (issue 14): p99 <= 10 ms at 1,000 requests/s on this 2-core machine."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import api_load as bench  # noqa: E402 - bench/ is on sys.path when run as a script
from api_load import API_APP, ROOT, random_path
from stack_env import load_stack_env

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


# --- the drivers ------------------------------------------------------------------------------------

DRIVERS = ("open-loop", "vegeta")
DRIVER_SOURCE = ROOT / "bench" / "open_loop_driver"


def cache_dir() -> Path:
    return Path(os.environ.get("WL_CACHE_DIR") or Path.home() / ".cache" / "wallet-lake")


def go_binary(what: str) -> str:
    # /usr/local/go is Go's own install location, not always on a non-login shell's PATH.
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise SystemExit(f"{what} is missing and so is Go to build it: install Go >= 1.22, then run again")
    return go


def ensure_vegeta() -> Path:
    """The pinned vegeta binary, built once per machine into the cache every clone shares."""
    binary = cache_dir() / f"vegeta-{VEGETA_VERSION}" / "vegeta"
    if binary.exists():
        return binary
    go = go_binary(f"vegeta {VEGETA_VERSION}")
    print(f"installing vegeta {VEGETA_VERSION}: go install {VEGETA_MODULE}@{VEGETA_VERSION}", flush=True)
    subprocess.run([go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"], check=True,
                   env=dict(os.environ, GOBIN=str(binary.parent), GOFLAGS="-buildvcs=false"))
    return binary


def driver_version() -> str:
    """The open-loop driver's source digest: a changed source builds a new binary."""
    digest = hashlib.sha256()
    for path in sorted(DRIVER_SOURCE.glob("*")):
        if path.suffix in (".go", ".mod"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def ensure_open_loop_driver() -> Path:
    """bench/open_loop_driver, built once per source version into the cache (standard library
    only: nothing is downloaded)."""
    binary = cache_dir() / f"open-loop-driver-{driver_version()}" / "open_loop_driver"
    if binary.exists():
        return binary
    go = go_binary("the open-loop driver")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f".{binary.name}.{os.getpid()}.partial")  # two builds at once each rename a whole binary
    subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=DRIVER_SOURCE, check=True,
                   env=dict(os.environ, GOFLAGS="-buildvcs=false"))
    partial.rename(binary)
    return binary


def go_version() -> str:
    return subprocess.run([go_binary("Go"), "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def ensure_driver(driver: str) -> Path:
    return ensure_open_loop_driver() if driver == "open-loop" else ensure_vegeta()


def write_targets(path: Path, port: int, key: str, count: int, seed: int, all_share: float) -> None:
    """vegeta's JSON targets, one distinct request each, which both drivers read (the key travels
    in the file, mode 0600 in a private directory, never on a command line)."""
    rng = random.Random(seed)
    header = {"X-API-Key": [key]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        for _ in range(count):
            f.write(json.dumps({"method": "GET", "url": f"http://127.0.0.1:{port}{random_path(rng, all_share)}",
                                "header": header}) + "\n")


def attack_command(driver: str, binary: Path, targets: Path, output: Path, rate: int, duration: int,
                   connections: int) -> list[str]:
    """At most `connections` keep-alive connections, as wrk2 does: unbounded, vegeta opens a
    connection per late answer, and on two cores that churn (vegeta's and uvicorn's CPU) turns a
    short stall into collapse. A send delayed because every connection is busy still counts from
    its scheduled time, so the bound hides nothing. -timeout as wrk's; vegeta's -max-body 0:
    bodies are read and discarded, not kept (the open-loop driver never keeps them)."""
    if driver == "open-loop":
        return [str(binary), f"-targets={targets}", f"-rate={rate}", f"-duration={duration}s", "-timeout=5s",
                f"-connections={connections}", f"-output={output}"]
    return [str(binary), "attack", "-format=json", f"-targets={targets}", f"-rate={rate}/s",
            f"-duration={duration}s", "-timeout=5s", "-max-body=0", f"-workers={connections}",
            f"-max-workers={connections}", f"-connections={connections}", f"-output={output}"]


# --- figures ----------------------------------------------------------------------------------------

def request_kind(path: str) -> str:
    """A request's kind in the tail's breakdown: its report, and whether it names one merchant
    (or one payment method), since those read far fewer rows than the whole day's."""
    report, _, query = path.partition("?")
    narrowed = "merchant=" in query or "payment_method=" in query
    return f"{report.removeprefix('/reports/')}/{'one' if narrowed else 'all'}"


def tail_figures(due_ms: list[float], total_ms: list[float], kinds: list[str], threshold_ms: float,
                 gap_ms: float = 50.0) -> dict:
    """What the requests slower than `threshold_ms` (the p99) are made of:
    - by kind: each kind's share of them against its share of every request. A kind well over
      its share is slow by its own work;
    - as episodes: slow requests due within `gap_ms` of the previous slow one form one episode.
      A few long episodes are stalls (a pause, a burst the machine could not serve at once);
      many single-request episodes are requests slow on their own."""
    slow = sorted((due, total, kind) for due, total, kind in zip(due_ms, total_ms, kinds) if total > threshold_ms)
    everyone, in_tail = Counter(kinds), Counter(kind for _, _, kind in slow)
    episodes: list[dict] = []
    for due, total, _ in slow:
        if episodes and due - episodes[-1]["last_due_ms"] <= gap_ms:
            episode = episodes[-1]
            episode.update(last_due_ms=due, requests=episode["requests"] + 1, max_ms=max(episode["max_ms"], total))
        else:
            episodes.append({"first_due_ms": due, "last_due_ms": due, "requests": 1, "max_ms": total})
    longest = sorted(episodes, key=lambda e: -e["requests"])[:5]
    return {
        "threshold_ms": round(threshold_ms, 2),
        "requests": len(slow),
        "by_kind": {kind: {"tail_share": round(in_tail.get(kind, 0) / max(len(slow), 1), 3),
                           "all_share": round(count / max(len(kinds), 1), 3)}
                    for kind, count in sorted(everyone.items())},
        "episodes": len(episodes),
        "single_request_episodes": sum(e["requests"] == 1 for e in episodes),
        "largest_episodes": [{"at_s": round(e["first_due_ms"] / 1000, 2),
                              "spans_ms": round(e["last_due_ms"] - e["first_due_ms"], 1),
                              "requests": e["requests"], "max_ms": round(e["max_ms"], 1)} for e in longest],
    }


def from_schedule(rows: list[tuple[int, int, int, int]], rate: int, *, t0: float | None = None, unsent: int = 0,
                  kinds: Sequence[str] | Mapping[int, str] | None = None) -> dict:
    """Figures of one attack from its requests (seq, start ns, latency ns, status code).

    Request seq k is due at t0 + (k+1)/rate (both drivers' constant pacer). The open-loop driver
    gives t0 (its own clock's zero). vegeta stamps k when a worker takes it, never before its
    tick, so there t0 is fitted as the earliest start the stamps allow (the least late request
    counts as on time). Latency from the schedule is then (start - due) + response time.
    `unsent` requests (scheduled, never sent) count as errors and in `requests`. `kinds`
    (request_kind of each request, indexed by seq) adds the tail's breakdown (tail_figures)."""
    interval = 1e9 / rate
    if t0 is None:
        t0 = min(start - (seq + 1) * interval for seq, start, _, _ in rows)
    from_sched, service, send_lag, due_ms = [], [], [], []
    errors = unsent
    for seq, start, latency, code in rows:
        lag = start - (t0 + (seq + 1) * interval)
        send_lag.append(lag / 1e6)
        service.append(latency / 1e6)
        from_sched.append((lag + latency) / 1e6)
        due_ms.append((seq + 1) * interval / 1e6)
        errors += not 200 <= code < 400
    pct = bench.percentile
    ordered = sorted(from_sched)
    p99 = pct(ordered, 0.99)
    # The tail reads each request in row order (its due time and kind), so before the sort.
    tail = (tail_figures(due_ms, from_sched, [kinds[seq] for seq, _, _, _ in rows], p99)
            if kinds is not None and rows else None)
    from_sched = ordered
    for values in (service, send_lag):
        values.sort()
    span_s = (max(s for _, s, _, _ in rows) - min(s for _, s, _, _ in rows)) / 1e9
    return {
        "rate": rate,
        "requests": len(rows) + unsent,
        "unsent": unsent,
        "achieved_rate": round((len(rows) - 1) / span_s, 1) if span_s else None,
        "errors": errors,
        "p50_ms": round(pct(from_sched, 0.50), 2),
        "p90_ms": round(pct(from_sched, 0.90), 2),
        "p99_ms": round(p99, 2),
        "p99_9_ms": round(pct(from_sched, 0.999), 2),
        "max_ms": round(from_sched[-1], 2),
        # How the total splits: response time from the actual send, and lateness of the send.
        "response_from_send_ms": {"p50": round(pct(service, 0.5), 2), "p99": round(pct(service, 0.99), 2),
                                  "p99_9": round(pct(service, 0.999), 2)},
        "send_lag_ms": {"p50": round(pct(send_lag, 0.5), 3), "p99": round(pct(send_lag, 0.99), 3),
                        "max": round(send_lag[-1], 3)},
        **({"over_p99": tail} if tail is not None else {}),
    }


def read_vegeta_results(vegeta: Path, results: Path) -> tuple[list[tuple[int, int, int, int]], dict[int, str]]:
    """(seq, start ns, latency ns, code) of every request, and each request's path by seq, from
    `vegeta encode --to csv` (columns: timestamp, code, latency, bytes out, bytes in, error,
    body, attack, seq, method, url, headers). The path comes from the result itself: vegeta
    numbers a request when a worker takes it and picks its target afterwards, so two workers
    can swap targets and seq k need not be the targets file's k-th line."""
    out = subprocess.run([str(vegeta), "encode", "--to", "csv", str(results)], capture_output=True, text=True, check=True).stdout
    rows, paths = [], {}
    for r in csv.reader(out.splitlines()):
        rows.append((int(r[8]), int(r[0]), int(r[2]), int(r[1])))
        paths[int(r[8])] = url_path(r[10])
    return rows, paths


def read_open_loop_results(results: Path) -> tuple[list[tuple[int, int, int, int]], int]:
    """The open-loop driver's lines "seq due_ns sent_ns latency_ns status" (ns after its t0) as
    (seq, start ns, latency ns, code) rows, and how many were never sent (status -1)."""
    rows, unsent = [], 0
    for line in results.read_text().splitlines():
        seq, _due, sent, latency, status = map(int, line.split())
        if status == -1:
            unsent += 1
        else:
            rows.append((seq, sent, latency, status))
    return rows, unsent


def url_path(url: str) -> str:
    """/reports/x?y of http://host:port/reports/x?y."""
    return "/" + url.split("/", 3)[3]


def target_kinds(targets: Path) -> list[str]:
    """request_kind of each target, in the file's order: the open-loop driver's seq k is the
    file's k-th line (it sends requests[k] and writes k)."""
    with targets.open() as f:
        return [request_kind(url_path(json.loads(line)["url"])) for line in f]


def attack_figures(driver: str, binary: Path, results: Path, rate: int, targets: Path) -> dict:
    if driver == "open-loop":
        rows, unsent = read_open_loop_results(results)
        return from_schedule(rows, rate, t0=0, unsent=unsent, kinds=target_kinds(targets))
    rows, paths = read_vegeta_results(binary, results)
    return from_schedule(rows, rate, kinds={seq: request_kind(path) for seq, path in paths.items()})


# --- a run ------------------------------------------------------------------------------------------

def _probe_work() -> int:
    """A fixed piece of interpreter work of the kind a request does (calls, dicts, strings)."""
    total = 0
    for i in range(20_000):
        row = {"merchant": f"m_{i % 200:04d}", "count": i, "amount": i * 7}
        total += len(row["merchant"]) + (row["count"] ^ row["amount"]) % 13
    return total


def host_probe(repeats: int = 7) -> dict:
    """How fast this machine runs a small piece of Python right now: ms per round of
    _probe_work, fastest and median of `repeats`, taken just before and just after an attack.
    A record beside the API's own CPU per request, which moves with the host by up to 2x over
    minutes (docs/benchmarks.md). Session 27 found it a weak sign of that phase: fast before
    some of the slowest attacks, slow before a fast one."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _probe_work()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"fastest_ms": round(times[0], 2), "median_ms": round(times[len(times) // 2], 2)}


def wait_until_quiet(max_wait_s: int, load_below: float, busy_below: float) -> tuple[float, float]:
    """Wait (at most max_wait_s) for a 1-minute load average below load_below, then for CPUs
    less busy than busy_below (bench/api_load.py's wait): other engineers benchmark on the same
    two cores. Returns (load average, busy share) when it stopped waiting."""
    deadline = time.monotonic() + max_wait_s
    while True:
        while os.getloadavg()[0] >= load_below and time.monotonic() < deadline:
            print(f"  load average {os.getloadavg()[0]:.2f}: waiting for a quieter machine", flush=True)
            time.sleep(10)
        busy = bench.wait_for_quiet(max(int(deadline - time.monotonic()), 0), busy_below)
        # Both at once: the busy wait may have outlasted a quiet load average.
        if os.getloadavg()[0] < load_below or time.monotonic() >= deadline:
            return os.getloadavg()[0], busy


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def own_postgres_pids() -> list[int]:
    """This stack's postmaster and its backends: other engineers' Postgres servers on the
    machine count as other work, not as this API's database."""
    pid_file = Path(os.environ.get("WL_STACK_DIR") or ROOT / ".stack") / "pids" / "postgres.pid"
    if not pid_file.exists():
        return bench._postgres_pids()
    return bench._children(int(pid_file.read_text().split()[0]))


def answer_counts(port: int) -> dict[str, float]:
    """The API's reports so far by whether a kept answer was reused or the report read
    (wallet_lake_api_report_answers_total), and its latency reports by whether kept percentiles
    were reused or computed (wallet_lake_api_latency_percentiles_total); every worker: the bench
    sets PROMETHEUS_MULTIPROC_DIR."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    counts = {"reused": 0.0, "read": 0.0, "percentiles_reused": 0.0, "percentiles_computed": 0.0}
    prefixes = {"wallet_lake_api_report_answers": "", "wallet_lake_api_latency_percentiles": "percentiles_"}
    for family in text_string_to_metric_families(text):
        if family.name in prefixes:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[prefixes[family.name] + sample.labels["result"]] += sample.value
    return counts


def attack(driver: str, binary: Path, targets: Path, work: Path, rate: int, duration: int, connections: int,
           api_pid: int, port: int) -> tuple[dict, list[str]]:
    """One attack at `rate`, with where the CPU went (as bench/api_load.py's run_wrk) and how
    many answers the API reused (api/reports/answer_cache.py)."""
    output = work / f"results-{rate}.out"
    answers0 = answer_counts(port)
    cmd = attack_command(driver, binary, targets, output, rate, duration, connections)
    api = bench._children(api_pid)
    balancers = [pid for pid in api if _command_name(pid) == "haproxy"]  # --balance-requests: counted in the API too
    pg = own_postgres_pids()
    busy0, total0 = bench._machine_ticks()
    api0, pg0, lb0 = bench._cpu_ticks(api), bench._cpu_ticks(pg), bench._cpu_ticks(balancers)
    load0 = os.getloadavg()[0]
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(cmd, check=True)
    seconds = time.monotonic() - started
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, total1 = bench._machine_ticks()
    api1, pg1, lb1 = bench._cpu_ticks(api), bench._cpu_ticks(pg), bench._cpu_ticks(balancers)
    load1 = os.getloadavg()[0]
    figures = attack_figures(driver, binary, output, rate, targets)
    cpus = os.cpu_count() or 1
    hz = os.sysconf("SC_CLK_TCK")
    api_s, pg_s, busy_s = (api1 - api0) / hz, (pg1 - pg0) / hz, (busy1 - busy0) / hz
    driver_s = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    n = max(figures["requests"], 1)
    figures["cpu"] = {
        "load_average_before": round(load0, 2),
        "load_average_after": round(load1, 2),
        "machine_busy_share": round((busy1 - busy0) / max(total1 - total0, 1), 3),
        "api_cpu_ms_per_request": round(api_s * 1000 / n, 3),
        "postgres_cpu_ms_per_request": round(pg_s * 1000 / n, 3),
        # HAProxy's share of api_cpu_ms_per_request (api.serve --balance-requests; else absent).
        **({"balancer_cpu_ms_per_request": round((lb1 - lb0) / hz * 1000 / n, 3)} if balancers else {}),
        "api_cpu_share": round(api_s / (seconds * cpus), 3),
        "postgres_cpu_share": round(pg_s / (seconds * cpus), 3),
        # vegeta_cpu_share in the runs before session 25 (vegeta was the only driver).
        "driver_cpu_share": round(driver_s / (seconds * cpus), 3),
        "driver_cpu_ms_per_request": round(driver_s * 1000 / n, 3),
        # Whatever else ran on the machine meanwhile (other users' work).
        "other_cpu_share": round(max(busy_s - api_s - pg_s - driver_s, 0) / (seconds * cpus), 3),
    }
    answers1 = answer_counts(port)
    reused, read = answers1["reused"] - answers0["reused"], answers1["read"] - answers0["read"]
    kept, computed = (answers1[k] - answers0[k] for k in ("percentiles_reused", "percentiles_computed"))
    figures["answers"] = {"reused": int(reused), "read": int(read),
                          "reused_share": round(reused / (reused + read), 3) if reused + read else None,
                          "latency_percentiles_reused": int(kept), "latency_percentiles_computed": int(computed)}
    output.unlink()
    return figures, cmd


def shown(cmd: list[str], work: Path) -> str:
    """A command line as recorded: the private directory's path shortened."""
    return shlex.join(cmd).replace(str(work), "$WORK")


def record(args: argparse.Namespace, label: str, runs: list[dict], commands: list[str]) -> None:
    """Write the rates measured so far (after each one: a run stopped early keeps them)."""
    from importlib.metadata import version

    run = {
        "label": label,
        "started": args.started,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "driver": args.driver,
        "api": f"{'python -m api.serve' if args.server == 'api.serve' else args.server} {args.app} --workers {args.workers} {' '.join(args.uvicorn_arg)}".strip()
               + f", pool {args.pool} per worker" + (f", {' '.join(args.api_env)}" if args.api_env else ""),
        "duration_s": args.duration,
        "rates": runs,
        "rates_asked": args.rates,
    }
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    section = report.setdefault("open_loop", {})
    # This run's own entry is replaced (it is written again after each rate); earlier runs of the
    # same configuration stay.
    tried = [r for r in section.get("options_tried", []) if (r["label"], r.get("started")) != (label, args.started)]
    section["options_tried"] = [*tried, run]
    if args.headline:
        at_1000 = next((r for r in runs if r["rate"] == 1000), None)
        section.update({
            **({"tool": "open-loop", "tool_version": f"bench/open_loop_driver (source {driver_version()})",
                "install": "go build (bench/api_open_loop.py, when missing; Go's standard library only)"}
               if args.driver == "open-loop" else
               {"tool": "vegeta", "tool_version": VEGETA_VERSION,
                "install": f"go install {VEGETA_MODULE}@{VEGETA_VERSION} (bench/api_open_loop.py, when missing)"}),
            "latency_measured_from": "each request's scheduled send time, start + (seq+1)/rate (no coordinated omission)",
            "command": shlex.join(["python", "bench/api_open_loop.py", *sys.argv[1:]]),
            "attack_command_lines": commands,
            "mix": f"bench/api_load.py's random_path, as vegeta's JSON targets: uniform over the four reports; random merchant of {bench.MERCHANTS} "
                   f"({args.all_merchant_share:.0%} every merchant); ranges 1-31 days; latency: one method half the time; "
                   "each attack draws its own requests (seed per rate and attempt; before session 15 every attack replayed one list from its head)",
            "goal": {"p99_ms_at_1000_at_most": 10},
            "versions": {args.driver: VEGETA_VERSION if args.driver == "vegeta" else driver_version(),
                         "go": go_version(), "uvicorn": version("uvicorn"), "uvloop": version("uvloop"),
                         "httptools": version("httptools"),
                         # The API runs on this interpreter (sys.executable): its build moves the API's CPU (session 41).
                         "python": f"{platform.python_version()} ({os.path.realpath(sys.executable)})"},
            **{k: v for k, v in run.items() if k != "label"},
            "configuration": label,
        })
        if at_1000 is not None:
            report["open_loop_p99_ms_at_1000"] = at_1000["p99_ms"]
            section["goal_met"] = at_1000["p99_ms"] <= 10 and at_1000["errors"] == 0
    args.out.write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    parser = argparse.ArgumentParser(description="Reports API at fixed request rates (open loop).")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--refresh", action="store_true", help="rebuild the report aggregates even when they are built")
    parser.add_argument("--rates", type=int, nargs="+", default=[500, 1000, 1500], help="requests/s, one attack each")
    parser.add_argument("--duration", type=int, default=30, help="seconds of each measured attack")
    parser.add_argument("--warmup", type=int, default=10, help="seconds at the first rate before measuring")
    parser.add_argument("--driver", choices=DRIVERS, default="open-loop",
                        help="bench/open_loop_driver, or vegeta (the driver before session 25, for comparison)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections at most (vegeta: workers)")
    parser.add_argument("--workers", type=int, default=2, help="the API's worker processes")
    parser.add_argument("--server", choices=bench.SERVERS, default="api.serve",
                        help="api.serve (a SO_REUSEPORT socket per worker), uvicorn --workers (one shared socket; before session 25), or granian (session 26, compared only)")
    parser.add_argument("--pool", type=int, default=4, help="Postgres connections per worker")
    parser.add_argument("--balance-requests", type=int, default=0, metavar="N",
                        help="api.serve behind HAProxy, each request to the least busy worker, at most N at once in each "
                             "(api/balancer.py; session 39); 0: a socket per worker")
    parser.add_argument("--api-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra variable for the API (an option under comparison)")
    parser.add_argument("--app", default=API_APP,
                        help="the ASGI app to drive; another than the API's is looked up in bench/ (e.g. api_lean_app:app)")
    parser.add_argument("--uvicorn-arg", action="append", default=[], metavar="ARG",
                        help="an extra server argument, which api.serve and uvicorn both take (--loop=asyncio, --http=h11)")
    parser.add_argument("--all-merchant-share", type=float, default=0.1)
    parser.add_argument("--wait-quiet", type=int, default=900, help="seconds to wait at most for a quiet machine before each rate")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="1-minute load average to wait for")
    parser.add_argument("--quiet-busy", type=float, default=0.15, help="share of CPU time busy with other work to wait for")
    parser.add_argument("--attempts", type=int, default=3, help="attacks at most per rate while other work disturbs them")
    parser.add_argument("--max-other", type=float, default=0.05, help="share of the CPUs other work may take during an attack")
    parser.add_argument("--label", help="name of this configuration in open_loop.options_tried (default: from the options)")
    parser.add_argument("--headline", action="store_true", help="also write these figures as open_loop's headline")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()
    if args.headline and args.app != API_APP:
        parser.error("--headline measures the API itself: not with --app")
    if args.balance_requests:
        if args.server != "api.serve":
            parser.error("--balance-requests is api.serve's")
        # As any server argument: in the label and in the recorded command.
        args.uvicorn_arg = [*args.uvicorn_arg, f"--balance-requests={args.balance_requests}"]
    args.started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    load_stack_env()

    bench.prepare_database(args.rows, args.seed, refresh=args.refresh)
    binary = ensure_driver(args.driver)
    key_id, key = bench.create_bench_key()
    port = bench.free_port()
    work = Path(tempfile.mkdtemp(prefix="wallet-lake-openloop-"))  # mode 0700
    (work / "metrics").mkdir()

    def draw(name: str, rate: int, seconds: int, seed: int) -> Path:
        """Each attack draws its own requests: replaying one list from its head in every attack
        (as before session 15) hands a server that keeps answers the previous attack's requests
        again, which no real traffic guarantees. Repeats within the mix's space stay as drawn."""
        path = work / f"targets-{name}.json"
        write_targets(path, port, key, rate * seconds + 1000, seed, args.all_merchant_share)
        return path

    env_extra = dict(item.split("=", 1) for item in args.api_env)
    other_app = args.app != API_APP
    api = bench.start_api(port, args.workers, args.pool, work / "api.log", str(work / "metrics"),
                          env_extra=env_extra, uvicorn_args=[*args.uvicorn_arg, *(["--app-dir", "bench"] if other_app else [])],
                          app=args.app, server=args.server)
    label = args.label or " ".join([*([f"app={args.app}"] if other_app else []), f"driver={args.driver}", f"server={args.server}",
                                    f"workers={args.workers}", f"pool={args.pool}",
                                    *args.api_env, *args.uvicorn_arg])
    runs, commands = [], []
    try:
        # A warm-up the machine cannot serve leaves a backlog the first attack would inherit.
        wait_until_quiet(args.wait_quiet, args.quiet_load, args.quiet_busy)
        print(f"API up on :{port} ({label}); warming up {args.warmup} s at {args.rates[0]}/s", flush=True)
        warmup = draw("warmup", args.rates[0], args.warmup, args.seed)
        subprocess.run(attack_command(args.driver, binary, warmup, work / "warmup.out", args.rates[0], args.warmup, args.connections),
                       check=True)
        warmup.unlink()
        for rate in args.rates:
            # Other engineers' work during an attack is measured as API latency: an attack they
            # disturbed (more than --max-other of the CPUs) is tried again; the least disturbed
            # attempt is the rate's figure, every attempt is kept.
            attempts = []
            for attempt in range(args.attempts):
                targets = draw(f"{rate}-{attempt}", rate, args.duration, args.seed + 1000 * rate + attempt + 1)
                load, busy = wait_until_quiet(args.wait_quiet, args.quiet_load, args.quiet_busy)
                probe = host_probe()
                print(f"{rate}/s for {args.duration} s (load average {load:.2f}, CPUs {busy:.0%} busy before, "
                      f"host probe {probe['fastest_ms']} ms)", flush=True)
                figures, cmd = attack(args.driver, binary, targets, work, rate, args.duration, args.connections, api.pid, port)
                figures["cpu"]["host_probe_before"] = probe
                figures["cpu"]["host_probe_after"] = host_probe()
                targets.unlink()
                attempts.append(figures)
                print(f"  achieved {figures['achieved_rate']}/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
                      f"p99.9 {figures['p99_9_ms']} ms, max {figures['max_ms']} ms, errors {figures['errors']}; {figures['cpu']}; answers {figures['answers']}",
                      flush=True)
                if figures["cpu"]["other_cpu_share"] <= args.max_other:
                    break
            best = min(attempts, key=lambda f: f["cpu"]["other_cpu_share"])
            runs.append({**best, "attempts": len(attempts),
                         "disturbed_attempts": [{k: f[k] for k in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms", "errors", "cpu")}
                                                for f in attempts if f is not best]})
            commands.append(shown(cmd, work))
            record(args, label, runs, commands)
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(30)
        for path in work.glob("targets-*.json"):  # they hold the key
            path.unlink()

    print(f"wrote {args.out} after each rate; API log in {work}")


if __name__ == "__main__":
    main()
