"""Benchmark of the curated -> Kafka -> Postgres path against the reference each stage can reach.

  publish: records/s of the topic asset's publish path (curated Arrow table -> Connect JSON ->
           idempotent confluent-kafka producer -> every delivery report) vs Kafka's own
           org.apache.kafka.tools.ProducerPerformance with payloads of the same records, same
           producer settings, same broker, same run. Target: >= 0.5x.
  sink:    rows/s of the project's sink connector config (serving/deploy.py) for N records (default 1,000,000),
           from connector creation (its first message) to the last row visible in Postgres, vs
           COPY of the same rows into an unlogged staging table + one INSERT ... ON CONFLICT into
           the same table, same run. Target: >= 1/3.

Everything runs on throwaway objects named wl-bench-<run> (topics, connector, table), dropped at
the end; the shared payments.curated topic, connector and curated_payments table are untouched.
Run by hand on a healthy stack (never in the test suite):

    .venv/bin/python bench/kafka_pg.py                 # full run, writes bench/results/kafka_pg.json
    .venv/bin/python bench/kafka_pg.py --records 200000 --no-write   # a quick look
    # issue 14: one round by a fresh connector on a warm worker, plus single-round options (a worker
    # warmed by 200,000 rows still ran its next round 6-17 % faster; by 1,000,000 within 2.4 %)
    .venv/bin/python bench/kafka_pg.py --skip-publish --sink-repeats 1 --warmup-records 1000000 \
        --variant 'wal-lz4:role.wal_compression=lz4' --variant 'no-idx:table.drop_index=merchant_id_dt_idx'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack.java import java_version, kafka_java, service_java  # noqa: E402
from stack_env import load_stack_env  # noqa: E402 - bench/ is on sys.path when run as a script
RESULT_FILE = ROOT / "bench" / "results" / "kafka_pg.json"


def synthetic_curated(n: int, prefix: str):
    """n curated rows as an Arrow table in the contract's schema, shaped like the generator's
    (a few hundred merchants, mixed statuses, some nulls); payment_ids unique to this run."""
    import duckdb

    from wallet_lake.contracts.schema import arrow_schema

    sql = f"""
    WITH base AS (
      SELECT i, TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_milliseconds(i * 37 + (hash(i) % 997)::BIGINT) AS created
      FROM range({n}) t(i))
    SELECT
      '{prefix}' || lpad(i::VARCHAR, 9, '0') AS payment_id,
      'merchant-' || lpad((hash(i * 7) % 400)::VARCHAR, 4, '0') AS merchant_id,
      'user-' || (hash(i * 13) % 200000)::VARCHAR AS user_id,
      (hash(i * 17) % 500000)::BIGINT AS amount_cents,
      ['EUR', 'USD', 'GBP'][1 + (i % 3)::INTEGER] AS currency,
      ['APPROVED', 'APPROVED', 'APPROVED', 'DECLINED', 'PENDING', 'REFUNDED', 'FAILED'][1 + (hash(i * 19) % 7)::INTEGER] AS status,
      ['card', 'wallet', 'bank_transfer'][1 + (i % 3)::INTEGER] AS payment_method,
      (hash(i * 23) % 10000) / 10000.0 AS risk_score,
      created + INTERVAL 150 MILLISECOND AS authorized_at,
      CASE WHEN i % 5 = 0 THEN NULL ELSE created + INTERVAL 1200 MILLISECOND END AS completed_at,
      created AS created_at,
      'processor-eu' AS source_system,
      CASE WHEN i % 7 = 3 THEN 'insufficient_funds' ELSE NULL END AS decline_reason,
      CAST(created AT TIME ZONE 'UTC' AS DATE) AS dt,
      hour(created AT TIME ZONE 'UTC')::INTEGER AS hour,
      CASE WHEN i % 5 = 0 THEN NULL ELSE 1050 END::BIGINT AS authorized_to_complete_ms,
      false AS is_approved,
      false AS is_refunded,
      TIMESTAMPTZ '2026-11-25 10:00:00+00' AS processed_at,
      1 AS curated_version
    FROM base"""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = con.sql(sql).to_arrow_table()
    import pyarrow.compute as pc

    table = table.set_column(table.schema.get_field_index("is_approved"), "is_approved", pc.equal(table["status"], "APPROVED"))
    table = table.set_column(table.schema.get_field_index("is_refunded"), "is_refunded", pc.equal(table["status"], "REFUNDED"))
    return table.cast(arrow_schema())


# ------------------------------------------------------------------ publish
def perf_test(bootstrap: str, topic: str, records: int, payload_file: Path, producer_props: dict) -> float:
    """ProducerPerformance's records/s (its own final summary line). Its settings, the SASL login
    included, go in a 0600 file: never a password on a command line."""
    libs = Path(os.environ["WL_KAFKA_HOME"]) / "libs"  # from `stack/wallet-stack env`
    fd, props_path = tempfile.mkstemp(prefix="wl-bench-producer-", suffix=".properties")
    try:
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in {"bootstrap.servers": bootstrap, **producer_props}.items())
        # Its JVM's temp folder, removed after it: lz4-java unpacks its native library there.
        with tempfile.TemporaryDirectory(prefix="wl-bench-producer-") as jvm_tmp:
            cmd = [
                kafka_java(), "-Xmx1g", f"-Dlog4j2.configurationFile={ROOT / 'stack' / 'kafka' / 'log4j2.properties'}",
                f"-Djava.io.tmpdir={jvm_tmp}", "-cp", f"{libs}/*",
                "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(records),
                "--throughput", "-1", "--payload-file", str(payload_file), "--producer.config", props_path,
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(props_path)
    m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out)
    if not m or float(m[-1][1]) == 0:
        raise RuntimeError(f"no summary line in ProducerPerformance output:\n{out[-2000:]}")
    return float(m[-1][1])


def java_props_of(conf: dict) -> dict:
    """The Java producer settings equal to the librdkafka ones the project uses, the security
    ones included (SASL_SSL as the same principal, the same CA)."""
    props = {
        "acks": "all", "enable.idempotence": "true", "compression.type": conf["compression.type"],
        "linger.ms": str(conf["linger.ms"]), "batch.size": str(conf["batch.size"]),
    }
    protocol = conf.get("security.protocol", "PLAINTEXT")
    props["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        props["sasl.mechanism"] = conf["sasl.mechanism"]
        props["sasl.jaas.config"] = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                     f'username="{conf["sasl.username"]}" password="{conf["sasl.password"]}";')
    if protocol.endswith("SSL") and conf.get("ssl.ca.location"):
        props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": conf["ssl.ca.location"]})
    return props


def bench_publish(ctx: dict, table, repeats: int) -> dict:
    from wallet_lake.publish.producer import producer_config, publish
    from wallet_lake.publish.records import SCHEMA_HEADERS, curated_records

    bootstrap = ctx["bootstrap"]
    conf = producer_config(ctx["res"]["kafka"].client_config())
    # ProducerPerformance sends records without keys, which a compacted topic rejects: both
    # sides write to the same non-compacted topic; the compacted curated-topic config is
    # measured for the publish path alone as extra information.
    topic = ctx["create_topic"](f"wl-bench-{ctx['run']}-publish", 6, {"cleanup.policy": "delete"})
    compacted = ctx["create_topic"](f"wl-bench-{ctx['run']}-publish-compacted", 6)
    payload_file = Path(tempfile.mkstemp(prefix="wl-bench-payloads-", suffix=".txt")[1])
    ctx["cleanup"].append(lambda: payload_file.unlink(missing_ok=True))
    sample = [value for _, value in curated_records(table.slice(0, 10_000))]
    payload_file.write_bytes(b"\n".join(sample))
    record_bytes = sum(len(v) for v in sample) / len(sample)
    n = table.num_rows
    perf, ours = [], []
    for _ in range(repeats):
        perf.append(perf_test(bootstrap, topic, n, payload_file, java_props_of(conf)))
        started = time.monotonic()
        result = publish(curated_records(table), topic, conf, headers=SCHEMA_HEADERS)
        ours.append(result.messages / (time.monotonic() - started))
        print(f"  publish: perf-test {perf[-1]:,.0f}/s, publish path {ours[-1]:,.0f}/s", flush=True)
    started = time.monotonic()
    result = publish(curated_records(table), compacted, conf, headers=SCHEMA_HEADERS)
    ours_compacted = result.messages / (time.monotonic() - started)
    print(f"  publish: publish path into a compacted topic {ours_compacted:,.0f}/s", flush=True)
    return {
        "records": n, "repeats": repeats, "value_bytes_avg": round(record_bytes),
        "perf_test_records_per_s": round(max(perf)), "publish_records_per_s": round(max(ours)),
        "all_perf_test": [round(x) for x in perf], "all_publish": [round(x) for x in ours],
        "publish_over_perf_test": round(max(ours) / max(perf), 3),
        "publish_into_compacted_topic_records_per_s": round(ours_compacted),
        "security": {"protocol": conf.get("security.protocol"), "principal": conf.get("sasl.username")},
        "producer_config": {k: v for k, v in conf.items() if k not in ("bootstrap.servers", "sasl.password")},
    }


# ------------------------------------------------------------------ sink
KEEP_NEWEST_TRIGGER = "CREATE TRIGGER {t}_keep_newest BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION curated_payments_keep_newest()"


def create_table_like_curated(conn, table: str) -> None:
    """A copy of curated_payments: columns, PK, indexes and the no-regression trigger, writable by
    the sink's role exactly as curated_payments is (serving/pg_roles.py)."""
    from wallet_lake.serving.pg_provision import role_names
    from wallet_lake.serving.pg_roles import sink_grant_sql

    conn.execute(f"CREATE TABLE {table} (LIKE curated_payments INCLUDING ALL)")
    conn.execute(KEEP_NEWEST_TRIGGER.format(t=table))
    conn.execute(sink_grant_sql(table, role_names()["sink"]))


