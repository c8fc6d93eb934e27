"""Reports API under load, over 10 million curated rows (run by hand, never in the tests).

    eval "$(stack/wallet-stack env)"; .venv/bin/python bench/api_load.py [--rows 10000000] [--duration 30]

1. Creates the database wallet_lake_bench on the stack's Postgres (same server and role, so the
   shared wallet_lake database stays small) and applies the project's migrations to it.
2. Loads generated curated rows (200 merchants, 90 days, the generator's proportions of statuses,
   currencies, methods, decline reasons and latencies) with COPY, unless that many are there.
3. Builds the report aggregates of every dt (refresh_report_aggregates, as the pipeline does per
   landing hour), then times single-dt refreshes.
4. Times the bare SQL of each report (psycopg, one connection, random parameters).
5. Starts the API (`python -m api.serve`, 2 workers; uvicorn --workers before session 25) on that database and drives it with wrk (installed with
   apt-get when missing): 32 connections, a random mix of the four reports (random_path below; bench/api_mix.lua replays it),
   random merchants, ranges of 1 to 31 days, an all-merchant API key; three runs, each after
   the machine's CPUs are quiet, with the CPU each party used (the machine may be shared).
6. Times the bare SQL again, writes bench/results/api.json (headline: the run least disturbed by
   other work) and prints the figures.

Targets (issue 5): p99 < 50 ms and >= 500 requests/s on this 2-core machine."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack_env import load_stack_env  # noqa: E402 - bench/ is on sys.path when run as a script
from wallet_lake.serving.pg_roles import REPORT_TABLES  # noqa: E402

BENCH_DB = "wallet_lake_bench"
START = dt.date(2026, 6, 1)
MERCHANTS = 200
DAYS = 90
METHODS = ("card", "wallet", "bank_transfer", "bnpl")
REPORTS = ("daily-recon", "refund-rate", "latency", "declines")
# Request paths drawn for wrk (bench/api_mix.lua replays them): enough that each is rarely repeated.
MIX_SAMPLE = 100_000


def random_path(rng: random.Random, all_share: float) -> str:
    """One request of the benchmarks' mix (the one definition: wrk replays a sample of it through
    bench/api_mix.lua, vegeta through bench/api_open_loop.py's targets): a report drawn
    uniformly; merchant m_0001..m_<MERCHANTS> uniformly, or with all_share none (every merchant);
    a range of 1-31 days inside the loaded ones; latency for one method half the time."""
    def day(offset: int) -> str:
        return (START + dt.timedelta(days=offset)).isoformat()

    def range_params() -> str:
        length = rng.randint(1, 31)
        first = rng.randint(0, DAYS - length)
        return f"from={day(first)}&to={day(first + length - 1)}"

    def merchant_param() -> str:
        return "" if rng.random() < all_share else f"&merchant=m_{rng.randint(1, MERCHANTS):04d}"

    report = rng.choice(REPORTS)
    if report == "daily-recon":
        query = f"date={day(rng.randint(0, DAYS - 1))}" + merchant_param()
    elif report == "latency":
        query = range_params()
        if rng.random() < 0.5:
            query += f"&payment_method={rng.choice(METHODS)}"
    else:
        query = range_params() + merchant_param()
    return f"/reports/{report}?{query}"


def write_mix(path: Path, count: int, seed: int, all_share: float) -> None:
    """`count` request paths of the mix, one a line: the file bench/api_mix.lua replays."""
    rng = random.Random(seed)
    path.write_text("".join(random_path(rng, all_share) + "\n" for _ in range(count)))


def pg_connect(dbname: str, **kwargs):
    """The benchmark database as the schema's owner (it loads the rows), over verified TLS."""
    from wallet_lake.serving import pg_connect as pg

    return pg.connect("owner", dbname=dbname, **kwargs)


def ensure_database() -> None:
    """The benchmark database, made like the serving one (serving/pg_provision.py): owned by the
    schema's owner, entered only by it and the API's role, which the benchmark's API logs in as."""
    import psycopg

    from wallet_lake.serving.pg_provision import admin_connect_kwargs, ensure_database as ensure_db, role_names

    names = role_names(os.environ)
    with psycopg.connect(**admin_connect_kwargs(os.environ)) as admin:
        ensure_db(admin, BENCH_DB, names["owner"], [names["owner"], names["api"]])


