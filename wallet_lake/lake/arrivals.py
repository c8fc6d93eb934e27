"""What the landing sensor lists each tick and which landing hours it asks for (pure: no Dagster, no I/O).

A processor writes raw/payments/dt=YYYY/MM/DD/HH/*.ndjson all the time, including into the hour
that is still open, whose Dagster partition does not exist yet. The rules:

- **Identity is (key, ETag), not LastModified.** The cursor keeps, per landing hour, a digest of
  the (key, ETag) pairs it last accounted for. An hour is *changed* when the digest of what is
  listed now differs: a new object, or an object rewritten with new content, whatever its
  LastModified (a slow upload keeps the time it started, older than anything seen since). An
  object seen before changes nothing, so nothing is asked for twice.
- **Open hours wait.** A changed hour is *ready* once its partition exists at `now - settle`
  (it closed at least `settle` seconds ago); until then it waits in the cursor and no run is
  asked for. A change to an hour that has already closed and settled (a late file, a replay)
  is ready on the tick that sees it.
- **A tick lists a bounded set of prefixes.** The `lookback_days` most recent UTC days in full
  (day prefixes raw/payments/dt=YYYY/MM/DD/), the hour prefixes of waiting hours outside those
  days, and one older day of the `backstop_days` before them, in rotation (newest first). A
  write to a lookback day is found on the next tick, to a backstop day within
  `backstop_days + 1` ticks; older days are not watched (materialize such an hour by hand).
  The cost of a tick does not grow with history.
- **The cursor is bounded.** Only the tracked days (lookback + backstop) keep hour digests: at
  most (lookback_days + backstop_days) x 24 short entries, pruned as days age out.
- **A day seen for the first time** (first tick, lost or older cursor, a longer window) has no
  digests to compare with: its hours are ready with `known=False`, and the sensor skips those
  already curated after their newest object.

The sensor (defs/landing/sensors.py) lists `plan_listing(...).prefixes`, hands the listings to
`evaluate(...)`, turns the ready hours into run requests and stores `dump_cursor(result.state)`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Sequence

from wallet_lake.contracts.landing import hour_from_partition_key, landing_hour_of_key, landing_prefix, partition_key_for_hour
from wallet_lake.lake.store import ObjectInfo
from wallet_lake.settings import LandingSettings, default, load

CURSOR_VERSION = 2
HOUR = timedelta(hours=1)
_DIGEST_CHARS = 12  # 48 bits: a missed change needs a collision between two states of one hour
_OUT_OF_LAYOUT = "?"  # day-state entry: digest of the day's .ndjson keys outside the landing layout


@dataclass(frozen=True)
class ArrivalSettings:
    """The sensor's settings (declared once, with bounds and docs: wallet_lake/settings.py
    LandingSettings; constructing one checks the same bounds)."""

    settle_seconds: int = default(LandingSettings, "landing_settle_seconds")
    lookback_days: int = default(LandingSettings, "landing_lookback_days")
    backstop_days: int = default(LandingSettings, "landing_backstop_days")

    def __post_init__(self) -> None:
        load(LandingSettings, {}, **{f"landing_{f.name}": getattr(self, f.name) for f in fields(self)})

    @property
    def settle(self) -> timedelta:
        return timedelta(seconds=self.settle_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ArrivalSettings":
        """Settings from the environment; unset or empty variables take the defaults."""
        landing = load(LandingSettings, environ)
        return cls(settle_seconds=landing.landing_settle_seconds, lookback_days=landing.landing_lookback_days,
                   backstop_days=landing.landing_backstop_days)


# --- cursor -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrivalState:
    """The sensor's cursor. `days` maps each tracked UTC day ("YYYY-MM-DD") to the digests its
    hours ("HH") were last accounted for with (asked for, found already curated, or rejected); a
    day present with no hours was listed and empty. `waiting` lists the partition keys of changed
    hours that are not ready yet. `next_old_day` is the backstop's next day."""

    days: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    waiting: tuple[str, ...] = ()
    next_old_day: str | None = None


def load_cursor(text: str | None) -> tuple[ArrivalState, str | None]:
    """The state in a cursor, and a note when the cursor was not one of ours (then the state is
    empty: every tracked day is read as new, and hours already curated are not asked for again)."""
    if not text:
        return ArrivalState(), None
    try:
        data = json.loads(text)
    except ValueError:
        return ArrivalState(), "landing sensor cursor is not JSON; starting over from the tracked days"
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return ArrivalState(), f"landing sensor cursor is not version {CURSOR_VERSION} (an older sensor's); starting over from the tracked days"
    days = {str(d): {str(h): str(v) for h, v in (hours or {}).items()} for d, hours in (data.get("days") or {}).items()}
    return ArrivalState(days=days, waiting=tuple(data.get("waiting") or ()), next_old_day=data.get("next_old_day")), None


