"""Helpers of the hard fault tests (test_fault_*.py): a load whose every payment passes through
two states, the checks run after a recovery (every row once with its newest values, no dead
letters, report aggregates equal to a recomputation), and the recovery clock.

The expected rows are built here, field by field, and the report figures are recomputed here
from the table's rows by the definitions the README and migration 0002 give (decline reason
mapping, log-linear latency buckets, month to date), without wallet_lake.serving.aggregates:
a shared mistake would otherwise pass unseen."""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from wallet_lake.contracts.schema import CURATED_COLUMNS
from wallet_lake.serving.connect import committed_offsets, end_offsets, sink_group_id
from wallet_lake_tests.integration.sink_support import (
    curated_row, delete_rows, ensure_sink_running, stack_healthy, start_stack, wait_for_shared_sink, wait_until,
)

UTC = timezone.utc
FINAL_STATUSES = ("APPROVED", "DECLINED", "FAILED", "CANCELLED", "REFUNDED", "CHARGEBACK")
METHODS = ("card", "wallet", "bank_transfer", "", None)
DECLINE_REASONS = ("insufficient_funds", "do_not_honor", "", None)
# How many payments later in the stream a payment's final state follows its PENDING one: the
# two states of a payment travel in different sink batches, so a replay after a crash passes
# through the older state again.
FINAL_STATE_LAG = 400
# The bound the report refresher promises (issue 11: staleness <= 120 s after a recovery).
REPORTS_CONSISTENT_WITHIN_S = 120.0


# ---------------------------------------------------------------- the load
@dataclass
class Load:
    records: list[dict]  # in publish order: every payment's PENDING state, its final state later
    final: dict[str, dict]  # payment_id -> the row Postgres must hold in the end

    @property
    def ids(self) -> list[str]:
        return list(self.final)

    @property
    def dts(self) -> list[date]:
        """Every dt a state of the load touches (a payment that moved leaves its old dt)."""
        return sorted({r["dt"] for r in self.records})


def _state(payment_id: str, created_at: datetime, status: str, rng: random.Random, common: dict) -> dict:
    """One curated state of a payment, derived as the curation rules would (dt, hour, latency,
    flags); timestamps at whole milliseconds, which is what the sink stores."""
    authorized = completed = ms = None
    if status != "PENDING":
        completed = created_at
        if status not in ("DECLINED", "FAILED"):  # declined and failed ones never authorized
            ms = rng.choice((rng.randrange(0, 128), rng.randrange(128, 5_000), rng.randrange(5_000, 600_000)))
            authorized = completed - timedelta(milliseconds=ms)
    return curated_row(
        payment_id, created_at, status,
        authorized_at=authorized, completed_at=completed, authorized_to_complete_ms=ms,
        decline_reason=rng.choice(DECLINE_REASONS) if status == "DECLINED" else None,
        **common,
    )


