"""Leases on landing hours: at most one run works on a landing hour at a time, whoever launched
it (sensor, schedule, UI backfill, `dagster asset materialize`, a Glue job driven by a run).

A lease is a row of `landing_hour_leases` (migration 0007) in the wallet_lake database, held by a
run id. A run takes the leases of all its hours at once, all or none, so two runs never hold
parts of each other's hours and never deadlock; the hours are locked in sorted order within one
transaction. A run may take its own leases again (every step of a run does). While it works, a
heartbeat thread renews them (expires_at = now + ttl).

A lease is free when it is absent, released, expired (no renewal within ttl: the holder is
presumed dead), or held by a run the orchestrator reports finished (a run whose worker was killed
and marked failed). A run that finds a live holder waits, polling, up to `wait`, then fails with
HourLeaseTimeout naming the holder. A holder that finds, on renewal, that another run took its
hour (it stalled past ttl) records it, and HourLease.check() raises HourLeaseLost.

Times are the database's (clock_timestamp()), so hosts with skewed clocks agree. No Dagster
import: the orchestrator is asked through a callable (wallet_lake/defs/ops/hour_leases.py)."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Sequence

import psycopg

from wallet_lake.settings import HourLeaseSettings, default, load

log = logging.getLogger("wallet_lake.ops.hour_leases")

TABLE = "landing_hour_leases"
_LOCK_CLASS = "landing_hour_leases"  # first key of the per-hour advisory locks (hashtext of it)

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]
# The orchestrator's view of a run: its final status ("FAILURE", "CANCELED", "SUCCESS") when it
# has finished, None while it runs or when the orchestrator does not know it.
FinishedStatus = Callable[[str], "str | None"]


def _never_finished(run_id: str) -> str | None:
    return None


# ------------------------------------------------------------------------------------- settings


def _seconds(field: str) -> timedelta:
    return timedelta(seconds=default(HourLeaseSettings, field))


@dataclass(frozen=True)
class LeaseSettings:
    """How long a lease lives without a heartbeat, and how long a second run waits (declared
    once, with bounds and docs: wallet_lake/settings.py HourLeaseSettings)."""

    ttl: timedelta = _seconds("hour_lease_ttl_seconds")
    handover: timedelta = _seconds("hour_lease_handover_seconds")
    wait: timedelta = _seconds("hour_lease_wait_seconds")
    poll: timedelta = _seconds("hour_lease_poll_seconds")

    @property
    def heartbeat(self) -> timedelta:
        """Renewal interval: four renewals per ttl, so one slow renewal loses nothing."""
        return self.ttl / 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LeaseSettings:
        s = load(HourLeaseSettings, env)
        return cls(ttl=timedelta(seconds=s.hour_lease_ttl_seconds), handover=timedelta(seconds=s.hour_lease_handover_seconds),
                   wait=timedelta(seconds=s.hour_lease_wait_seconds), poll=timedelta(seconds=s.hour_lease_poll_seconds))


# ------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class LeaseRow:
    landing_hour: datetime
    holder: str
    holder_detail: str | None
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    released_at: datetime | None
    previous_holder: str | None
    takeover_reason: str | None

    def describe(self, now: datetime) -> str:
        age = (now - self.heartbeat_at).total_seconds()
        where = f" ({self.holder_detail})" if self.holder_detail else ""
        return (f"{hour_label(self.landing_hour)} is held by run {self.holder}{where}, last heartbeat {age:.0f}s ago, "
                f"expires at {self.expires_at:%Y-%m-%dT%H:%M:%SZ}")


_COLUMNS = tuple(f.name for f in fields(LeaseRow))


def hour_label(hour: datetime) -> str:
    return f"{hour.astimezone(timezone.utc):%Y-%m-%dT%H}"


def why_free(row: LeaseRow | None, run_id: str, now: datetime, finished: FinishedStatus) -> str | None:
    """Why `run_id` may take this lease now, or None while another live run holds it.
    `finished` is asked only about a holder whose lease has not expired."""
    if row is None:
        return "new"
    if row.released_at is not None:
        return "released"
    if row.holder == run_id:
        return "own"
    if row.expires_at <= now:
        return f"expired (no heartbeat since {row.heartbeat_at:%Y-%m-%dT%H:%M:%SZ})"
    status = finished(row.holder)
    if status:
        return f"holder run {status}"
    return None


def taken_row(old: LeaseRow | None, reason: str, hour: datetime, run_id: str, detail: str, now: datetime, ttl: timedelta) -> LeaseRow:
    """The row after `run_id` takes the lease for `reason` (see why_free). Pure."""
    if reason == "own" and old is not None:  # renewal by the same run keeps its history
        return LeaseRow(hour, run_id, detail, old.acquired_at, now, now + ttl, None, old.previous_holder, old.takeover_reason)
    taken_from = old.holder if old is not None and reason not in ("new", "released") else None
    return LeaseRow(hour, run_id, detail, now, now, now + ttl, None, taken_from, reason if taken_from else None)


def epoch_hour(hour: datetime) -> int:
    """The hour's number since 1970 (the advisory lock's second key; fits int4 until 2215)."""
    seconds = int(hour.astimezone(timezone.utc).timestamp())
    if seconds % 3600:
        raise ValueError(f"{hour.isoformat()} is not a whole landing hour")
    return seconds // 3600


# ------------------------------------------------------------------------------------------- SQL

_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock(hashtext(%s), h) FROM (SELECT h FROM unnest(%s::int[]) AS h ORDER BY h) AS sorted"
)
_SELECT_SQL = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE landing_hour = ANY(%s) ORDER BY landing_hour FOR UPDATE"
_UPSERT_SQL = (
    f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
    f"ON CONFLICT (landing_hour) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in _COLUMNS[1:])}"
)
_RENEW_SQL = (
    f"UPDATE {TABLE} SET heartbeat_at = clock_timestamp(), expires_at = clock_timestamp() + %s, holder_detail = %s "
    "WHERE landing_hour = ANY(%s) AND holder = %s AND released_at IS NULL RETURNING landing_hour"
)
_RELEASE_SQL = (
    f"UPDATE {TABLE} SET released_at = clock_timestamp(), expires_at = clock_timestamp() "
    "WHERE landing_hour = ANY(%s) AND holder = %s AND released_at IS NULL RETURNING landing_hour"
)
_CURRENT_SQL = f"SELECT {', '.join(_COLUMNS)}, clock_timestamp() FROM {TABLE} WHERE landing_hour = ANY(%s) ORDER BY landing_hour"


def read_leases(connect: Connect, hours: Iterable[datetime]) -> tuple[list[LeaseRow], datetime]:
    """The lease rows of these hours (absent hours have none) and the database's time."""
    hours = sorted({h.astimezone(timezone.utc) for h in hours})
    with connect() as conn:
        rows = conn.execute(_CURRENT_SQL, (hours,)).fetchall()
        now = rows[0][-1] if rows else conn.execute("SELECT clock_timestamp()").fetchone()[0]
    return [LeaseRow(*r[:-1]) for r in rows], now


