"""The soak's hands on the local stack: the operator's commands, the processes it kills, health
probes, the Dagster webserver's GraphQL API (what the UI does) and the reports API.

Only processes of this clone's stack are touched: services by their PID files under
$WL_STACK_DIR/pids (Postgres through pg_ctl on its data directory), run workers as the children
of this clone's Dagster code servers (working directory = this clone)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from wallet_lake.contracts.asset_keys import PIPELINE
from wallet_lake_tests.stack_command import wallet_stack
from wallet_lake_tests.stack_versions import pg_bin as pg_bin_folder

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: load the stack's environment (eval \"$(stack/wallet-stack env)\")")
    return value


def kafka_conf() -> dict:
    """librdkafka settings of the `tests` principal over SASL_SSL, built from the stack's
    variables by hand: the check shares no code with the pipeline."""
    return {"bootstrap.servers": env("WL_KAFKA_BOOTSTRAP"), "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "tests", "sasl.password": env("WL_KAFKA_TESTS_PASSWORD"), "ssl.ca.location": env("WL_KAFKA_SSL_CA_LOCATION")}


def connect_auth() -> tuple[str, str]:
    """Basic-auth credentials of Connect's REST API."""
    return env("WL_CONNECT_REST_USERNAME"), env("WL_CONNECT_REST_PASSWORD")


def stack_dir() -> Path:
    return Path(os.environ.get("WL_STACK_DIR") or ROOT / ".stack")


def load_stack_env() -> None:
    """The variables `stack/wallet-stack env` prints (variables already set win, as for the script)."""
    out = subprocess.run(["bash", "-c", 'eval "$(bash stack/wallet-stack env)" && env -0'], cwd=ROOT,
                         capture_output=True, check=True).stdout
    for item in out.split(b"\0"):
        key, sep, value = item.decode().partition("=")
        if sep:
            os.environ.setdefault(key, value)


# ------------------------------------------------------------------------------ the operator

@dataclass
class CommandResult:
    command: str
    returncode: int
    seconds: float
    tail: str


def operator_command(*args: str, timeout: float = 600) -> CommandResult:
    """`bash stack/wallet-stack <args>` as an operator runs it; output appended to
    $WL_STACK_DIR/logs/soak-operator.log."""
    log = stack_dir() / "logs" / "soak-operator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = wallet_stack(*args, timeout=timeout)
    with log.open("a") as f:
        f.write(f"--- {datetime.now(UTC).isoformat()} stack/wallet-stack {' '.join(args)} -> {proc.returncode}\n")
        f.write(proc.stdout + proc.stderr)
    return CommandResult(f"stack/wallet-stack {' '.join(args)}", proc.returncode, round(time.monotonic() - started, 2),
                         (proc.stdout + proc.stderr)[-1500:])


# ------------------------------------------------------------------------------- processes

@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    started: float  # epoch seconds
    cmdline: str
    cwd: str


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def processes() -> list[Proc]:
    boot = _boot_time()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except (OSError, ValueError):
            continue
        out.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), boot + int(fields[19]) / _CLK_TCK, cmd, cwd))
    return out


def descendants(root: int, procs: list[Proc]) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c.pid)
    return out


def run_workers() -> list[Proc]:
    """Dagster run workers of this clone: processes a code server (`dagster api grpc`, working
    directory = this clone) spawned to execute a run (multiprocessing spawn); their own children
    (step processes, Spark's JVM) are not listed."""
    procs = processes()
    servers = {p.pid for p in procs if "dagster api grpc" in p.cmdline and p.cwd == str(ROOT)}
    return [p for p in procs if p.ppid in servers and "multiprocessing.spawn" in p.cmdline]


def pid_of(name: str) -> int | None:
    f = stack_dir() / "pids" / f"{name}.pid"
    try:
        pid = int(f.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def sigkill_group_or_pid(pid: int) -> str:
    """SIGKILL the process group the PID leads (the stack starts services as group leaders), else the PID."""
    if os.getpgid(pid) == pid:
        os.killpg(pid, signal.SIGKILL)
        return f"kill -KILL -- -{pid}"
    os.kill(pid, signal.SIGKILL)
    return f"kill -KILL {pid}"


def sigkill_tree(pid: int) -> str:
    procs = processes()
    tree = [pid] + [p.pid for p in descendants(pid, procs)]
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return f"kill -KILL {' '.join(map(str, tree))} (run worker and its step processes / Spark JVM)"


def postgres_immediate_stop() -> str:
    pg_bin = pg_bin_folder()
    data = stack_dir() / "postgres" / "data"
    cmd = f"{pg_bin}/pg_ctl -D {data} stop -m immediate"
    argv = ["su", "postgres", "-s", "/bin/bash", "-c", cmd] if os.geteuid() == 0 else ["bash", "-c", cmd]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stdout}{proc.stderr}")
    return cmd


# ---------------------------------------------------------------------------- health probes