def count_rows(pg, table: str) -> int:
    with pg.connect() as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def copy_upsert(pg, table: str, csv_path: Path, columns: list[str]) -> float:
    """Seconds for COPY into an unlogged staging table + one INSERT ... ON CONFLICT, committed."""
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "payment_id")
    with pg.connect() as conn:
        conn.execute("SET synchronous_commit = on")
        started = time.monotonic()
        with conn.transaction():
            conn.execute(f"CREATE UNLOGGED TABLE {table}_staging (LIKE {table} INCLUDING DEFAULTS)")
            with conn.cursor().copy(f"COPY {table}_staging ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                with csv_path.open("rb") as f:
                    while chunk := f.read(4 << 20):
                        copy.write(chunk)
            conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {table}_staging ON CONFLICT (payment_id) DO UPDATE SET {updates}")
            conn.execute(f"DROP TABLE {table}_staging")
        return time.monotonic() - started


def last_keys(ctx: dict, topic: str) -> list[str]:
    """The key of the last message of every non-empty partition: when all of them are in
    Postgres, so is every earlier message (a task writes its partitions' records in offset order)."""
    from confluent_kafka import Consumer, TopicPartition

    from wallet_lake.serving.connect import end_offsets

    ends = end_offsets(ctx["res"]["kafka"].client_config(), topic)
    c = Consumer({**ctx["res"]["kafka"].client_config(), "group.id": f"wl-bench-probe-{ctx['run']}", "enable.auto.commit": False})
    try:
        keys = []
        for p, end in ends.items():
            if end == 0:
                continue
            c.assign([TopicPartition(topic, p, end - 1)])
            msg = None
            while msg is None or msg.error() is not None:
                msg = c.poll(5.0)
            keys.append(msg.key().decode())
        return keys
    finally:
        c.close()


def wait_quiet(max_load: float, timeout: float) -> dict:
    """Wait (at most `timeout` s) until the 1-minute load average is below `max_load`: the machine
    is shared, and a round measured under someone else's load says little. Returns what it saw."""
    started = time.monotonic()
    while (load := os.getloadavg()[0]) >= max_load and time.monotonic() - started < timeout:
        time.sleep(5)
    return {"load_1m": round(load, 2), "waited_s": round(time.monotonic() - started), "quiet": load < max_load}


def _grant_connector(ctx: dict, client, name: str, config: dict) -> None:
    """The worker's principal reads only what it is granted: this connector's topic and group."""
    from wallet_lake.security.kafka_acls import add_grants, admin_client, remove_grants, sink_connector_grants

    grants = sink_connector_grants(config["topics"], name, config["errors.deadletterqueue.topic.name"])
    add_grants(admin_client(), grants)
    ctx["cleanup"].append(lambda: remove_grants(admin_client(), grants))
    ctx["cleanup"].append(lambda: client.delete(name))
    ctx["groups"].append(f"connect-{name}")


def warm_worker(ctx: dict, client, name: str, config: dict, pg, target: str, rows: int, timeout: float) -> dict:
    """Unmeasured: a throwaway connector loads `rows` rows so that the worker's JIT has compiled the
    converter, Debezium and pgjdbc paths before a measured round (a long-lived worker's state)."""
    _grant_connector(ctx, client, name, config)
    with pg.connect() as conn:
        conn.execute(f"TRUNCATE {target}")
    started = time.monotonic()
    client.deploy(name, config)
    while (seen := count_rows(pg, target)) < rows:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"warm-up connector loaded {seen} of {rows} rows in {timeout}s")
        time.sleep(0.5)
    seconds = time.monotonic() - started
    client.delete(name)
    # Its tasks stop asynchronously: wait until no more rows arrive before the table is emptied.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 3:
        now_rows = count_rows(pg, target)
        if now_rows != last:
            last, stable_since = now_rows, time.monotonic()
        time.sleep(0.5)
    with pg.connect() as conn:
        conn.execute(f"TRUNCATE {target}")
    return {"connector": name, "rows_at_least": rows, "seconds": round(seconds, 1)}


