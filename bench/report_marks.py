"""What the dt-marking triggers of migration 0005 cost the Postgres sink.

The project's sink connector config (serving/deploy.py) loads N records (default 300,000) from a throwaway topic
into two throwaway copies of curated_payments, alternately: one with the no-regression trigger
only (the table before 0005), one that also has the statement-level marking triggers, copied from
the live curated_payments (pg_get_triggerdef / pg_get_functiondef) and pointed at a throwaway
marks table. Two paths, each timed from connector creation to the last row visible:

  insert: into the emptied table (the sink's INSERT ... ON CONFLICT, no conflicts);
  update: the same payment_ids again, one hour later and REFUNDED, onto a table holding the
          first state (every row goes through ON CONFLICT DO UPDATE and the update triggers).

The marks table also shows how many statements the sink sent: one mark per statement and dt.

--sink emulated sends what the sink sends through psycopg instead (one connection): multi-row
INSERT ... ON CONFLICT DO UPDATE statements of 128 rows (pgjdbc's reWriteBatchedInserts), one
commit per 5,000 rows (the connector's batch.size). Without Kafka and Connect in the way it
isolates the triggers' cost in Postgres, and is steadier on a busy machine.
Everything runs on objects named wl-bench-<run> / wl_bench_<run>, dropped at the end. By hand,
on a healthy stack (never in the test suite):

    .venv/bin/python bench/report_marks.py                   # writes bench/results/report_marks_real.json
    .venv/bin/python bench/report_marks.py --sink emulated   # writes bench/results/report_marks_emulated.json
    .venv/bin/python bench/report_marks.py --records 100000 --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import kafka_pg  # noqa: E402 - bench/ is on sys.path when run as a script
from stack_env import load_stack_env  # noqa: E402

MARK_TRIGGERS = ("report_mark_inserted_dts", "report_mark_updated_dts")


def add_marking_triggers(conn, table: str, marks: str) -> None:
    """The live marking triggers of curated_payments, on `table`, writing to `marks`."""
    conn.execute(f"CREATE TABLE {marks} (id bigserial PRIMARY KEY, dt date NOT NULL, marked_at timestamptz NOT NULL DEFAULT now())")
    conn.execute(f"CREATE INDEX ON {marks} (dt, marked_at)")
    for trigger in MARK_TRIGGERS:
        fn_oid, trigger_def = conn.execute(
            "SELECT tgfoid, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'public.curated_payments'::regclass AND tgname = %s",
            [trigger],
        ).fetchone()
        fn_def = conn.execute("SELECT pg_get_functiondef(%s)", [fn_oid]).fetchone()[0]
        fn = f"{table}_{trigger}"
        fn_def = re.sub(r"FUNCTION public\.\w+\(\)", f"FUNCTION public.{fn}()", fn_def, count=1)
        conn.execute(fn_def.replace("report_aggregate_dirty_dts", marks))
        trigger_def = trigger_def.replace("ON public.curated_payments", f"ON public.{table}")
        trigger_def = re.sub(r"EXECUTE FUNCTION \w+\(\)", f"EXECUTE FUNCTION {fn}()", trigger_def)
        conn.execute(trigger_def.replace(f"TRIGGER {trigger} ", f"TRIGGER {fn} ", 1))


def updated_state(table):
    """The same payments one hour later, REFUNDED (a newer state: every upsert updates)."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.compute as pc

    created = pc.add(table["created_at"], pa.scalar(dt.timedelta(hours=1), pa.duration("us")))
    out = table.set_column(table.schema.get_field_index("created_at"), "created_at", created)
    day = pc.cast(created, pa.date32())
    out = out.set_column(out.schema.get_field_index("dt"), "dt", day)
    out = out.set_column(out.schema.get_field_index("hour"), "hour", pc.cast(pc.hour(created), pa.int32()))
    for name, value in (("status", "REFUNDED"), ("is_approved", False), ("is_refunded", True)):
        i = out.schema.get_field_index(name)
        out = out.set_column(i, name, pa.array([value] * out.num_rows, out.schema.field(name).type))
    return out.cast(table.schema)