def dump_cursor(state: ArrivalState) -> str:
    """Compact, key-sorted JSON: equal states give equal cursors."""
    body = {
        "v": CURSOR_VERSION,
        "next_old_day": state.next_old_day,
        "waiting": sorted(state.waiting),
        "days": {d: dict(sorted(h.items())) for d, h in sorted(state.days.items())},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


# --- what to list -----------------------------------------------------------------------------


def day_prefix(day: date) -> str:
    """raw/payments/dt=YYYY/MM/DD/ (the landing hour prefix without its HH/)."""
    return landing_prefix(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))[: -len("HH/")]


def _day_id(day: date) -> str:
    return day.isoformat()


def tracked_days(now: datetime, settings: ArrivalSettings) -> tuple[list[date], list[date]]:
    """(lookback days newest first, backstop days newest first), UTC."""
    today = now.astimezone(timezone.utc).date()
    lookback = [today - timedelta(days=i) for i in range(settings.lookback_days)]
    backstop = [today - timedelta(days=settings.lookback_days + i) for i in range(settings.backstop_days)]
    return lookback, backstop


@dataclass(frozen=True)
class ListingPlan:
    days: tuple[date, ...]  # listed in full: the lookback days, then this tick's backstop day
    hours: tuple[datetime, ...]  # waiting hours whose day is not listed in full
    old_day: date | None  # the backstop day of this tick
    next_old_day: date | None

    @property
    def prefixes(self) -> list[str]:
        return [day_prefix(d) for d in self.days] + [landing_prefix(h) for h in self.hours]


def plan_listing(state: ArrivalState, now: datetime, settings: ArrivalSettings) -> ListingPlan:
    lookback, backstop = tracked_days(now, settings)
    old_day = next_old = None
    if backstop:
        wanted = date.fromisoformat(state.next_old_day) if state.next_old_day else None
        old_day = wanted if wanted in backstop else backstop[0]  # newest first; restart when it fell out
        i = backstop.index(old_day)
        next_old = backstop[i + 1] if i + 1 < len(backstop) else backstop[0]
    days = tuple(lookback) + ((old_day,) if old_day else ())
    hours = tuple(sorted(h for h in (_hour_of_partition_key(pk) for pk in state.waiting) if h and h.date() not in days))
    return ListingPlan(days=days, hours=hours, old_day=old_day, next_old_day=next_old)


# --- what changed -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadyHour:
    """A changed hour whose partition exists: the sensor asks for it (unless `known` is false and
    it was already curated after `newest`, see the sensor)."""

    hour: datetime
    digest: str
    objects: int
    newest: datetime  # newest LastModified among its objects
    known: bool  # its day was tracked before this tick, so the change is new since then

    @property
    def partition_key(self) -> str:
        return partition_key_for_hour(self.hour)

    @property
    def run_key(self) -> str:
        """Deterministic: the same hour with the same objects is the same run."""
        return f"{self.partition_key}@{self.digest}"


@dataclass(frozen=True)
class WaitingHour:
    hour: datetime
    objects: int
    ready_at: datetime  # when the hour has closed and settled

    @property
    def partition_key(self) -> str:
        return partition_key_for_hour(self.hour)


@dataclass(frozen=True)
class TickResult:
    ready: list[ReadyHour]
    waiting: list[WaitingHour]
    warnings: list[str]
    state: ArrivalState


def hour_digest(objects: Iterable[ObjectInfo]) -> str:
    """Digest of an hour's (key, ETag) pairs; a store without ETags falls back to size and time."""
    h = hashlib.sha256()
    for o in sorted(objects, key=lambda o: o.key):
        tag = o.etag or f"{o.size}@{o.last_modified.isoformat()}"
        h.update(f"{o.key}\t{tag}\n".encode())
    return h.hexdigest()[:_DIGEST_CHARS]


def _hour_of_partition_key(pk: str) -> datetime | None:
    try:
        return hour_from_partition_key(pk)
    except ValueError:  # not written by this module: ignored (the hour is found again by listing)
        return None


def _landing_hour(key: str) -> datetime | None:
    """The key's landing hour when the key is exactly in the layout (dt=…/HH/name.ndjson)."""
    try:
        hour = landing_hour_of_key(key)
    except ValueError:  # dt=2026/02/30/25/ parses as digits but is no date
        return None
    return hour if hour is not None and key.startswith(landing_prefix(hour)) else None