def _sink_round(ctx: dict, client, name: str, config: dict, pg, target: str, probe: list, n: int, timeout: float) -> dict:
    """One sink measurement: a new connector (its own consumer group, so it reads the topic from
    the start) into the emptied table, from its creation to the last row visible; deleted after."""
    with pg.connect() as conn:
        conn.execute(f"TRUNCATE {target}")
    _grant_connector(ctx, client, name, config)
    quiet = wait_quiet(ctx["max_load"], ctx["quiet_timeout"])
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    client.deploy(name, config)
    first_row_at = None
    deadline = started + timeout
    with pg.connect() as conn:
        conn.autocommit = True
        while True:  # cheap primary-key probes while loading, one count at the end
            seen = conn.execute(f"SELECT count(*) FROM {target} WHERE payment_id = ANY(%s)", (probe,)).fetchone()[0]
            now = time.monotonic()
            if first_row_at is None and conn.execute(f"SELECT EXISTS (SELECT 1 FROM {target})").fetchone()[0]:
                first_row_at = now
            if seen == len(probe):
                break
            if now > deadline:
                raise TimeoutError(f"sink not done in {timeout}s; status {client.status_or_none(name)}")
            status = client.status_or_none(name) or {"tasks": []}  # 404 until the worker has it
            failed = [t for t in status["tasks"] if t["state"] == "FAILED"]
            if failed:
                raise RuntimeError(f"bench sink task failed: {failed[0].get('trace', '')[:2000]}")
            time.sleep(0.1)
    finished = time.monotonic()
    loaded = count_rows(pg, target)
    assert loaded == n, f"sink loaded {loaded} of {n} rows"
    load_after = os.getloadavg()[0]
    client.delete(name)
    seconds = finished - started
    return {
        "connector": name, "rows_per_s": round(n / seconds), "seconds": round(seconds, 2),
        "first_row_after_s": round(first_row_at - started, 2) if first_row_at else None,
        "rows_per_s_from_first_row": round(n / (finished - first_row_at)) if first_row_at else None,
        "load_average_1m_before_and_after": [round(load_before, 2), round(load_after, 2)],
        "quiet_wait": quiet,
    }