def payment_lifecycles(prefix: str, n: int, day: date, seed: int | None = None) -> Load:
    """n payments created from 23:00 of `day` on (the load crosses midnight), each published as
    PENDING and then, FINAL_STATE_LAG payments later, in its final state; one refund or
    chargeback in ten is created two days later, so its payment moves to another dt."""
    rng = random.Random(seed if seed is not None else time.time_ns())
    start = datetime(day.year, day.month, day.day, 23, tzinfo=UTC)
    step_ms = max(1, (2 * 3600 * 1000) // n)  # n payments over two hours
    pendings, finals = [], []
    for i in range(n):
        pid = f"{prefix}{i:06d}"
        created = start + timedelta(milliseconds=i * step_ms + rng.randrange(step_ms))
        common = {
            "merchant_id": f"m-fault-{i % 5}",
            "user_id": f"u-{rng.randrange(10_000)}",
            "amount_cents": rng.randrange(1, 5_000_000),
            "currency": ("EUR", "USD", "GBP")[i % 3],
            "payment_method": rng.choice(METHODS),
            "risk_score": rng.random(),
        }
        pendings.append(_state(pid, created, "PENDING", rng, common))
        status = rng.choice(FINAL_STATUSES)
        later = timedelta(milliseconds=rng.randrange(1, 90_000))
        if status in ("REFUNDED", "CHARGEBACK") and rng.random() < 0.1:
            later += timedelta(days=2)
        finals.append(_state(pid, created + later, status, rng, common))
    records: list[dict] = []
    for i in range(n):
        records.append(pendings[i])
        if i >= FINAL_STATE_LAG:
            records.append(finals[i - FINAL_STATE_LAG])
    records += finals[max(0, n - FINAL_STATE_LAG):]
    return Load(records=records, final={r["payment_id"]: r for r in finals})


# ---------------------------------------------------------------- rows
def rows_complete(pg, load: Load) -> int:
    """How many payments of the load hold their final state (by created_at and status) in Postgres."""
    ids = load.ids
    with pg.connect() as conn:
        return conn.execute(
            """SELECT count(*) FROM curated_payments c
               JOIN unnest(%s::text[], %s::timestamptz[], %s::text[]) AS e(payment_id, created_at, status)
                 ON c.payment_id = e.payment_id AND c.created_at = e.created_at AND c.status = e.status""",
            (ids, [load.final[i]["created_at"] for i in ids], [load.final[i]["status"] for i in ids]),
        ).fetchone()[0]


def count_loaded_or_none(pg, load: Load) -> int | None:
    """Payments of the load in Postgres (any state); None while Postgres does not answer."""
    import psycopg

    try:
        with pg.connect() as conn:
            return conn.execute("SELECT count(*) FROM curated_payments WHERE payment_id = ANY(%s)", (load.ids,)).fetchone()[0]
    except psycopg.OperationalError:
        return None


def assert_every_row_once_with_its_final_values(pg, prefix: str, load: Load) -> None:
    """Exactly the load's payments under the run's prefix, once each, every column equal to the
    final state built by the test (a regressed row would show its PENDING values)."""
    like = prefix.replace("_", r"\_") + "%"
    cols = ", ".join(CURATED_COLUMNS)
    with pg.connect() as conn:
        got = conn.execute(f"SELECT {cols} FROM curated_payments WHERE payment_id LIKE %s", (like,)).fetchall()
    assert len(got) == len(load.final), f"{len(got)} rows under {prefix} for {len(load.final)} payments"
    stored = {r[0]: dict(zip(CURATED_COLUMNS, r)) for r in got}
    assert set(stored) == set(load.final)
    regressed = [pid for pid, row in stored.items() if row["status"] == "PENDING" and load.final[pid]["status"] != "PENDING"]
    assert not regressed, f"{len(regressed)} payments back in PENDING, e.g. {regressed[:5]}"
    wrong = {
        pid: {c: (stored[pid][c], want[c]) for c in CURATED_COLUMNS if stored[pid][c] != want[c]}
        for pid, want in load.final.items()
        if any(stored[pid][c] != want[c] for c in CURATED_COLUMNS)
    }
    assert not wrong, f"{len(wrong)} rows differ from their final state (column: (stored, expected)), e.g. {dict(list(wrong.items())[:3])}"


# ---------------------------------------------------------------- dead letters
def dead_letter_topic(res) -> str:
    """The sink's dead-letter topic, as the deployed connector names it."""
    c = res["connect"]
    return c.client().config(c.connector_name)["errors.deadletterqueue.topic.name"]


def topic_ends(kafka, topic: str) -> dict[int, int]:
    """High watermarks of a topic; {} when it does not exist (yet)."""
    if topic not in kafka.admin().list_topics(timeout=15).topics:
        return {}
    return end_offsets(kafka.client_config(), topic)


def dead_letters_with_prefix(kafka, topic: str, since: dict[int, int], prefix: str, timeout: float = 60.0) -> list[bytes]:
    """Keys starting with `prefix` among the records of `topic` from `since` to its current end."""
    from confluent_kafka import Consumer, TopicPartition

    ends = {p: e for p, e in topic_ends(kafka, topic).items() if e > since.get(p, 0)}
    if not ends:
        return []
    c = Consumer({**kafka.client_config(), "group.id": f"t-dlq-reader-{uuid.uuid4().hex}", "enable.auto.commit": False})
    found: list[bytes] = []
    try:
        c.assign([TopicPartition(topic, p, since.get(p, 0)) for p in ends])
        pending = dict(ends)
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"timed out reading {topic}: still to read {pending}"
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"reading {topic}: {msg.error()}"
            if (msg.key() or b"").startswith(prefix.encode()):
                found.append(msg.key())
            if msg.offset() + 1 >= pending.get(msg.partition(), 0):
                pending.pop(msg.partition(), None)
    finally:
        c.close()
    return found


# ---------------------------------------------------------------- report aggregates
def _latency_bucket(ms: int) -> tuple[int, int]:
    """(lo, width): 1 ms buckets below 128 ms, then 32 per power of two (capped at 2^42)."""
    if ms < 128:
        return ms, 1
    width = 2 ** min(ms.bit_length() - 1, 42) // 32
    return ms - ms % width, width


def _reason(status: str, reason: str | None) -> str:
    if status != "DECLINED":
        return ""
    return reason or "unknown"


def _method(method: str | None) -> str:
    return method or "unknown"


def recompute_reports(conn, dts: list[date]) -> dict[str, set]:
    """The five report relations of `dts`, recomputed from curated_payments in this test."""
    status: dict = defaultdict(lambda: [0, 0])
    for day, merchant, currency, st, reason, n, amount in conn.execute(
        """SELECT dt, merchant_id, currency, status, decline_reason, count(*), sum(amount_cents)
           FROM curated_payments WHERE dt = ANY(%s) GROUP BY 1, 2, 3, 4, 5""", (dts,)):
        acc = status[(merchant, day, currency, st, _reason(st, reason))]
        acc[0] += n
        acc[1] += int(amount)
    status_all: dict = defaultdict(lambda: [0, 0])
    for (merchant, day, currency, st, reason), (n, amount) in status.items():
        acc = status_all[(day, currency, st, reason)]
        acc[0] += n
        acc[1] += amount

    # Latency: per day, method and bucket [count, sum, min, max]; the month to date needs every
    # day of each touched month up to the last touched day.
    first = min(dts).replace(day=1)
    daily: dict = {}
    for day, method, ms, n in conn.execute(
        """SELECT dt, payment_method, authorized_to_complete_ms, count(*) FROM curated_payments
           WHERE dt BETWEEN %s AND %s AND authorized_to_complete_ms IS NOT NULL GROUP BY 1, 2, 3""", (first, max(dts))):
        lo, width = _latency_bucket(ms)
        key = (day, _method(method), lo)
        acc = daily.setdefault(key, [width, 0, 0, ms, ms])
        acc[1] += n
        acc[2] += ms * n
        acc[3] = min(acc[3], ms)
        acc[4] = max(acc[4], ms)
    wanted = set(dts)
    latency = {(d, m, lo, a[0], a[1], a[2], a[3], a[4]) for (d, m, lo), a in daily.items() if d in wanted}
    totals: dict = defaultdict(lambda: [0, 0, 0])
    for (d, m, lo), a in daily.items():
        if d in wanted:
            t = totals[(d, m)]
            t[0] += a[1]
            t[1] += a[2]
            t[2] = max(t[2], a[4])
    mtd = set()
    days_with_latency = {d for (d, _, _) in daily}
    for d in wanted & days_with_latency:
        running: dict = {}
        for (day, m, lo), a in daily.items():
            if day.replace(day=1) == d.replace(day=1) and day <= d:
                r = running.setdefault((m, lo), [a[0], 0, a[3], a[4]])
                r[1] += a[1]
                r[2] = min(r[2], a[3])
                r[3] = max(r[3], a[4])
        mtd |= {(d, m, lo, r[0], r[1], r[2], r[3]) for (m, lo), r in running.items()}
    return {
        "report_status_daily": {(*k, *v) for k, v in status.items()},
        "report_status_daily_all": {(*k, *v) for k, v in status_all.items()},
        "report_latency_daily": latency,
        "report_latency_totals_daily": {(*k, *v) for k, v in totals.items()},
        "report_latency_mtd": mtd,
    }


_STORED = {
    "report_status_daily": "merchant_id, dt, currency, status, decline_reason, payment_count, amount_cents",
    "report_status_daily_all": "dt, currency, status, decline_reason, payment_count, amount_cents",
    "report_latency_daily": "dt, payment_method, bucket_lo, bucket_width, payment_count, sum_ms, min_ms, max_ms",
    "report_latency_totals_daily": "dt, payment_method, payment_count, sum_ms, max_ms",
    "report_latency_mtd": "dt, payment_method, bucket_lo, bucket_width, payment_count, min_ms, max_ms",
}


def stored_reports(conn, dts: list[date]) -> dict[str, set]:
    return {
        table: {tuple(row) for row in conn.execute(f"SELECT {cols} FROM {table} WHERE dt = ANY(%s)", (dts,))}
        for table, cols in _STORED.items()
    }


def report_differences(pg, dts: list[date]) -> dict[str, dict]:
    """Per report relation that differs from the recomputation: rows only stored, only recomputed
    (a few of each). Read in one snapshot, so a concurrent load cannot make them differ."""
    with pg.connect() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        stored, want = stored_reports(conn, dts), recompute_reports(conn, dts)
    return {
        t: {"stored_only": sorted(stored[t] - want[t], key=str)[:3], "expected_only": sorted(want[t] - stored[t], key=str)[:3],
            "stored_rows": len(stored[t]), "expected_rows": len(want[t])}
        for t in _STORED if stored[t] != want[t]
    }


def refresher_tick(pg) -> None:
    """One tick of the product's report refresher, the Dagster sensor
    `report_aggregates_refresher` (what the daemon runs every WL_AGGREGATES_REFRESH_INTERVAL_S):
    it drains the dts that changes to curated_payments marked and refreshes their aggregates,
    with nobody naming a dt. The tests never refresh the dts they loaded by name: that would
    hide aggregates gone stale."""
    from dataclasses import replace
    from unittest import mock

    import dagster as dg

    from wallet_lake.defs.serving import aggregates_refresher as refresher

    # As a tick once the dts are quiet: the faults' writes are seconds old, and the daemon's
    # ticks would leave them for WL_AGGREGATES_REFRESH_QUIET_S first (only slower, not different).
    with mock.patch.object(refresher, "SETTINGS", replace(refresher.SETTINGS, quiet_s=0.0)):
        refresher.report_aggregates_refresher(dg.build_sensor_context(resources={"postgres": pg}))


def wait_reports_consistent(pg, dts: list[date], timeout: float = REPORTS_CONSISTENT_WITHIN_S) -> list[float]:
    """Until the aggregates of `dts` equal the recomputation, running the refresher's ticks
    back to back (the daemon waits WL_AGGREGATES_REFRESH_INTERVAL_S between two). Returns the
    seconds each tick took."""
    last: dict = {}
    ticks: list[float] = []

    def consistent() -> bool:
        started = time.monotonic()
        refresher_tick(pg)
        ticks.append(round(time.monotonic() - started, 1))
        last["differences"] = report_differences(pg, dts)
        return not last["differences"]

    try:
        wait_until(f"report aggregates of {[str(d) for d in dts]} to equal the recomputation", consistent, timeout, poll=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; refresher ticks {ticks} s; still differing: {last.get('differences')}") from None
    return ticks


# ---------------------------------------------------------------- recovery clock
@dataclass
class RecoveryClock:
    """Seconds from the fault to each recovery milestone (reported, never asserted: timings
    depend on the machine)."""
    fault: str
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)

    def mark(self, milestone: str) -> None:
        self.marks.setdefault(milestone, round(time.monotonic() - self.started, 1))

    def note(self, name: str, value) -> None:
        self.notes[name] = value

    def report(self, record_property) -> None:
        for milestone, seconds in self.marks.items():
            record_property(f"{milestone}_s", seconds)
        for name, value in self.notes.items():
            record_property(name, value)
        print(f"\nrecovery [{self.fault}]: " + ", ".join(f"{m} {s} s" for m, s in self.marks.items())
              + "".join(f"; {n} {v}" for n, v in self.notes.items()))


# ---------------------------------------------------------------- the whole check
def merged_end_offsets(*published) -> dict[int, int]:
    """The offsets the sink must pass for several publishes: the highest per partition."""
    out: dict[int, int] = {}
    for result in published:
        for p, o in result.end_offsets.items():
            out[p] = max(o, out.get(p, 0))
    return out


def sink_behind(res, targets: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Partitions whose committed sink offset is short of `targets`: (committed, needed)."""
    kafka, connect = res["kafka"], res["connect"]
    committed = committed_offsets(kafka.client_config(), sink_group_id(connect.connector_name), kafka.topic, list(targets))
    return {p: (committed.get(p, -1), o) for p, o in targets.items() if committed.get(p, -1) < o}


def assert_recovered(res, prefix: str, load: Load, targets: dict[int, int], dlq: str, dlq_since: dict[int, int],
                     clock: "RecoveryClock", record_property, rows_timeout: float = 300.0) -> None:
    """After the operator's recovery: every payment in its final state (timed), the sink past
    every published offset, the report aggregates of every touched dt equal to the
    recomputation through the refresher alone (timed), every row once with its values, and no
    record of the run in the dead-letter topic."""
    pg = res["postgres"]
    ensure_sink_running(res)
    wait_until(f"all {len(load.final)} payments in their final state", lambda: rows_complete(pg, load) == len(load.final), rows_timeout, poll=0.5)
    clock.mark("rows_complete")
    wait_for_shared_sink(res, targets, timeout=rows_timeout)
    clock.mark("sink_committed")
    ticks = wait_reports_consistent(pg, load.dts)
    clock.mark("reports_consistent")
    clock.note("refresher_ticks_s", ticks)
    clock.report(record_property)
    assert_every_row_once_with_its_final_values(pg, prefix, load)
    assert dead_letters_with_prefix(res["kafka"], dlq, dlq_since, prefix) == [], f"records of this run in {dlq}"


def restore_stack_and_remove_rows(res, prefix: str) -> None:
    """Teardown of every fault test, pass or fail: the stack healthy again the operator's way
    (`stack/wallet-stack up`, which the test body already ran after its fault: run again only
    when a service still does not answer), the sink RUNNING, then this run's rows removed
    (their dts are marked, so the refresher rebuilds those days' aggregates)."""
    try:
        if not stack_healthy(res):
            start_stack()
        ensure_sink_running(res)
    finally:
        delete_rows(res["postgres"], prefix)
        refresher_tick(res["postgres"])  # as the product's refresher would, soon after