def evaluate(
    state: ArrivalState,
    plan: ListingPlan,
    listings: Mapping[str, Sequence[ObjectInfo]],
    now: datetime,
    settings: ArrivalSettings,
    partition_exists: Callable[[datetime, datetime], bool],
) -> TickResult:
    """Compare this tick's listings (prefix -> objects, for every prefix of `plan`) with the state.

    `partition_exists(hour, at)` says whether the hour's partition exists at instant `at` (the
    partitions definition decides, not this module)."""
    now = now.astimezone(timezone.utc)
    missing = [p for p in plan.prefixes if p not in listings]
    if missing:
        raise ValueError(f"no listing for {missing}: list every prefix of the plan")

    by_hour: dict[datetime, list[ObjectInfo]] = {}
    out_of_layout: dict[str, list[ObjectInfo]] = {}
    for prefix in plan.prefixes:
        for o in listings[prefix]:
            if not o.key.endswith(".ndjson"):
                continue  # not a landing object (markers, temporary uploads); curation ignores them too
            hour = _landing_hour(o.key)
            if hour is None:
                out_of_layout.setdefault(prefix, []).append(o)
            else:
                by_hour.setdefault(hour, []).append(o)

    covered: list[datetime] = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + i * HOUR for d in plan.days for i in range(24)]
    covered += list(plan.hours)

    days = {d: dict(h) for d, h in state.days.items()}
    for d in plan.days:
        days.setdefault(_day_id(d), {})
    ready: list[ReadyHour] = []
    waiting: list[WaitingHour] = []
    warnings: list[str] = []

    for hour in covered:
        day_id, hh = _day_id(hour.date()), f"{hour.hour:02d}"
        day = days.setdefault(day_id, {})
        accounted = day.get(hh)
        objs = by_hour.get(hour, [])
        if not objs and accounted is None:
            continue
        pk = partition_key_for_hour(hour)
        if not objs:
            if accounted is not None:
                warnings.append(f"landing hour {pk}: its objects were deleted from {landing_prefix(hour)}; its curated data "
                                f"is unchanged (rerun the partition by hand if that is intended)")
                day.pop(hh, None)
            continue
        digest = hour_digest(objs)
        if digest == accounted:
            continue
        ready_at = hour + HOUR + settings.settle
        if partition_exists(hour, now - settings.settle):
            ready.append(ReadyHour(hour, digest, len(objs), max(o.last_modified for o in objs), known=day_id in state.days))
            day[hh] = digest
        elif ready_at <= now:
            # Closed and settled but no partition: outside the partitions definition (before its start).
            warnings.append(f"landing hour {pk} is not a partition of the pipeline (outside hourly_landing): its "
                            f"{len(objs)} objects under {landing_prefix(hour)} are not curated; move them into a valid hour")
            day[hh] = digest
        else:
            waiting.append(WaitingHour(hour, len(objs), ready_at))

    for prefix, objs in sorted(out_of_layout.items()):
        day_of_prefix = next((d for d in plan.days if prefix == day_prefix(d)), None)
        hour_of_prefix = next((h for h in plan.hours if prefix == landing_prefix(h)), None)
        day_id = _day_id(day_of_prefix or hour_of_prefix.date())  # type: ignore[union-attr]
        digest = hour_digest(objs)
        if days[day_id].get(_OUT_OF_LAYOUT) != digest:
            sample = ", ".join(o.key for o in objs[:5])
            warnings.append(f"{len(objs)} .ndjson objects under {prefix} are outside the landing layout "
                            f"raw/payments/dt=YYYY/MM/DD/HH/<name>.ndjson and are ignored: {sample}")
            days[day_id][_OUT_OF_LAYOUT] = digest
    for d in plan.days:  # the key goes when the day has no such objects any more
        if day_prefix(d) not in out_of_layout:
            days[_day_id(d)].pop(_OUT_OF_LAYOUT, None)

    # Prune: only tracked days keep state; waiting hours are listed again next tick.
    lookback, backstop = tracked_days(now, settings)
    keep = {_day_id(d) for d in lookback + backstop}
    days = {d: h for d, h in days.items() if d in keep}
    new_state = ArrivalState(
        days=days,
        waiting=tuple(sorted(w.partition_key for w in waiting if _day_id(w.hour.date()) in keep)),
        next_old_day=_day_id(plan.next_old_day) if plan.next_old_day else None,
    )
    return TickResult(sorted(ready, key=lambda r: r.hour), sorted(waiting, key=lambda w: w.hour), warnings, new_state)


def backstop_skip_reason(listed: Sequence[ObjectInfo], curated_run_started: datetime | None,
                         raw_counted: tuple[int, int] | None) -> str | None:
    """Why the :20 backstop schedule need not run a closed hour again, or None to run it.

    The landing sensor runs an hour as soon as it has closed and settled; the schedule then finds
    the same objects and would curate the hour a second time (a 1M-event hour: two minutes of
    both cores). It skips only when the hour's latest curation is of what is listed now: its run
    started after the newest object's LastModified, and that run's raw step counted the same
    number of objects and bytes (`raw_counted`; None when unknown, e.g. a backfill counted several
    hours together, or when that run failed after curating). Anything else (never curated, an object since, a different count) runs.
    The sensor still sees every change by (key, ETag), so a rewrite this misses is not lost. Pure."""
    if not listed:
        return None  # an empty hour: the run records it (ledger, manifest) as the schedule always did
    if curated_run_started is None or raw_counted is None:
        return None
    newest = max(o.last_modified for o in listed)
    objects, size = raw_counted
    if curated_run_started <= newest or objects != len(listed) or size != sum(o.size for o in listed):
        return None
    return (f"already curated by a run started {curated_run_started.isoformat()}, after its newest object "
            f"({newest.isoformat()}), of the same {objects} objects and {size} bytes")