def _try_take(conn: psycopg.Connection, hours: Sequence[datetime], run_id: str, detail: str, ttl: timedelta,
              finished: FinishedStatus) -> tuple[list[LeaseRow], list[LeaseRow], datetime]:
    """One attempt, all or nothing: (rows taken, rows of live holders blocking, now). A taken
    row has previous_holder set only when this attempt took the hour from another run."""
    with conn.transaction():
        # Serialize acquirers per hour (rows may not exist yet, so row locks alone cannot), in
        # sorted order so two runs with overlapping hours never deadlock.
        conn.execute(_LOCK_SQL, (_LOCK_CLASS, [epoch_hour(h) for h in hours]))
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        current = {r[0]: LeaseRow(*r) for r in conn.execute(_SELECT_SQL, (list(hours),))}
        reasons = {h: why_free(current.get(h), run_id, now, finished) for h in hours}
        blocking = [current[h] for h, why in reasons.items() if why is None]
        if blocking:
            return [], blocking, now
        taken = [taken_row(current.get(h), reasons[h], h, run_id, detail, now, ttl) for h in hours]
        with conn.cursor() as cur:
            cur.executemany(_UPSERT_SQL, [tuple(getattr(r, c) for c in _COLUMNS) for r in taken])
        # A renewal by the same run keeps the row's history; only this attempt's takeovers count.
        return [replace(r, previous_holder=None, takeover_reason=None) if reasons[r.landing_hour] == "own" else r for r in taken], [], now


# ----------------------------------------------------------------------------------------- leases


class HourLeaseTimeout(RuntimeError):
    """Another run held some of the hours for longer than the wait."""

    def __init__(self, run_id: str, blocking: Sequence[LeaseRow], now: datetime, waited: timedelta, settings: LeaseSettings) -> None:
        self.blocking = list(blocking)
        self.holders = sorted({r.holder for r in blocking})
        held = "; ".join(r.describe(now) for r in blocking)
        super().__init__(
            f"run {run_id} waited {waited.total_seconds():.0f}s for landing hours another run holds: {held}. "
            f"Only one run may work on a landing hour at a time. Let run(s) {', '.join(self.holders)} finish, then rerun; "
            f"if such a run is dead, its hours are freed as soon as Dagster marks it failed or canceled, or at the latest "
            f"{settings.ttl.total_seconds():.0f}s after its last heartbeat (WL_HOUR_LEASE_TTL_SECONDS)."
        )


class HourLeaseLost(RuntimeError):
    """Another run took hours this run held (its heartbeat had stopped for longer than the ttl)."""