def migrate_bench() -> list[str]:
    from wallet_lake.serving import pg_connect as pg
    from wallet_lake.serving.migrate import migrate
    from wallet_lake.serving.pg_provision import apply_grants

    owner = pg.connect_kwargs("owner")
    applied = migrate(owner["host"], owner["port"], owner["user"], owner["password"], BENCH_DB, pg.tls_kwargs())
    with pg_connect(BENCH_DB, autocommit=True) as conn:
        apply_grants(conn)
    return applied


# --- data --------------------------------------------------------------------------------------

def generated_rows_sql(rows: int) -> str:
    """DuckDB SELECT of `rows` curated rows (no numpy in the project: DuckDB generates them).

    Proportions follow the generator: statuses, currencies by merchant region, payment methods
    (0.5% missing), decline reasons (10% missing), latencies lognormal around 900 ms clipped to
    150..9000 ms for captured payments (3% missing). Merchants are skewed: m_0001 is busiest."""
    start_ms = int(dt.datetime(START.year, START.month, START.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    reasons = ["insufficient_funds", "do_not_honor", "suspected_fraud", "limit_exceeded", "issuer_unavailable",
               "expired_card", "invalid_cvv", "incorrect_pin"]
    reason_list = "[" + ", ".join(f"'{r}'" for r in reasons) + "]"
    return f"""
WITH base AS (
    SELECT i,
           least(CAST(floor({MERCHANTS} * pow(random(), 1.6)) AS INTEGER), {MERCHANTS - 1}) AS m,
           random() AS r_cur, random() AS r_status, random() AS r_method, random() AS r_method_null,
           random() AS r_reason, random() AS r_reason_null, random() AS r_latency_null,
           {start_ms} + CAST(floor(random() * {DAYS * 86_400_000}) AS BIGINT) AS created_ms,
           1 + CAST(floor(random() * 40) AS BIGINT) AS settle_ms,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z1,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z2,
           CAST(floor(random() * 500000) AS BIGINT) AS user_n,
           random() AS r_risk
    FROM range({rows}) AS t(i)
), shaped AS (
    SELECT *,
           CASE m % 4
               WHEN 0 THEN CASE WHEN r_cur < 0.85 THEN 'EUR' WHEN r_cur < 0.90 THEN 'GBP' ELSE 'USD' END
               WHEN 1 THEN CASE WHEN r_cur < 0.85 THEN 'GBP' WHEN r_cur < 0.95 THEN 'EUR' ELSE 'USD' END
               WHEN 2 THEN CASE WHEN r_cur < 0.95 THEN 'USD' WHEN r_cur < 0.98 THEN 'EUR' ELSE 'GBP' END
               ELSE CASE WHEN r_cur < 0.90 THEN 'JPY' ELSE 'USD' END
           END AS currency,
           CASE WHEN r_status < 0.83 THEN 'APPROVED' WHEN r_status < 0.92 THEN 'DECLINED'
                WHEN r_status < 0.94 THEN 'PENDING' WHEN r_status < 0.96 THEN 'FAILED'
                WHEN r_status < 0.98 THEN 'CANCELLED' WHEN r_status < 0.995 THEN 'REFUNDED'
                ELSE 'CHARGEBACK' END AS status,
           CAST(least(greatest(exp(ln(900) + 0.8 * z1), 150), 9000) AS BIGINT) AS latency
    FROM base
)
SELECT 'p' || CAST(i AS VARCHAR) AS payment_id,
       'm_' || lpad(CAST(m + 1 AS VARCHAR), 4, '0') AS merchant_id,
       'u' || CAST(user_n AS VARCHAR) AS user_id,
       CAST(greatest(exp(ln(2500) + z2), 1) AS BIGINT) AS amount_cents,
       currency,
       status,
       CASE WHEN r_method_null < 0.005 THEN NULL
            WHEN r_method < 0.60 THEN 'card' WHEN r_method < 0.82 THEN 'wallet'
            WHEN r_method < 0.92 THEN 'bank_transfer' ELSE 'bnpl' END AS payment_method,
       round(r_risk * r_risk * 0.6, 4) AS risk_score,
       CASE WHEN has_latency THEN make_timestamptz((created_ms - settle_ms - latency) * 1000) END AS authorized_at,
       CASE WHEN has_latency THEN make_timestamptz((created_ms - settle_ms) * 1000) END AS completed_at,
       make_timestamptz(created_ms * 1000) AS created_at,
       'bench' AS source_system,
       CASE WHEN status = 'DECLINED' AND r_reason_null >= 0.10
            THEN {reason_list}[1 + CAST(floor(r_reason * {len(reasons)}) AS INTEGER)] END AS decline_reason,
       CAST(make_timestamptz(created_ms * 1000) AS DATE) AS dt,
       CAST((created_ms // 3600000) % 24 AS INTEGER) AS hour,
       CASE WHEN has_latency THEN latency END AS authorized_to_complete_ms,
       status = 'APPROVED' AS is_approved,
       status = 'REFUNDED' AS is_refunded,
       make_timestamptz((created_ms + 3600000) * 1000) AS processed_at,
       1 AS curated_version
FROM (SELECT *, status IN ('APPROVED', 'REFUNDED', 'CHARGEBACK') AND r_latency_null >= 0.03 AS has_latency FROM shaped)
"""


def load_rows(rows: int, seed: int, batch: int = 500_000) -> float:
    import duckdb
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from wallet_lake.contracts.schema import CURATED_COLUMNS, arrow_schema

    schema = arrow_schema()
    started = time.perf_counter()
    gen = duckdb.connect()
    gen.execute("SET TimeZone = 'UTC'")
    gen.execute("SELECT setseed(?)", [(seed % 1000) / 1000]).fetchall()
    reader = gen.sql(generated_rows_sql(rows)).to_arrow_reader(batch)
    copied = 0
    with pg_connect(BENCH_DB) as conn:
        # Our own database: emptying it is safe. TRUNCATE fires no row or delete trigger.
        conn.execute(
            "TRUNCATE curated_payments, report_status_daily, report_status_daily_all, report_latency_daily, report_aggregate_dirty_dts"
        )
        with conn.cursor() as cur, cur.copy(f"COPY curated_payments ({', '.join(CURATED_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy:
            for b in reader:
                table = pa.Table.from_batches([b]).select(list(CURATED_COLUMNS)).cast(schema)
                buf = io.BytesIO()
                pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
                copied += table.num_rows
                if copied % 2_000_000 < batch:
                    print(f"  copied {copied:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        conn.commit()
    seconds = time.perf_counter() - started
    with pg_connect(BENCH_DB, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE curated_payments")
        # Remembered in the bench database, so later runs that reuse the rows still report it.
        conn.execute("CREATE TABLE IF NOT EXISTS bench_load (rows bigint, seconds numeric, seed bigint, loaded_at timestamptz)")
        conn.execute("TRUNCATE bench_load")
        conn.execute("INSERT INTO bench_load VALUES (%s, %s, %s, now())", [rows, round(seconds, 1), seed])
    return seconds


def last_load() -> dict | None:
    with pg_connect(BENCH_DB, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_load')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT rows, seconds, seed, loaded_at FROM bench_load").fetchone()
    if row is None:
        return None
    return {"rows": row[0], "seconds": float(row[1]), "rows_per_s": round(row[0] / float(row[1])), "seed": row[2],
            "loaded_at": row[3].isoformat(timespec="seconds"), "method": "COPY FROM STDIN (csv), rows generated by DuckDB"}


def refresh_all(sample_dts: int = 6) -> dict:
    """Build the aggregates of every dt in one call, then time single-dt refreshes (what the
    pipeline does per landing hour): early, middle and late days of a month."""
    from wallet_lake.serving.aggregates import refresh_report_aggregates

    with pg_connect(BENCH_DB, autocommit=True) as conn:
        days = [r[0] for r in conn.execute("SELECT DISTINCT dt FROM curated_payments ORDER BY 1").fetchall()]
        t = time.perf_counter()
        refresh_report_aggregates(conn, days)
        all_s = time.perf_counter() - t
        single = []
        for day in days[:: max(1, len(days) // sample_dts)][:sample_dts]:
            t = time.perf_counter()
            refresh_report_aggregates(conn, [day])
            single.append({"dt": day.isoformat(), "seconds": round(time.perf_counter() - t, 3)})
        visible = settle_aggregates(conn)
        sizes = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in REPORT_TABLES
        }
    return {"dts": len(days), "all_dts_in_one_call_s": round(all_s, 1), "single_dt_refresh_s": single, "aggregate_rows": sizes,
            "all_visible_pages": visible}


# The tables the API reads. Their pages must be all-visible, as autovacuum leaves the report tables
# in service after each refresh (migration 0011): otherwise each index-only scan also reads the
# heap (+50 % of a declines statement's Postgres CPU, docs/benchmarks.md, session 33).
API_READ_TABLES = (*REPORT_TABLES, "report_aggregate_versions")


def _visibility(conn) -> dict[str, list[int]]:
    rows = conn.execute(
        "SELECT relname, relpages, relallvisible FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s) ORDER BY relname",
        [list(API_READ_TABLES)],
    ).fetchall()
    found = {name: [pages, visible] for name, pages, visible in rows}
    if set(found) != set(API_READ_TABLES):
        raise RuntimeError(f"{BENCH_DB} lacks {sorted(set(API_READ_TABLES) - set(found))}: migrations not applied?")
    return found


def settle_aggregates(conn, attempts: int = 5) -> dict[str, list[int]]:
    """VACUUM the tables the API reads until every page is all-visible (a vacuum cannot mark rows
    that a snapshot open elsewhere may not see, such as autovacuum's ANALYZE right after a
    refresh; INDEX_CLEANUP ON, else pages keeping dead line pointers stay unmarked), then ANALYZE
    them. Returns {table: [pages, all-visible pages]}; says so when pages stay not all-visible."""
    visible: dict[str, list[int]] = {}
    for attempt in range(attempts):
        if attempt:
            time.sleep(2)
        conn.execute(f"VACUUM (INDEX_CLEANUP ON) {', '.join(API_READ_TABLES)}")
        visible = _visibility(conn)
        if all(pages == all_visible for pages, all_visible in visible.values()):
            break
    else:
        print(f"  WARNING: pages still not all-visible after {attempts} vacuums: {visible}", flush=True)
    conn.execute(f"ANALYZE {', '.join(API_READ_TABLES)}")
    return visible


def prepare_database(rows: int, seed: int, *, reload: bool = False, refresh: bool = True) -> dict | None:
    """Steps 1-3 (also bench/api_open_loop.py's): the database, its migrations, `rows` generated
    rows (loaded only when the count differs, or with reload), and every dt's aggregates built
    (with refresh=False only when rows were loaded or none are built). Returns refresh_all()'s
    timings, None when it did not run."""
    ensure_database()
    print(f"migrations applied to {BENCH_DB}: {migrate_bench() or 'none (up to date)'}", flush=True)
    with pg_connect(BENCH_DB) as conn:
        have = conn.execute("SELECT count(*) FROM curated_payments").fetchone()[0]
        built = conn.execute("SELECT EXISTS (SELECT FROM report_status_daily)").fetchone()[0]
    if have != rows or reload:
        print(f"loading {rows:,} rows into {BENCH_DB} (COPY)", flush=True)
        print(f"loaded in {load_rows(rows, seed):.1f} s", flush=True)
        built = False
    else:
        print(f"{BENCH_DB} already holds {have:,} rows", flush=True)
    if built and not refresh:
        with pg_connect(BENCH_DB, autocommit=True) as conn:
            visible = _visibility(conn)
            if any(pages != all_visible for pages, all_visible in visible.values()):
                print(f"  pages not all-visible {visible}: vacuuming", flush=True)
                visible = settle_aggregates(conn)
        print(f"report aggregates already built; pages [all, all-visible]: {visible}", flush=True)
        return None
    print("building the report aggregates of every dt, then timing single-dt refreshes", flush=True)
    timings = refresh_all()
    print(f"  {timings}", flush=True)
    return timings


# --- bare SQL -----------------------------------------------------------------------------------

def random_request(rng: random.Random, report: str, *, every_merchant: bool = False):
    """(statement, params) of one report as the wrk mix draws it, from the report's own query_for:
    what the API sends Postgres (for latency, the totals and terms; its percentiles come from
    histograms each API worker keeps, api/reports/kept_histograms.py)."""
    from api.reports import daily_recon, declines, latency, refund_rate

    length = rng.randint(1, 31)
    first = START + dt.timedelta(days=rng.randint(0, DAYS - length))
    last = first + dt.timedelta(days=length - 1)
    merchant = None if every_merchant else f"m_{rng.randint(1, MERCHANTS):04d}"
    if report == "daily-recon":
        return daily_recon.query_for(START + dt.timedelta(days=rng.randint(0, DAYS - 1)), merchant)
    if report == "latency":
        return latency.query_for(first, last, rng.choice(METHODS) if rng.random() < 0.5 else None, terms_only=True)
    module = refund_rate if report == "refund-rate" else declines
    return module.query_for(first, last, merchant)


def percentile(sorted_values: list[float], p: float) -> float:
    h = (len(sorted_values) - 1) * p
    lo = int(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def time_bare_sql(samples: int, seed: int) -> dict:
    rng = random.Random(seed)
    out = {}
    with pg_connect(BENCH_DB, autocommit=True) as conn:
        conn.execute("SET random_page_cost = 1.1")  # as the API's sessions (api/settings.py)
        for label in ("daily-recon", "refund-rate", "latency", "declines", "refund-rate/all-merchants", "declines/all-merchants"):
            report, _, scope = label.partition("/")
            times = []
            for _ in range(samples):
                query, params = random_request(rng, report, every_merchant=bool(scope))
                t = time.perf_counter()
                conn.execute(query.sql, query.bind(**params)).fetchall()
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            out[label] = {"p50_ms": round(percentile(times, 0.5), 3), "p99_ms": round(percentile(times, 0.99), 3),
                          "mean_ms": round(sum(times) / len(times), 3)}
    return out


# --- API under load -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def create_bench_key() -> tuple[str, str]:
    from api.keys import create_key

    with pg_connect(BENCH_DB, autocommit=True) as conn:
        conn.execute("DELETE FROM api_keys WHERE label = 'bench/api_load.py'")
        return create_key(conn, merchant_ids=None, label="bench/api_load.py")


API_APP = "api.main:app"  # what the benchmarks serve unless told to compare another app


def api_settings(metrics_dir: str, pool: int) -> dict[str, str]:
    """The API's settings in every benchmark of it: the bench database, `pool` connections per
    worker, metrics shared through `metrics_dir`."""
    return dict(WL_PG_DB=BENCH_DB, PROMETHEUS_MULTIPROC_DIR=metrics_dir,
                WL_PG_POOL_MIN_SIZE=str(pool), WL_PG_POOL_MAX_SIZE=str(pool), WL_API_KEY_CACHE_TTL_S="30",
                # The benchmark measures capacity from one client with one key: no rate limits.
                WL_API_RATE_LIMIT_CLIENT_PER_S="0", WL_API_RATE_LIMIT_KEY_PER_S="0")


# api/serve.py: a SO_REUSEPORT socket per worker; uvicorn --workers: one shared socket; granian
# (session 26, compared only): a Rust HTTP server running the same ASGI app.
SERVERS = ("api.serve", "uvicorn", "granian")


def server_command(server: str, app: str, port: int, workers: int, extra: list[str]) -> list[str]:
    """The command serving `app` under `server`; `extra` is passed to the server as is."""
    if server == "granian":
        import importlib.util

        if importlib.util.find_spec("granian") is None:  # compared once, not a dependency
            raise SystemExit("--server granian needs granian: .venv/bin/pip install granian==2.8.7 (session 26's comparison)")
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--loop", "uvloop", "--http", "1", "--no-ws", "--no-access-log",
                "--log-level", "warning", *extra, app]
    return [sys.executable, "-m", server, app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning", *extra]


def start_api(port: int, workers: int, pool: int, log_path: Path, metrics_dir: str, *,
              env_extra: dict[str, str] | None = None, uvicorn_args: list[str] | None = None,
              app: str = API_APP, server: str = "api.serve") -> subprocess.Popen:
    """The API's worker processes on the bench database, under `python -m api.serve` (or, with
    server="uvicorn", `uvicorn --workers`, as before session 25); env_extra, uvicorn_args and app
    (an ASGI app to compare with the API, such as bench/api_lean_app.py's) are the options a
    benchmark compares (bench/api_open_loop.py). Both take the same arguments."""
    env = dict(os.environ, **api_settings(metrics_dir, pool))
    env.update(env_extra or {})  # an option may override any of the above (the key cache's TTL, say)
    cmd = server_command(server, app, port, workers, uvicorn_args or [])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"the API did not become ready on port {port}; see {log_path}")


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, out)]


def _postgres_pids() -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()]


def wait_for_quiet(max_wait_s: int, threshold: float) -> float:
    """Wait (at most max_wait_s) until the machine's CPUs are busy less than `threshold` (a
    share, over 5 s) before measuring: it may be shared, and other work on two cores would be
    measured as API latency. Returns the last busy share seen."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, total0 = _machine_ticks()
        time.sleep(5)
        busy1, total1 = _machine_ticks()
        share = (busy1 - busy0) / max(total1 - total0, 1)
        if share < threshold or time.monotonic() >= deadline:
            return share
        print(f"  CPUs {share:.0%} busy (load average {os.getloadavg()[0]:.2f}): waiting for a quieter machine", flush=True)


def run_wrk(wrk: str, port: int, key: str, *, connections: int, threads: int, duration: int, mix: Path,
            api_pid: int | None = None) -> dict:
    """wrk's figures, plus where the CPU went during the run (jiffies of the API, of every
    postgres process, and of everything else on the machine)."""
    api = _children(api_pid) if api_pid else []
    pg = _postgres_pids()
    busy0, total0 = _machine_ticks()
    api0, pg0 = _cpu_ticks(api), _cpu_ticks(pg)
    load0 = os.getloadavg()[0]
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
           "-s", str(ROOT / "bench" / "api_mix.lua"), f"http://127.0.0.1:{port}",
           "--", key, str(mix)]
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, total1 = _machine_ticks()
    api1, pg1 = _cpu_ticks(api), _cpu_ticks(pg)
    result = json.loads(next(l for l in out.splitlines() if l.startswith("{")))
    cpus = os.cpu_count() or 1
    seconds = result["duration_us"] / 1e6
    hz = os.sysconf("SC_CLK_TCK")
    api_s, pg_s, busy_s = (api1 - api0) / hz, (pg1 - pg0) / hz, (busy1 - busy0) / hz
    wrk_s = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    result["cpu"] = {
        "load_average_before": round(load0, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "machine_busy_share": round((busy1 - busy0) / max(total1 - total0, 1), 3),
        "api_cpu_ms_per_request": round(api_s * 1000 / max(result["requests"], 1), 3),
        "postgres_cpu_ms_per_request": round(pg_s * 1000 / max(result["requests"], 1), 3),
        "wrk_cpu_share": round(wrk_s / (seconds * cpus), 3),
        # Whatever else ran on the machine meanwhile (other users' work).
        "other_cpu_share": round(max(busy_s - api_s - pg_s - wrk_s, 0) / (seconds * cpus), 3),
    }
    return result


def versions() -> dict:
    from importlib.metadata import version

    with pg_connect(BENCH_DB) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    return {"python": platform.python_version(), "postgres": pg, "wrk": wrk_version,
            **{p: version(p) for p in ("fastapi", "starlette", "uvicorn", "pydantic", "asyncpg", "prometheus-client")}}


def main() -> None:
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so the API's process group is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    parser = argparse.ArgumentParser(description="Reports API under load over generated curated rows.")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reload", action="store_true", help="load the rows again even when the count matches")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="the API's worker processes (python -m api.serve)")
    parser.add_argument("--all-merchant-share", type=float, default=0.1,
                        help="share of merchant reports asked for every merchant (merchant omitted)")
    parser.add_argument("--sql-samples", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="measured wrk runs (the least disturbed one is the headline)")
    parser.add_argument("--pool", type=int, default=4, help="Postgres connections per worker (about the cores: more only queue in Postgres)")
    parser.add_argument("--wait-quiet", type=int, default=600,
                        help="seconds to wait at most for the CPUs to be less busy than --quiet-busy before measuring")
    parser.add_argument("--quiet-busy", type=float, default=0.15, help="share of CPU time busy with other work")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()
    load_stack_env()
    refresh = prepare_database(args.rows, args.seed, reload=args.reload)

    print("timing the bare SQL of each report", flush=True)
    bare_sql = time_bare_sql(args.sql_samples, args.seed)
    for name, t in bare_sql.items():
        print(f"  {name:<28} p50 {t['p50_ms']:7.3f} ms  p99 {t['p99_ms']:7.3f} ms", flush=True)

    wrk = ensure_wrk()
    key_id, key = create_bench_key()
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="wallet-lake-bench-"))
    (log_dir / "metrics").mkdir()
    mix = log_dir / "api_mix.paths"
    write_mix(mix, MIX_SAMPLE, args.seed, args.all_merchant_share)
    api = start_api(port, args.workers, args.pool, log_dir / "api.log", str(log_dir / "metrics"))
    try:
        print(f"API up on :{port} ({args.workers} workers); warming up", flush=True)
        run_wrk(wrk, port, key, connections=args.connections, threads=args.threads, duration=5, mix=mix)
        runs = []
        for i in range(args.runs):
            busy = wait_for_quiet(args.wait_quiet, args.quiet_busy)
            print(f"run {i + 1}/{args.runs}: wrk {args.connections} connections, {args.threads} threads, "
                  f"{args.duration} s (CPUs {busy:.0%} busy before)", flush=True)
            r = run_wrk(wrk, port, key, connections=args.connections, threads=args.threads, duration=args.duration,
                        mix=mix, api_pid=api.pid)
            r["requests_per_s"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
            r["errors"] = sum(v for k, v in r.items() if k.startswith("errors_"))
            print(f"  {r['requests_per_s']} req/s, p50 {r['p50_us'] / 1000:.1f} ms, p99 {r['p99_us'] / 1000:.1f} ms; {r['cpu']}", flush=True)
            runs.append(r)
        after_sql = time_bare_sql(max(args.sql_samples // 3, 50), args.seed + 1)
    finally:
        os.killpg(api.pid, 15)
        api.wait(30)

    # The machine may be shared: the headline is the run least disturbed by other work (wrk's own
    # CPU included in "other"); every run is kept in the file.
    result = min(runs, key=lambda r: r["cpu"]["other_cpu_share"])
    requests_per_s, errors = result["requests_per_s"], result["errors"]
    report = {
        "benchmark": "reports API under load (bench/api_load.py)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": args.rows,
        "merchants": MERCHANTS,
        "days": DAYS,
        "load": last_load(),
        "aggregates_refresh": refresh,
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p90_ms": round(result["p90_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "max_ms": round(result["max_us"] / 1000, 2),
        "requests_per_s": requests_per_s,
        "requests": result["requests"],
        "errors": errors,
        "targets": {"p99_ms_below": 50, "requests_per_s_at_least": 500},
        "targets_met": result["p99_us"] / 1000 < 50 and requests_per_s >= 500 and errors == 0,
        "load_test": {"tool": "wrk", "connections": args.connections, "threads": args.threads, "duration_s": args.duration,
                 "mix": f"random_path: uniform over {', '.join(REPORTS)}; random merchant of {MERCHANTS} "
                        f"({args.all_merchant_share:.0%} every merchant); ranges 1-31 days; latency: one method half the time",
                 "api": f"python -m api.serve {API_APP} --workers {args.workers}, pool {args.pool} per worker"},
        "runs": [
            {k: r[k] for k in ("requests_per_s", "p50_us", "p90_us", "p99_us", "max_us", "requests", "errors", "cpu")}
            for r in runs
        ],
        "cpu_during_load": result["cpu"],
        "bare_sql_ms": bare_sql,
        "bare_sql_ms_after_load": after_sql,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("rows", "requests_per_s", "p50_ms", "p99_ms", "errors", "targets_met")}, indent=2))
    print(f"wrote {args.out}; API log in {log_dir}")


if __name__ == "__main__":
    main()