def bench_sink(ctx: dict, table, partitions: int, overrides: dict, timeout: float, sink_repeats: int = 2,
               warmup_rows: int = 0, variants: list[dict] | None = None) -> dict:
    import duckdb

    from wallet_lake.contracts.schema import CURATED_COLUMNS
    from wallet_lake.publish.producer import producer_config, publish
    from wallet_lake.publish.records import SCHEMA_HEADERS, curated_records
    from wallet_lake.serving.deploy import DEFAULT_FLAVOR, sink_connector_config

    res, pg, run = ctx["res"], ctx["res"]["postgres"], ctx["run"]
    n = table.num_rows
    topic = ctx["create_topic"](f"wl-bench-{run}-sink", partitions)
    dlq = f"wl-bench-{run}-sink.dlq"
    ctx["topics"].append(dlq)
    target = f"wl_bench_{run}"
    with pg.connect() as conn:
        create_table_like_curated(conn, target)
    ctx["cleanup"].append(lambda: _drop_table(pg, target))

    csv_path = Path(tempfile.mkstemp(prefix="wl-bench-rows-", suffix=".csv")[1])
    ctx["cleanup"].append(lambda: csv_path.unlink(missing_ok=True))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("rows", table)
    con.execute(f"COPY (SELECT {', '.join(CURATED_COLUMNS)} FROM rows) TO '{csv_path}' (FORMAT csv, HEADER false)")
    copy_quiet: list[dict] = []

    def copy_reference() -> float:
        """COPY + one INSERT ... ON CONFLICT of the same rows into the same (emptied) table."""
        with pg.connect() as conn:
            conn.execute(f"TRUNCATE {target}")
        copy_quiet.append(wait_quiet(ctx["max_load"], ctx["quiet_timeout"]))
        seconds = copy_upsert(pg, target, csv_path, list(CURATED_COLUMNS))
        assert count_rows(pg, target) == n, "COPY upsert did not load every row"
        with pg.connect() as conn:
            conn.execute(f"TRUNCATE {target}")
        print(f"  sink: COPY + INSERT ON CONFLICT {n / seconds:,.0f} rows/s ({seconds:.1f}s)", flush=True)
        return seconds

    copy_before = copy_reference()
    result = publish(curated_records(table), topic, producer_config(res["kafka"].client_config()), headers=SCHEMA_HEADERS)
    assert result.messages == n
    probe = last_keys(ctx, topic)

    def flavor_config(flavor: str = DEFAULT_FLAVOR) -> dict:
        """The project's connector config in that flavor (serving/deploy.py), on the bench topic and table."""
        c = sink_connector_config(res, flavor, table=target)
        c.update({"topics": topic, "errors.deadletterqueue.topic.name": dlq, **overrides})
        return c

    config = flavor_config()
    client = res["connect"].client()
    warmup = None
    if warmup_rows:
        warmup = warm_worker(ctx, client, f"wl-bench-{run}-warmup", config, pg, target, min(warmup_rows, n), timeout)
        print(f"  sink: worker warmed by a throwaway connector ({warmup['rows_at_least']:,} rows, {warmup['seconds']}s)", flush=True)
    rounds = []
    for rnd in range(1, sink_repeats + 1):
        rounds.append(_sink_round(ctx, client, f"wl-bench-{run}-sink-{rnd}", config, pg, target, probe, n, timeout))
        print(f"  sink round {rnd}: {config['connector.class'].rsplit('.', 1)[-1]} {rounds[-1]['rows_per_s']:,} rows/s ({rounds[-1]['seconds']}s from connector creation;"
              f" first row after {rounds[-1]['first_row_after_s']}s)", flush=True)
    options = []
    for i, variant in enumerate(variants or [], start=1):
        base = config
        if variant["flavor"] and variant["flavor"] != DEFAULT_FLAVOR:
            # Another connector: warm the worker's paths for it as for the project's.
            base = flavor_config(variant["flavor"])
            if warmup_rows:
                w = warm_worker(ctx, client, f"wl-bench-{run}-warmup-{i}", {**base, **variant["connector"]}, pg, target, min(warmup_rows, n), timeout)
                print(f"  sink option {variant['name']}: worker warmed for it ({w['rows_at_least']:,} rows, {w['seconds']}s)", flush=True)
        with sink_variant(ctx, target, variant):
            option_config = {**base, **variant["connector"]}
            if variant["url"]:
                option_config["connection.url"] = with_query_params(option_config["connection.url"], variant["url"])
            r = _sink_round(ctx, client, f"wl-bench-{run}-option-{i}", option_config, pg, target, probe, n, timeout)
            if variant["drop_index"] or variant["dirty_dt_triggers"] or variant["collate"]:  # a changed table: COPY's reference on it too
                same_table = copy_reference()
                r.update({"copy_upsert_rows_per_s_same_table": round(n / same_table),
                          "sink_over_copy_same_table": round(same_table / r["seconds"], 3)})
        options.append({"name": variant["name"], "settings": variant["settings"], **r,
                        **({"marks_written": variant["marks_written"]} if "marks_written" in variant else {})})
        print(f"  sink option {variant['name']}: {r['rows_per_s']:,} rows/s ({r['seconds']}s)", flush=True)
    best = max(rounds, key=lambda r: r["rows_per_s"])
    sink_seconds = best["seconds"]
    copy_after = copy_reference()
    copy_seconds = min(copy_before, copy_after)  # the faster reference: the ratio errs low
    for o in options:
        o["sink_over_copy"] = round(copy_seconds / o["seconds"], 3)
    tuned = {k: v for k, v in config.items() if k in TUNING_KEYS or k.startswith("consumer.override.")}
    return {
        "records": n, "partitions": partitions,
        "copy_upsert_rows_per_s": round(n / copy_seconds), "copy_upsert_seconds": round(copy_seconds, 2),
        "copy_upsert_rows_per_s_before_and_after": [round(n / copy_before), round(n / copy_after)],
        "copy_quiet_wait": copy_quiet,
        "worker_warmup": warmup,
        "sink_rounds": rounds,
        "sink_rows_per_s": best["rows_per_s"], "sink_seconds": best["seconds"],
        "sink_rows_per_s_from_first_row": best["rows_per_s_from_first_row"],
        "sink_over_copy": round(copy_seconds / sink_seconds, 3),
        # The first measured round alone: a fresh connector (own consumer group, from offset 0).
        "sink_over_copy_single_round": round(copy_seconds / rounds[0]["seconds"], 3),
        "load_average_1m_before_and_after_sink": best["load_average_1m_before_and_after"],
        "connector_tuning": tuned,
        "overrides_of_project_config": overrides,
        "sink_options": options,
    }