def sink_round(ctx, client, name: str, config: dict, target: str, done_sql: str, n: int, timeout: float) -> float:
    """Seconds from the connector's creation until `done_sql` (a count) reaches n."""
    pg = ctx["res"]["postgres"]
    ctx["cleanup"].append(lambda: client.delete(name))
    ctx["groups"].append(f"connect-{name}")
    started = time.monotonic()
    client.deploy(name, config)
    with pg.connect() as conn:
        conn.autocommit = True
        while conn.execute(done_sql).fetchone()[0] < n:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{name}: not done in {timeout}s; status {client.status_or_none(name)}")
            status = client.status_or_none(name) or {"tasks": []}
            failed = [t for t in status["tasks"] if t["state"] == "FAILED"]
            if failed:
                raise RuntimeError(f"{name}: task failed: {failed[0].get('trace', '')[:2000]}")
            time.sleep(0.2)
    seconds = time.monotonic() - started
    client.delete(name)
    return seconds


# What pgjdbc sends for the sink's batches with reWriteBatchedInserts=true: batches of batch.size
# rows, each rewritten into multi-row statements of at most 128 rows, committed per batch.
JDBC_REWRITE_ROWS = 128
SINK_BATCH_ROWS = 5000


def emulated_round(pg, target: str, table, columns) -> float:
    """Seconds to upsert `table` into `target` as the sink's JDBC driver sends it (psycopg)."""
    from psycopg import sql

    names = list(columns)
    rows = [tuple(r[c] for c in names) for r in table.select(names).to_pylist()]

    def statement(k: int):
        one = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() for _ in names))
        return sql.SQL("INSERT INTO {} ({}) VALUES {} ON CONFLICT (payment_id) DO UPDATE SET {}").format(
            sql.Identifier(target), sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(one for _ in range(k)),
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in names if c != "payment_id"),
        )

    statements: dict[int, object] = {}
    with pg.connect() as conn:
        conn.prepare_threshold = 0  # the driver prepares its statements too
        started = time.monotonic()
        for b in range(0, len(rows), SINK_BATCH_ROWS):
            batch = rows[b : b + SINK_BATCH_ROWS]
            with conn.transaction():
                for i in range(0, len(batch), JDBC_REWRITE_ROWS):
                    chunk = batch[i : i + JDBC_REWRITE_ROWS]
                    stmt = statements.setdefault(len(chunk), statement(len(chunk)))
                    conn.execute(stmt, [v for r in chunk for v in r])
        return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each (table, path), alternating")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--sink", choices=("real", "emulated"), default="real")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results/report_marks_<sink>.json alone")
    args = parser.parse_args(argv)
    load_stack_env()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from confluent_kafka.admin import AdminClient

    from wallet_lake.contracts.schema import CURATED_COLUMNS
    from wallet_lake.publish.producer import producer_config, publish
    from wallet_lake.publish.records import SCHEMA_HEADERS, curated_records
    from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
    from wallet_lake.resources import resources_from_os_env, with_changes
    from wallet_lake.serving.deploy import sink_connector_config
    from wallet_lake.serving.pg_connect import login

    res = resources_from_os_env()
    # Postgres as the schema's owner: the benchmark creates, loads and drops its own tables.
    res["postgres"] = with_changes(res["postgres"], **dict(zip(("user", "password"), login("owner"))))
    pg, n = res["postgres"], args.records
    admin = AdminClient(res["kafka"].client_config())
    run = uuid.uuid4().hex[:8]
    ctx: dict = {"res": res, "run": run, "topics": [], "groups": [], "cleanup": []}
    partitions = curated_topic_spec(res["kafka"].topic).partitions

    def topic(suffix: str) -> str:
        spec = curated_topic_spec(f"wl-bench-{run}-{suffix}")
        ensure_topic(admin, type(spec)(name=spec.name, partitions=partitions, replication_factor=spec.replication_factor,
                                       config={**spec.config, "cleanup.policy": "delete"}))
        ctx["topics"] += [spec.name, f"{spec.name}.dlq"]
        return spec.name

    plain, marked, marks = f"wl_bench_{run}_plain", f"wl_bench_{run}_marked", f"wl_bench_{run}_marks"
    out: dict = {
        "benchmark": "report_marks", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_start": round(os.getloadavg()[0], 2)},
        "records": n, "sink": args.sink, "rounds": [],
    }
    try:
        first = kafka_pg.synthetic_curated(n, f"bench-{run}-")
        second = updated_state(first)
        csv_first = Path(f"/tmp/wl-bench-{run}-first.csv")
        ctx["cleanup"].append(lambda: csv_first.unlink(missing_ok=True))
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("rows", first)
        con.execute(f"COPY (SELECT {', '.join(CURATED_COLUMNS)} FROM rows) TO '{csv_first}' (FORMAT csv, HEADER false)")
        with pg.connect() as conn:
            for t in (plain, marked):
                kafka_pg.create_table_like_curated(conn, t)
                ctx["cleanup"].append(lambda t=t: kafka_pg._drop_table(pg, t))
            add_marking_triggers(conn, marked, marks)
            ctx["cleanup"].append(lambda: kafka_pg._drop_table(pg, marks))
            out["dts"] = {"first": len(set(first["dt"].to_pylist())), "second": len(set(second["dt"].to_pylist()))}
        t_first = t_second = client = None
        if args.sink == "real":
            conf = producer_config(res["kafka"].client_config())
            t_first, t_second = topic("first"), topic("second")
            for rows, t in ((first, t_first), (second, t_second)):
                assert publish(curated_records(rows), t, conf, headers=SCHEMA_HEADERS).messages == n
            client = res["connect"].client()
        k = 0
        for rnd in range(args.rounds):
            for target in ((plain, marked) if rnd % 2 == 0 else (marked, plain)):
                for path, t, done in (
                    ("insert", t_first, f"SELECT count(*) FROM {target}"),
                    ("update", t_second, f"SELECT count(*) FROM {target} WHERE status = 'REFUNDED'"),
                ):
                    with pg.connect() as conn:
                        conn.execute(f"TRUNCATE {target}")
                        if target == marked:
                            conn.execute(f"TRUNCATE {marks}")
                    if path == "update":  # the first state, loaded untimed
                        kafka_pg.copy_upsert(pg, target, csv_first, list(CURATED_COLUMNS))
                        with pg.connect() as conn:
                            conn.autocommit = True
                            conn.execute(f"VACUUM ANALYZE {target}")
                            if target == marked:
                                conn.execute(f"TRUNCATE {marks}")
                    k += 1
                    config_t = ({**sink_connector_config(res, table=target), "topics": t, "errors.deadletterqueue.topic.name": f"{t}.dlq"}
                                if t else {})
                    load = os.getloadavg()[0]
                    if args.sink == "real":
                        seconds = sink_round(ctx, client, f"wl-bench-{run}-{k}", config_t, target, done, n, args.timeout)
                    else:
                        seconds = emulated_round(pg, target, first if path == "insert" else second, CURATED_COLUMNS)
                        with pg.connect() as conn:
                            assert conn.execute(done).fetchone()[0] == n, f"{target} {path}: not every row loaded"
                    with pg.connect() as conn:
                        n_marks = conn.execute(f"SELECT count(*) FROM {marks}").fetchone()[0] if target == marked else None
                    entry = {"table": "with_marks" if target == marked else "without_marks", "path": path,
                             "seconds": round(seconds, 2), "rows_per_s": round(n / seconds), "marks": n_marks,
                             "load_average_1m_before": round(load, 2)}
                    out["rounds"].append(entry)
                    print(json.dumps(entry), flush=True)
    finally:
        for fn in reversed(ctx["cleanup"]):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"cleanup: {exc}", file=sys.stderr)
        for fut in (admin.delete_topics(ctx["topics"], operation_timeout=30) if ctx["topics"] else {}).values():
            try:
                fut.result()
            except Exception as exc:
                if "UNKNOWN_TOPIC" not in str(exc):
                    print(f"cleanup: {exc}", file=sys.stderr)
        if ctx["groups"]:
            for fut in admin.delete_consumer_groups(ctx["groups"], request_timeout=30).values():
                try:
                    fut.result()
                except Exception as exc:
                    print(f"cleanup: {exc}", file=sys.stderr)
    best = {}
    for e in out["rounds"]:
        key = f"{e['path']}_{e['table']}_best_seconds"
        best[key] = min(best.get(key, e["seconds"]), e["seconds"])
    out["best"] = best
    for path in ("insert", "update"):
        a, b = best.get(f"{path}_without_marks_best_seconds"), best.get(f"{path}_with_marks_best_seconds")
        if a and b:
            out[f"{path}_overhead"] = round(b / a - 1, 3)
    print(json.dumps(out, indent=1))
    if not args.no_write:
        result = ROOT / "bench" / "results" / f"report_marks_{args.sink}.json"
        result.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
