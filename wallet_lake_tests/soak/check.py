"""The soak's independent check: read what every store holds and compare it with what must be
there, recomputed from the raw NDJSON (wallet_lake_tests/soak/expect.py).

Shares nothing with the pipeline: S3 through boto3, Postgres through psycopg, Kafka through
confluent-kafka, the reports through HTTP. The one import from wallet_lake is the lake layout
(wallet_lake.contracts.landing: where landing hours and manifests live): it is the contract with
the processor and the lake's readers, not logic under test, and restating it would be a second
copy of a fact that could drift unnoticed; if it moved, both sides would be checked against the
new layout, which is what a reader of the lake needs."""

from __future__ import annotations

import io
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

import boto3
import psycopg
import pyarrow.parquet as pq
from psycopg.rows import dict_row

from wallet_lake.contracts.landing import CURATED_PREFIX, hour_token, landing_prefix, manifest_key
from wallet_lake_tests.soak import expect
from wallet_lake_tests.soak.stack import Api, env, kafka_conf

UTC = timezone.utc
EXAMPLES = 10
_PG_COLUMNS = ", ".join(expect.PAYMENT_FIELDS)
_REPORT_COLUMNS = "dt, merchant_id, currency, status, amount_cents, decline_reason, payment_method, authorized_to_complete_ms"


# ----------------------------------------------------------------------------------- readers

class Lake:
    def __init__(self) -> None:
        self.bucket = env("WL_LAKE_BUCKET")
        self.s3 = boto3.client("s3", endpoint_url=os.environ.get("WL_S3_ENDPOINT_URL") or None,
                               region_name=os.environ.get("AWS_REGION", "us-east-1"))

    def keys(self, prefix: str) -> list[dict]:
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += page.get("Contents", [])
        return out

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_optional(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except self.s3.exceptions.NoSuchKey:
            return None

    def raw_hour(self, hour: datetime) -> dict[str, bytes]:
        return {o["Key"]: self.get(o["Key"]) for o in self.keys(landing_prefix(hour)) if o["Key"].endswith(".ndjson")}

    def newest_raw(self, hour: datetime) -> datetime | None:
        objs = [o for o in self.keys(landing_prefix(hour)) if o["Key"].endswith(".ndjson")]
        return max((o["LastModified"] for o in objs), default=None)

    def manifest(self, hour: datetime) -> dict:
        data = self.get_optional(manifest_key(hour))
        return json.loads(data) if data else {}

    def parquet_rows(self, key: str) -> list[dict]:
        rows = pq.read_table(io.BytesIO(self.get(key))).to_pylist()
        parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)  # hive partition folders
        for r in rows:
            if "dt" in parts and "dt" not in r:
                r["dt"] = date.fromisoformat(parts["dt"])
            if "merchant_id" in parts and "merchant_id" not in r:
                r["merchant_id"] = parts["merchant_id"]
            for f in expect.TIMESTAMP_FIELDS:
                if isinstance(r.get(f), datetime) and r[f].tzinfo is None:
                    r[f] = r[f].replace(tzinfo=UTC)
        return rows

    def parquet_count(self, key: str) -> int:
        return pq.ParquetFile(io.BytesIO(self.get(key))).metadata.num_rows


def pg_connect() -> psycopg.Connection:
    from wallet_lake.serving.pg_connect import connect_kwargs

    return psycopg.connect(**connect_kwargs("owner", connect_timeout=10, row_factory=dict_row, autocommit=True))


def pg_rows_by_id(ids: list[str]) -> dict[str, dict]:
    out = {}
    with pg_connect() as conn:
        for i in range(0, len(ids), 20_000):
            for r in conn.execute(f"SELECT {_PG_COLUMNS} FROM public.curated_payments WHERE payment_id = ANY(%s)", (ids[i:i + 20_000],)):
                out[r["payment_id"]] = r
    return out


def pg_report_rows(date_from: date, date_to: date) -> list[dict]:
    with pg_connect() as conn:
        return conn.execute(f"SELECT {_REPORT_COLUMNS} FROM public.curated_payments WHERE dt BETWEEN %s AND %s",
                            (date_from, date_to)).fetchall()