def with_query_params(url: str, params: dict[str, str]) -> str:
    """A JDBC URL with some query parameters set (added or replaced). Pure."""
    from urllib.parse import parse_qsl, urlencode

    base, _, query = url.partition("?")
    merged = dict(parse_qsl(query, keep_blank_values=True)) | params
    return f"{base}?{urlencode(merged)}"


def parse_variant(text: str) -> dict:
    """NAME:KEY=VALUE;KEY=VALUE. Keys are connector settings, except role.<setting> (set for the
    sink's role on the database for this round only: ALTER ROLE ... IN DATABASE ... SET) and
    table.drop_index=<index name suffix> (dropped from the bench table for this round only),
    table.collate_payment_id=<collation> (the bench table's key column in that collation, e.g. C,
    for this round and its COPY reference only) and
    url.<parameter> (a query parameter of the JDBC connection.url, e.g. url.reWriteBatchedInserts=false)
    and flavor=<debezium|...> (the round runs that flavor's config of serving/deploy.py, after a
    warm-up of its own, instead of the project's)."""
    name, _, rest = text.partition(":")
    settings = parse_overrides([item for item in rest.split(";") if item])
    return {
        "name": name, "settings": settings,
        "connector": {k: v for k, v in settings.items() if not k.startswith(("role.", "table.", "url.")) and k != "flavor"},
        "flavor": settings.get("flavor"),
        "url": {k.removeprefix("url."): v for k, v in settings.items() if k.startswith("url.")},
        "role": {k.removeprefix("role."): v for k, v in settings.items() if k.startswith("role.")},
        "drop_index": [v for k, v in settings.items() if k == "table.drop_index"],
        "dirty_dt_triggers": settings.get("table.dirty_dt_triggers"),
        "collate": settings.get("table.collate_payment_id"),
    }