class HourLease:
    """The leases of one run on its hours. Renew with start_heartbeat() while working; end with
    release(), or extend() to hand the hours to the run's next step."""

    def __init__(self, connect: Connect, hours: Sequence[datetime], run_id: str, detail: str, settings: LeaseSettings,
                 taken: Sequence[LeaseRow]) -> None:
        self.connect, self.hours, self.run_id, self.detail, self.settings = connect, list(hours), run_id, detail, settings
        self.taken = list(taken)  # the rows as this attempt took them (previous_holder: taken from that run)
        self.lost: dict[datetime, str] = {}  # hour -> what holds it now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def takeovers(self) -> list[LeaseRow]:
        """Hours this acquisition took from another run that had not released them (dead or finished)."""
        return [r for r in self.taken if r.previous_holder]

    def _update(self, sql: str, params: tuple) -> set[datetime]:
        with self.connect() as conn:
            return {r[0] for r in conn.execute(sql, params)}

    def renew(self, ttl: timedelta | None = None) -> None:
        """Push expiry to now + ttl; hours another run took meanwhile are recorded in `lost`."""
        held = [h for h in self.hours if h not in self.lost]
        if not held:
            return
        renewed = self._update(_RENEW_SQL, (ttl or self.settings.ttl, self.detail, held, self.run_id))
        gone = [h for h in held if h not in renewed]
        if gone:
            rows, now = read_leases(self.connect, gone)
            by_hour = {r.landing_hour: r for r in rows}
            for h in gone:
                row = by_hour.get(h)
                self.lost[h] = row.describe(now) if row and row.released_at is None else f"{hour_label(h)} was released meanwhile"
            log.error("run %s lost landing hour lease(s): %s", self.run_id, "; ".join(self.lost[h] for h in gone))

    def extend(self, period: timedelta) -> None:
        """Keep the hours for `period` without heartbeats (until the run's next step takes them)."""
        self.renew(period)

    def release(self) -> list[datetime]:
        """Free the hours this run still holds; returns them."""
        self.stop_heartbeat()
        return sorted(self._update(_RELEASE_SQL, (self.hours, self.run_id)))

    def check(self) -> None:
        if self.lost:
            raise HourLeaseLost(
                f"run {self.run_id} lost landing hour lease(s) while it worked (no heartbeat reached the database for more than "
                f"{self.settings.ttl.total_seconds():.0f}s): " + "; ".join(self.lost[h] for h in sorted(self.lost))
                + ". Another run may have worked on these hours at the same time; rerun them once it is done."
            )

    def start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name=f"hour-lease-{self.run_id[:8]}", daemon=True)
            self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat.total_seconds()):
            try:
                self.renew()
            except psycopg.Error as e:  # the database is away: try again at the next beat, before the ttl runs out
                log.warning("run %s: renewing landing hour leases failed, retrying in %.0fs: %s",
                            self.run_id, self.settings.heartbeat.total_seconds(), e)


def acquire(
    connect: Connect,
    hours: Iterable[datetime],
    run_id: str,
    *,
    detail: str = "",
    settings: LeaseSettings = LeaseSettings(),
    finished: FinishedStatus = _never_finished,
    on_wait: Callable[[list[LeaseRow], datetime], None] | None = None,
) -> HourLease:
    """Take the leases of all `hours` for `run_id`, waiting while another live run holds any of
    them; raises HourLeaseTimeout after settings.wait. `on_wait(blocking rows, now)` is called
    at each attempt that finds a live holder."""
    hours = sorted({h.astimezone(timezone.utc) for h in hours})
    if not hours:
        raise ValueError("no landing hours to lease")
    started = time.monotonic()
    while True:
        blocking: list[LeaseRow] = []
        try:
            with connect() as conn:
                taken, blocking, now = _try_take(conn, hours, run_id, detail, settings.ttl, finished)
        except psycopg.errors.UndefinedTable as e:
            raise RuntimeError(f"table {TABLE} is missing: apply the Postgres migrations (python -m wallet_lake.provision postgres)") from e
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as e:
            log.info("run %s: lease attempt collided with another transaction, retrying: %s", run_id, e)
            continue
        if taken:
            for r in taken:
                if r.previous_holder:
                    log.warning("run %s took landing hour %s from run %s: %s", run_id, hour_label(r.landing_hour), r.previous_holder, r.takeover_reason)
            return HourLease(connect, hours, run_id, detail, settings, taken)
        if on_wait is not None:
            on_wait(blocking, now)
        waited = time.monotonic() - started
        if waited >= settings.wait.total_seconds():
            raise HourLeaseTimeout(run_id, blocking, now, timedelta(seconds=waited), settings)
        time.sleep(min(settings.poll.total_seconds(), settings.wait.total_seconds() - waited))