def topic_records() -> dict[str, set[tuple[int, str]]]:
    """Every message of the curated topic, from the beginning to the high watermarks:
    {key: {(created_at epoch ms, status), ...}}."""
    from confluent_kafka import Consumer, TopicPartition

    topic = env("WL_KAFKA_TOPIC")
    c = Consumer({**kafka_conf(), "group.id": f"t-soak-check-{time.time_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out: dict[str, set] = defaultdict(set)
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in parts}
        todo = {p: hi for p, (lo, hi) in ends.items() if hi > lo}
        c.assign([TopicPartition(topic, p, lo) for p, (lo, hi) in ends.items() if hi > lo])
        deadline = time.monotonic() + 300
        while todo and time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(f"consuming {topic}: {msg.error()}")
            if msg.key() is not None:
                try:
                    v = json.loads(msg.value())
                    payload = v.get("payload", v) if isinstance(v, dict) else {}
                    out[msg.key().decode()].add((payload.get("created_at"), payload.get("status")))
                except (ValueError, TypeError):
                    out[msg.key().decode()].add((None, None))
            if msg.offset() + 1 >= todo.get(msg.partition(), 0):
                todo.pop(msg.partition(), None)
        if todo:
            raise RuntimeError(f"could not read {topic} to its end within 300 s: partitions {sorted(todo)} left")
    finally:
        c.close()
    return out


def _ms(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# ----------------------------------------------------------------------------------- reports

def compare_reports(api: Api, rows: list[dict], date_from: date, date_to: date, *, per_merchant: bool) -> tuple[int, list[str], list[str]]:
    """(requests, differences, as_of values) of the four reports (all merchants; with
    per_merchant also each merchant with rows) against the recomputation from `rows`."""
    diffs: list[str] = []
    as_of: list[str] = []
    n = 0

    def call(path: str, **params):
        nonlocal n
        n += 1
        r = api.get(path, **params)
        if r.status_code != 200:
            diffs.append(f"{path} {params}: HTTP {r.status_code} {r.text[:200]}")
            return None
        body = r.json()
        if "as_of" in body:
            as_of.append(body["as_of"])
        return body

    span = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    merchants: list[str | None] = [None]
    if per_merchant:
        merchants += sorted({r["merchant_id"] for r in rows})
    days = sorted({r["dt"] for r in rows}) or [date_from]
    for m in merchants:
        label = m or "all merchants"
        for day in days:
            if m is not None and not any(r["dt"] == day and r["merchant_id"] == m for r in rows):
                continue
            body = call("/reports/daily-recon", date=day.isoformat(), merchant=m)
            if body is not None:
                diffs += [f"daily-recon {day} {label}: {d}" for d in expect.diff_daily_recon(body, expect.daily_recon(rows, day, m))]
        body = call("/reports/refund-rate", merchant=m, **span)
        if body is not None:
            diffs += [f"refund-rate {label}: {d}" for d in expect.diff_refund_rate(body, expect.refund_rate(rows, date_from, date_to, m))]
        body = call("/reports/declines", merchant=m, **span)
        if body is not None:
            diffs += [f"declines {label}: {d}" for d in expect.diff_declines(body, expect.declines(rows, date_from, date_to, m))]
    body = call("/reports/latency", **span)
    if body is not None:
        diffs += [f"latency: {d}" for d in expect.diff_latency(body, expect.latency_values(rows, date_from, date_to))]
    return n, diffs, as_of


def reports_agree_once(api: Api, date_from: date, date_to: date, *, per_merchant: bool = False) -> tuple[bool | None, list[str], list[str]]:
    """One consistent comparison: the table before and after the API answers must be the same
    (else None: the table moved under the comparison, try again)."""
    before = pg_report_rows(date_from, date_to)
    _, diffs, as_of = compare_reports(api, before, date_from, date_to, per_merchant=per_merchant)
    after = pg_report_rows(date_from, date_to)
    key = lambda rows: sorted((str(r["dt"]), r["merchant_id"], r["currency"], r["status"], int(r["amount_cents"]),
                               r["decline_reason"] or "", r["payment_method"] or "", r["authorized_to_complete_ms"] or -1) for r in rows)
    if key(before) != key(after):
        return None, diffs, as_of
    return not diffs, diffs, as_of


# ------------------------------------------------------------------------------------- check

def check(hours: Iterable[datetime], api: Api, *, reports_deadline_s: float = 180, log=print) -> dict:
    """The whole independent check over the given landing hours (quiescent: no run in progress)."""
    hours = sorted(hours)
    lake = Lake()
    out: dict = {"hours": []}

    # 1. Per landing hour: raw -> (curated, quarantined, duplicates) against the lake's current files.
    expectations: list[expect.HourExpectation] = []
    lost_ids: set[str] = set()
    lost_lines = duplicated = accounting = lake_field = 0
    orphan_index = _orphans_by_token(lake, hours)
    for hour in hours:
        e = expect.expect_hour(hour, lake.raw_hour(hour))
        expectations.append(e)
        m = lake.manifest(hour)
        curated_rows = [r for k in m.get("curated_keys", []) for r in lake.parquet_rows(k)]
        quarantine_rows = sum(lake.parquet_count(k) for k in m.get("quarantine_keys", []))
        cmp = expect.compare_lake_hour(e, curated_rows)
        orphans = orphan_index.get(hour_token(hour), set()) - set(m.get("curated_keys", []))
        orphan_rows = sum(lake.parquet_count(k) for k in orphans)
        figures = {k: m.get(k) for k in ("raw_lines", "curated_rows", "quarantined_rows", "duplicates_removed")}
        want = {"raw_lines": e.raw_lines, "curated_rows": e.curated, "quarantined_rows": e.quarantined, "duplicates_removed": e.duplicates}
        accounted = figures == want
        accounting += not accounted
        lost_ids.update(cmp.missing)
        lost_lines += max(0, e.quarantined - quarantine_rows)
        duplicated += cmp.repeated_rows + orphan_rows + max(0, quarantine_rows - e.quarantined)
        lake_field += len(cmp.mismatched) + len(cmp.unexpected)
        out["hours"].append({
            "landing_hour": hour.isoformat(), "raw_lines": e.raw_lines, "curated": e.curated,
            "quarantined": e.quarantined, "duplicates": e.duplicates,
            "identity_holds": e.raw_lines == e.curated + e.quarantined + e.duplicates,
            "manifest": figures, "manifest_matches": accounted,
            "lake_curated_rows": len(curated_rows), "lake_quarantined_rows": quarantine_rows,
            "lake_missing": cmp.missing[:EXAMPLES], "lake_missing_count": len(cmp.missing),
            "lake_unexpected_count": len(cmp.unexpected), "lake_repeated_rows": cmp.repeated_rows,
            "lake_field_mismatches": len(cmp.mismatched),
            "lake_field_examples": {k: _jsonable(v) for k, v in list(cmp.mismatched.items())[:3]},
            "orphan_files": sorted(orphans)[:EXAMPLES], "orphan_rows": orphan_rows,
        })
        log(f"check {hour:%Y-%m-%dT%H}: raw {e.raw_lines} = curated {e.curated} + quarantined {e.quarantined} + "
            f"duplicates {e.duplicates}; manifest {'=' if accounted else '!='}; lake missing {len(cmp.missing)}, "
            f"repeated {cmp.repeated_rows}, orphans {orphan_rows}")

    # 2. Postgres = the latest record of every payment, field by field.
    latest = expect.latest_records(expectations)
    stored = pg_rows_by_id(sorted(latest))
    pgc = expect.compare_rows(latest, stored)
    lost_ids.update(pgc.missing)
    out["postgres"] = {
        "expected_rows": len(latest), "rows_found": len(stored), "missing": len(pgc.missing),
        "regressed": len(pgc.regressed), "field_mismatches": len(pgc.mismatched), "ahead_of_lake": len(pgc.ahead),
        "ambiguous_latest": pgc.ambiguous,
        "examples": {"missing": pgc.missing[:EXAMPLES], "regressed": pgc.regressed[:EXAMPLES],
                     "mismatched": {k: _jsonable(v) for k, v in list(pgc.mismatched.items())[:5]}, "ahead": pgc.ahead[:EXAMPLES]},
    }
    log(f"check postgres: {len(stored)}/{len(latest)} rows; missing {len(pgc.missing)}, regressed {len(pgc.regressed)}, "
        f"mismatched {len(pgc.mismatched)}, ahead {len(pgc.ahead)}")

    # 3. Every curated key on the topic, and every payment's latest record among its messages.
    topic = topic_records()
    curated_keys = {pid for e in expectations for pid in e.survivors}
    missing_keys = sorted(curated_keys - set(topic))
    missing_latest = sorted(pid for pid, want in latest.items() if pid in topic and not any(
        (_ms(c["created_at"]), c["status"]) in topic[pid] for c in want.candidates))
    lost_ids.update(missing_keys)
    out["topic"] = {"keys_on_topic": len(topic), "curated_keys": len(curated_keys), "missing_keys": len(missing_keys),
                    "missing_latest_record": len(missing_latest),
                    "examples": {"missing_keys": missing_keys[:EXAMPLES], "missing_latest": missing_latest[:EXAMPLES]}}
    log(f"check topic: {len(curated_keys) - len(missing_keys)}/{len(curated_keys)} curated keys on the topic; "
        f"latest record missing for {len(missing_latest)}")

    # 4. The four reports = a recomputation from the Postgres rows (retried while they converge).
    dts = sorted({r["dt"] for r in stored.values()} | {c["dt"] for want in latest.values() for c in want.candidates})
    if dts:
        date_from, date_to = dts[0], dts[-1]
        deadline, attempts = time.monotonic() + reports_deadline_s, 0
        while True:
            attempts += 1
            agree, diffs, as_of = reports_agree_once(api, date_from, date_to, per_merchant=True)
            if agree or time.monotonic() > deadline:
                break
            time.sleep(5)
        out["reports"] = {"from": date_from.isoformat(), "to": date_to.isoformat(), "attempts": attempts,
                          "agree": bool(agree), "mismatches": 0 if agree else max(1, len(diffs)),
                          "examples": diffs[:EXAMPLES], "as_of_seen": sorted(set(as_of))[-3:]}
    else:
        out["reports"] = {"agree": True, "mismatches": 0, "attempts": 0, "examples": []}
    log(f"check reports: {'agree' if out['reports']['agree'] else 'DIFFER'} after {out['reports']['attempts']} attempt(s)")

    # 5. The pipeline ledger (GET /reports/pipeline-recon) against the independent figures.
    out["ledger"] = _check_ledger(api, expectations)
    log(f"check ledger: {out['ledger']['status']}; {out['ledger']['mismatched_hours']} hour(s) differ")

    out["lost_rows"] = len(lost_ids) + lost_lines
    out["lost_breakdown"] = {"lake": sum(h["lake_missing_count"] for h in out["hours"]), "postgres": len(pgc.missing),
                             "topic": len(missing_keys), "quarantine_lines": lost_lines, "distinct_payments": len(lost_ids)}
    out["duplicated_rows"] = duplicated
    out["regressed_rows"] = len(pgc.regressed)
    out["field_mismatches"] = lake_field + len(pgc.mismatched) + len(pgc.ahead) + len(missing_latest)
    out["accounting_mismatches"] = accounting
    out["report_mismatches"] = out["reports"]["mismatches"]
    out["ledger_mismatches"] = out["ledger"]["mismatched_hours"]
    return out


def _orphans_by_token(lake: Lake, hours: list[datetime]) -> dict[str, set[str]]:
    """Curated Parquet files named for each landing hour (lh-<token>-...), whatever a manifest says."""
    tokens = {hour_token(h) for h in hours}
    out: dict[str, set[str]] = defaultdict(set)
    for o in lake.keys(CURATED_PREFIX):
        name = o["Key"].rsplit("/", 1)[-1]
        if name.startswith("lh-") and name.endswith(".parquet"):
            token = name[3:].split("-", 1)[0]
            if token in tokens:
                out[token].add(o["Key"])
    return out


def _check_ledger(api: Api, expectations: list[expect.HourExpectation]) -> dict:
    by_day: dict[date, list[expect.HourExpectation]] = defaultdict(list)
    for e in expectations:
        by_day[e.hour.date()].append(e)
    mismatched, examples, status = 0, [], "ok"
    for day, hs in sorted(by_day.items()):
        r = api.get("/reports/pipeline-recon", date=day.isoformat())
        if r.status_code != 200:
            status = f"GET /reports/pipeline-recon?date={day} answered HTTP {r.status_code}"
            mismatched += len(hs)
            examples.append(f"{day}: HTTP {r.status_code} {r.text[:200]}")
            continue
        entries = _ledger_entries(r.json())
        for e in hs:
            diffs = expect.diff_ledger_hour(entries.get(e.hour), expect.expected_ledger(e))
            if diffs:
                mismatched += 1
                examples.append(f"{e.hour:%Y-%m-%dT%H}: {'; '.join(diffs)}")
    return {"status": status, "mismatched_hours": mismatched, "hours": len(expectations), "examples": examples[:EXAMPLES]}


def _ledger_entries(body) -> dict[datetime, dict]:
    """{landing hour: entry} from the ledger's answer (a list of hours under `hours`, or the list itself)."""
    items = body
    if isinstance(body, dict):
        items = next((v for k, v in body.items() if isinstance(v, list) and k in ("hours", "landing_hours", "items")), [])
    out = {}
    for item in items:
        value = item.get("landing_hour") or item.get("hour")
        if value:
            hour = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            out[(hour if hour.tzinfo else hour.replace(tzinfo=UTC)).astimezone(UTC)] = item
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