def dirty_dt_trigger_sql(target: str, kind: str) -> list[str]:
    """The production's dirty-dt marking (migrations 0005 and 0008: SECURITY DEFINER functions,
    statement triggers with transition tables) on the bench table, marking into a bench marks
    table shaped like report_aggregate_dirty_dts, so a benchmark never leaves marks behind.
    kind "row": the same marks written by one row-level trigger call per row instead."""
    marks = f"{target}_dirty_dts"
    out = [f"CREATE TABLE {marks} (id bigserial PRIMARY KEY, dt date NOT NULL, marked_at timestamptz NOT NULL DEFAULT now())",
           f"CREATE INDEX {marks}_dt_idx ON {marks} (dt, marked_at)"]
    definer = "SECURITY DEFINER SET search_path = public, pg_temp"
    if kind == "statement":
        out += [
            f"CREATE FUNCTION {target}_mark_inserted() RETURNS trigger LANGUAGE plpgsql {definer} AS $$ BEGIN "
            f"INSERT INTO {marks} (dt) SELECT DISTINCT dt FROM inserted_rows; RETURN NULL; END $$",
            f"CREATE FUNCTION {target}_mark_updated() RETURNS trigger LANGUAGE plpgsql {definer} AS $$ BEGIN "
            f"INSERT INTO {marks} (dt) SELECT dt FROM old_rows UNION SELECT dt FROM new_rows; RETURN NULL; END $$",
            f"CREATE TRIGGER {target}_mark_inserted AFTER INSERT ON {target} REFERENCING NEW TABLE AS inserted_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {target}_mark_inserted()",
            f"CREATE TRIGGER {target}_mark_updated AFTER UPDATE ON {target} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {target}_mark_updated()",
        ]
    elif kind == "row":
        out += [
            f"CREATE FUNCTION {target}_mark_row() RETURNS trigger LANGUAGE plpgsql {definer} AS $$ BEGIN "
            f"INSERT INTO {marks} (dt) VALUES (NEW.dt); IF TG_OP = 'UPDATE' AND OLD.dt <> NEW.dt THEN "
            f"INSERT INTO {marks} (dt) VALUES (OLD.dt); END IF; RETURN NULL; END $$",
            f"CREATE TRIGGER {target}_mark_row AFTER INSERT OR UPDATE ON {target} FOR EACH ROW EXECUTE FUNCTION {target}_mark_row()",
        ]
    else:
        raise ValueError(f"table.dirty_dt_triggers: statement or row, not {kind!r}")
    return out