def _http_ok(url: str, timeout: float = 5) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def postgres_up() -> bool:
    import psycopg

    from wallet_lake.serving import pg_connect

    try:
        with psycopg.connect(**pg_connect.connect_kwargs("owner", connect_timeout=3)) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def broker_up() -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient(kafka_conf()).list_topics(timeout=5)
        return env("WL_KAFKA_TOPIC") in md.topics
    except Exception:  # noqa: BLE001 - any client error means "not up" for a probe
        return False


def connect_up() -> bool:
    """The worker answers and the sink connector and all its tasks run."""
    try:
        r = httpx.get(f"{env('WL_CONNECT_URL')}/connectors/{env('WL_CONNECTOR_NAME')}/status", auth=connect_auth(), timeout=5)
        if r.status_code != 200:
            return False
        s = r.json()
        return s["connector"]["state"] == "RUNNING" and bool(s["tasks"]) and all(t["state"] == "RUNNING" for t in s["tasks"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def connect_failed_tasks() -> list[int]:
    try:
        s = httpx.get(f"{env('WL_CONNECT_URL')}/connectors/{env('WL_CONNECTOR_NAME')}/status", auth=connect_auth(), timeout=5).json()
        return [t["id"] for t in s.get("tasks", []) if t["state"] == "FAILED"]
    except (httpx.HTTPError, ValueError):
        return []


def webserver_up() -> bool:
    return _http_ok(f"http://127.0.0.1:{env('WL_DAGSTER_PORT')}/server_info")


def api_up() -> bool:
    return _http_ok(f"http://127.0.0.1:{env('WL_API_PORT')}/readyz")


def daemon_up(gql: "Dagster") -> bool:
    if pid_of("dagster-daemon") is None:
        return False
    try:
        return gql.daemons_healthy()
    except (httpx.HTTPError, RuntimeError):
        return False


def health(gql: "Dagster") -> dict[str, bool]:
    return {
        "postgres": postgres_up(), "broker": broker_up(), "connect": connect_up(),
        "webserver": webserver_up(), "daemon": daemon_up(gql), "api": api_up(),
        "curation_worker": curation_worker_up(),
    }


def curation_worker_up() -> bool:
    """Its process alive and its socket there. Not a ping: the worker answers one caller at a
    time, so a ping waits out a curation in progress (`stack/wallet-stack up` pings it before
    it returns)."""
    return pid_of("curation-worker") is not None and Path(env("WL_SPARK_WORKER_SOCKET")).exists()


# ------------------------------------------------------------------------ Dagster (GraphQL)

RUN_FIELDS = "runId status jobName creationTime startTime endTime updateTime tags { key value }"
PIPELINE_ASSETS = [list(p) for p in PIPELINE]
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


class Dagster:
    """The webserver's GraphQL API: what the UI calls."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or f"http://127.0.0.1:{env('WL_DAGSTER_PORT')}/graphql"
        self.location = "wallet_lake"
        self.repository = "__repository__"

    def q(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        r = httpx.post(self.url, json={"query": query, "variables": variables or {}}, timeout=timeout)
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def runs(self, created_after: float | None = None, statuses: list[str] | None = None, limit: int = 1000) -> list[dict]:
        flt: dict = {}
        if created_after is not None:
            flt["createdAfter"] = created_after
        if statuses:
            flt["statuses"] = statuses
        data = self.q(f"query($f: RunsFilter, $n: Int) {{ runsOrError(filter: $f, limit: $n) {{ __typename "
                      f"... on Runs {{ results {{ {RUN_FIELDS} }} }} ... on PythonError {{ message }} }} }}",
                      {"f": flt, "n": limit})["runsOrError"]
        if data["__typename"] != "Runs":
            raise RuntimeError(f"runsOrError: {data}")
        runs = data["results"]
        for r in runs:
            r["tags"] = {t["key"]: t["value"] for t in r["tags"]}
        return runs

    def launch_backfill(self, partition_keys: list[str], title: str) -> str:
        """An asset backfill of every pipeline asset over the partitions, as the UI's
        Materialize dialog on the asset graph launches it."""
        params = {
            "partitionNames": partition_keys,
            "assetSelection": [{"path": p} for p in PIPELINE_ASSETS],
            "fromFailure": False,
            "title": title,
        }
        data = self.q("mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
                      "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } "
                      "... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }", {"p": params})
        res = data["launchPartitionBackfill"]
        if res["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"launchPartitionBackfill: {res}")
        return res["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        data = self.q("query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename "
                      "... on PartitionBackfill { status } ... on PythonError { message } } }", {"id": backfill_id})
        return data["partitionBackfillOrError"].get("status", str(data["partitionBackfillOrError"]))

    def terminate(self, run_id: str) -> str:
        data = self.q("mutation($id: String!) { terminateRun(runId: $id, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) "
                      "{ __typename ... on TerminateRunFailure { message } ... on PythonError { message } } }", {"id": run_id})
        return data["terminateRun"]["__typename"]

    def reexecute(self, run_id: str) -> str:
        data = self.q("mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) { __typename "
                      "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
                      {"p": {"parentRunId": run_id, "strategy": "ALL_STEPS"}})
        res = data["launchRunReexecution"]
        if res["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRunReexecution({run_id}): {res}")
        return res["run"]["runId"]

    def run_failure(self, run_id: str) -> str:
        """Why a run failed, in one line: the failed steps' root errors, or the run's failure message."""
        data = self.q("query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { eventConnection(limit: 10000) { events { "
                      "__typename ... on ExecutionStepFailureEvent { stepKey error { message cause { message cause { message } } } } "
                      "... on RunFailureEvent { message } } } } } }", {"id": run_id})
        run = data["runOrError"]
        if run["__typename"] != "Run":
            return str(run)
        reasons = []
        for e in run["eventConnection"]["events"]:
            if e["__typename"] == "ExecutionStepFailureEvent":
                err = e["error"]
                while err.get("cause"):
                    err = err["cause"]
                reasons.append(f"{e['stepKey']}: {(err.get('message') or '').strip().splitlines()[0][:240]}")
            elif e["__typename"] == "RunFailureEvent" and not reasons:
                reasons.append((e.get("message") or "")[:240])
        return "; ".join(reasons) or "no failure event"

    def failed_ticks(self, after: float) -> dict[str, list[dict]]:
        """FAILURE ticks of every sensor since `after`, from the instance's tick records."""
        data = self.q("query($r: RepositorySelector!, $t: Float) { repositoryOrError(repositorySelector: $r) { __typename "
                      "... on Repository { sensors { name sensorState { ticks(afterTimestamp: $t, statuses: [FAILURE], limit: 10000) "
                      "{ tickId timestamp error { message } } } } } } }",
                      {"r": {"repositoryLocationName": self.location, "repositoryName": self.repository}, "t": after})
        repo = data["repositoryOrError"]
        if repo["__typename"] != "Repository":
            raise RuntimeError(f"repositoryOrError: {repo}")
        return {s["name"]: s["sensorState"]["ticks"] for s in repo["sensors"]}

    def daemons_healthy(self) -> bool:
        data = self.q("{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }")
        return all(d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"] if d["required"])

    def materializations(self, path: list[str], partition_keys: list[str]) -> dict[str, float]:
        """Newest materialization time (epoch s) per partition of an asset."""
        data = self.q("query($k: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $k) { __typename "
                      "... on Asset { assetMaterializations(partitions: $p, limit: 10000) { partition timestamp } } } }",
                      {"k": {"path": path}, "p": partition_keys})
        asset = data["assetOrError"]
        out: dict[str, float] = {}
        if asset["__typename"] != "Asset":
            return out
        for m in asset["assetMaterializations"]:
            out[m["partition"]] = max(out.get(m["partition"], 0.0), float(m["timestamp"]) / 1000)
        return out


def run_partitions(run: dict) -> list[str]:
    """The landing hours (partition keys) a run covers: one, or a backfill's range."""
    tags = run["tags"]
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if not start or not end:
        return []
    s = datetime.strptime(start, PARTITION_FORMAT)
    e = datetime.strptime(end, PARTITION_FORMAT)
    out = []
    while s <= e:
        out.append(s.strftime(PARTITION_FORMAT))
        s += timedelta(hours=1)
    return out


def pipeline_run(run: dict) -> bool:
    """Runs of the hourly pipeline (sensor, schedule, backfill, re-execution), not check-only runs."""
    return bool(run_partitions(run))


# ---------------------------------------------------------------------------- reports API

class Api:
    def __init__(self, key: str) -> None:
        self.base = f"http://127.0.0.1:{env('WL_API_PORT')}"
        self.client = httpx.Client(base_url=self.base, headers={"X-API-Key": key}, timeout=30)

    def get(self, path: str, **params) -> httpx.Response:
        """GET, waiting out the API's rate limit the way a well-behaved client does (429 with
        Retry-After); the check asks many reports in a burst."""
        for _ in range(30):
            resp = self.client.get(path, params={k: v for k, v in params.items() if v is not None})
            if resp.status_code != 429:
                return resp
            time.sleep(min(float(resp.headers.get("Retry-After", "1")), 5.0))
        return resp

    def close(self) -> None:
        self.client.close()


def create_api_key(label: str) -> tuple[str, str]:
    """(key_id, key) of an all-merchant key, made with the API's own tool (python -m api.keys)."""
    import sys

    proc = subprocess.run([sys.executable, "-m", "api.keys", "create", "--all", "--label", label], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    fields = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    return fields["key_id"].strip(), fields["key"].strip()


def revoke_api_key(key_id: str) -> None:
    import sys

    subprocess.run([sys.executable, "-m", "api.keys", "revoke", key_id], cwd=ROOT, capture_output=True, text=True)