@contextmanager
def sink_variant(ctx: dict, target: str, variant: dict):
    """Apply a variant's role settings and index drops around one round, and undo them after."""
    import psycopg
    from psycopg import sql

    from wallet_lake.serving.pg_provision import admin_connect_kwargs, role_names

    pg = ctx["res"]["postgres"]
    sink_role = role_names()["sink"]
    indexdefs = []
    with pg.connect() as conn:
        for suffix in variant["drop_index"]:
            indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
                                    (target, f"{target}_{suffix}")).fetchone()
            assert indexdef, f"no index {target}_{suffix}"
            indexdefs.append(indexdef[0])
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(f"{target}_{suffix}")))
    if variant["dirty_dt_triggers"]:
        with pg.connect() as conn:
            for stmt in dirty_dt_trigger_sql(target, variant["dirty_dt_triggers"]):
                conn.execute(stmt)
    if variant["collate"]:  # emptied first (the round empties it anyway), so only the primary key is rebuilt
        with pg.connect() as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(target)))
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN payment_id TYPE text COLLATE {}").format(
                sql.Identifier(target), sql.Identifier(variant["collate"])))
    if variant["role"]:
        with psycopg.connect(**admin_connect_kwargs(dbname=pg.dbname)) as admin:
            for k, v in variant["role"].items():
                admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                    sql.Identifier(sink_role), sql.Identifier(pg.dbname), sql.Identifier(k), sql.Literal(v)))
    try:
        yield
    finally:
        if variant["role"]:
            with psycopg.connect(**admin_connect_kwargs(dbname=pg.dbname)) as admin:
                for k in variant["role"]:
                    admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} RESET {}").format(
                        sql.Identifier(sink_role), sql.Identifier(pg.dbname), sql.Identifier(k)))
        with pg.connect() as conn:
            if variant["collate"]:
                conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN payment_id TYPE text COLLATE \"default\"").format(
                    sql.Identifier(target)))
            for indexdef in indexdefs:
                conn.execute(indexdef)
            if variant["dirty_dt_triggers"]:  # the functions go with the marks table's CASCADE
                marked = conn.execute(f"SELECT count(*), count(DISTINCT dt) FROM {target}_dirty_dts").fetchone()
                variant["marks_written"] = {"marks": marked[0], "distinct_dts": marked[1]}
                conn.execute(f"DROP TABLE {target}_dirty_dts")
                for fn in ("mark_inserted", "mark_updated", "mark_row"):
                    conn.execute(f"DROP FUNCTION IF EXISTS {target}_{fn}() CASCADE")


TUNING_KEYS = {"connector.class", "tasks.max", "batch.size", "use.reduction.buffer", "dialect.postgres.unnest.insert.enabled", "connection.url"}


def _drop_table(pg, table: str) -> None:
    with pg.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"DROP TABLE IF EXISTS {table}_staging")
        conn.execute(f"DROP TABLE IF EXISTS {table}_dirty_dts")
        for fn in ("mark_inserted", "mark_updated", "mark_row"):
            conn.execute(f"DROP FUNCTION IF EXISTS {table}_{fn}() CASCADE")


# ------------------------------------------------------------------ main
def versions(ctx: dict) -> dict:
    import confluent_kafka
    import httpx

    from wallet_lake.serving.deploy import connector_class

    http = ctx["res"]["connect"].client().http
    try:
        connect = http.get("/").json()
    except httpx.TransportError as exc:
        raise SystemExit(f"Kafka Connect at {ctx['res']['connect'].url} does not answer ({exc}): bring the stack up (stack/wallet-stack up) and rerun") from None
    with ctx["res"]["postgres"].connect() as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    plugins = http.get("/connector-plugins").json()
    loaded = {p["class"]: p["version"] for p in plugins}
    return {
        "kafka_connect": connect.get("version"), "debezium_jdbc_sink": loaded.get(connector_class("debezium")),
        "copy_sink": loaded.get(connector_class("copy")), "postgres": pg_version,
        "confluent_kafka": confluent_kafka.__version__, "librdkafka": confluent_kafka.libversion()[0],
        "python": platform.python_version(),
        "java": java_version(kafka_java()),  # ProducerPerformance's
        # What the running broker and worker were started with (a healthy stack is not restarted by `up`).
        "java_broker": java_version(str(service_java("kafka"))), "java_connect": java_version(str(service_java("connect"))),
    }


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="sink records (default 1,000,000)")
    parser.add_argument("--publish-records", type=int, default=500_000, help="records per publish measurement")
    parser.add_argument("--repeats", type=int, default=2, help="publish measurements of each side (best kept)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions of the sink topic (default: the curated topic's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a connector setting (tuning experiments)")
    parser.add_argument("--sink-timeout", type=float, default=900.0)
    parser.add_argument("--sink-repeats", type=int, default=2,
                        help="sink measurements, each by a new connector over the same records (best kept, like the publish side)")
    parser.add_argument("--warmup-records", type=int, default=0,
                        help="rows a throwaway connector loads first, unmeasured, so the measured rounds run on a warm worker")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE;...",
                        help="one more single round with these settings (connector keys, role.<pg setting>, table.drop_index=<suffix>, table.collate_payment_id=<collation>)")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait before each measurement until the 1-minute load average is below this")
    parser.add_argument("--quiet-timeout", type=float, default=600.0, help="longest such wait (s); the load seen is recorded")
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--skip-sink", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results/kafka_pg.json alone")
    args = parser.parse_args(argv)

    load_stack_env()
    # A timeout's SIGTERM unwinds like Ctrl-C, so the throwaway objects are still dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from confluent_kafka.admin import AdminClient

    from wallet_lake.publish.topic import curated_topic_spec, ensure_topic
    from wallet_lake.resources import resources_from_os_env, with_changes
    from wallet_lake.serving.pg_connect import login

    res = resources_from_os_env()
    # Postgres as the schema's owner: the benchmark creates, loads and drops its own tables.
    res["postgres"] = with_changes(res["postgres"], **dict(zip(("user", "password"), login("owner"))))
    # The benchmarks' own principal (security/kafka_acls.py): it owns the wl-bench-* topics and groups.
    res["kafka"] = res["kafka"].as_principal("bench")
    bootstrap = res["kafka"].bootstrap_servers
    admin = AdminClient(res["kafka"].client_config())
    run = uuid.uuid4().hex[:8]
    ctx: dict = {"res": res, "bootstrap": bootstrap, "run": run, "topics": [], "groups": [], "cleanup": [],
                 "max_load": args.max_load, "quiet_timeout": args.quiet_timeout}

    def create_topic(name: str, partitions: int, config: dict | None = None) -> str:
        spec = curated_topic_spec(name)
        ensure_topic(admin, type(spec)(name=name, partitions=partitions, replication_factor=spec.replication_factor, config={**spec.config, **(config or {})}))
        ctx["topics"].append(name)
        return name

    ctx["create_topic"] = create_topic
    partitions = args.partitions or curated_topic_spec(res["kafka"].topic).partitions
    out: dict = {
        "benchmark": "kafka_pg", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_1m_at_start": round(os.getloadavg()[0], 2)},
        "command": " ".join(["python bench/kafka_pg.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    try:
        out["versions"] = versions(ctx)
        print(f"run {run}: building {max(args.records, args.publish_records):,} synthetic curated rows", flush=True)
        table = synthetic_curated(max(args.records, args.publish_records), f"bench-{run}-")
        if not args.skip_publish:
            print(f"publish: {args.publish_records:,} records x {args.repeats}", flush=True)
            out["publish"] = bench_publish(ctx, table.slice(0, args.publish_records), args.repeats)
            out["publish_over_perf_test"] = out["publish"]["publish_over_perf_test"]
        if not args.skip_sink:
            print(f"sink: {args.records:,} records, {partitions} partitions", flush=True)
            out["sink"] = bench_sink(ctx, table.slice(0, args.records), partitions, parse_overrides(args.set), args.sink_timeout,
                                     args.sink_repeats, args.warmup_records, [parse_variant(v) for v in args.variant])
            out["sink_over_copy"] = out["sink"]["sink_over_copy"]
            out["sink_over_copy_single_round"] = out["sink"]["sink_over_copy_single_round"]
    finally:
        for fn in reversed(ctx["cleanup"]):
            try:  # every step runs even when one fails (a worker that is down, say)
                fn()
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"cleanup: {exc}", file=sys.stderr)
        if ctx["topics"]:
            for fut in admin.delete_topics(ctx["topics"], operation_timeout=30).values():
                try:
                    fut.result()
                except Exception as exc:  # a DLQ topic only exists when a record failed
                    if "UNKNOWN_TOPIC" not in str(exc):
                        print(f"cleanup: {exc}", file=sys.stderr)
        if ctx["groups"]:
            for fut in admin.delete_consumer_groups(ctx["groups"], request_timeout=30).values():
                try:
                    fut.result()
                except Exception as exc:
                    print(f"cleanup: {exc}", file=sys.stderr)
    out["targets"] = {"publish_over_perf_test": 0.5, "sink_over_copy": round(1 / 3, 3), "sink_over_copy_single_round": 0.5}
    print(json.dumps({k: out.get(k) for k in ("publish_over_perf_test", "sink_over_copy", "sink_over_copy_single_round")}, indent=1))
    if not args.no_write:
        if RESULT_FILE.exists():  # a stage skipped this run keeps its figures of the run that measured it
            previous = json.loads(RESULT_FILE.read_text())
            for stage, ratio in (("publish", "publish_over_perf_test"), ("sink", "sink_over_copy")):
                if stage not in out and stage in previous:
                    out[stage] = {**previous[stage], "measured_in_run": previous[stage].get("measured_in_run", {"date": previous["date"], "command": previous["command"]})}
                    out[ratio] = previous.get(ratio)
        RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULT_FILE.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {RESULT_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
