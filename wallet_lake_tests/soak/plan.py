"""The soak's plan (pure: no I/O, no clock): which landing objects the writer puts where and when,
and which process is killed how. The writer (wallet_lake_tests/soak/run.py) executes it.

The writer stands in for the payment processor. From the generator's lines for a window of
landing hours it lands, per hour, several files:

- closed hours (the `hours` before the one open when the soak starts): files at once (the
  backlog the processor wrote during those hours) and, for every other hour, a late file at a
  later round;
- out-of-order states: for some approvals of a closed hour, a refund of the same payment is
  landed in a later closed hour first, and the approval itself only later, as a late file of its
  own (earlier) hour, after the refund's hour was processed: the approval arrives last but must
  not replace the refund;
- replays: a closed hour's file landed again under a new name (every line a duplicate), one file
  rewritten with the same bytes (a new LastModified), and a few lines of an old hour re-sent into
  the open hour;
- the open hour: its lines in parts, each part due at its share of the hour (the processor
  writing all the time); parts of an hour that closed meanwhile land after the close.

Every put has a writer round; whatever the soak did not reach by the end is flushed then, so all
the closed hours' files land. Open-hour parts never land before they are due."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from wallet_lake_tests.e2e.expected import validate

UTC = timezone.utc
HOUR = timedelta(hours=1)
TARGETS: tuple[str, ...] = ("broker", "connect", "postgres", "daemon", "run_worker", "api", "curation_worker")


@dataclass(frozen=True)
class Put:
    round: int
    hour: datetime
    name: str  # object name inside the hour's folder
    lines: tuple[str, ...]
    kind: str  # backlog | late | ooo_refund | held | replay | rewrite


@dataclass
class LandingPlan:
    seed: int
    closed: list[datetime]
    puts: list[Put]
    open_lines: dict[datetime, list[str]]  # hours that may be open while the soak runs
    open_part_seconds: int
    replay_into_open: tuple[str, ...]  # old lines re-sent into the open hour (at replay_round)
    replay_source: datetime | None
    replay_round: int
    held_payments: list[str] = field(default_factory=list)

    @property
    def parts_per_hour(self) -> int:
        return max(1, 3600 // self.open_part_seconds)


def _split(lines: list[str], shares: tuple[float, ...]) -> list[list[str]]:
    out, start = [], 0
    for i, share in enumerate(shares):
        end = len(lines) if i == len(shares) - 1 else start + round(len(lines) * share)
        out.append(lines[start:end])
        start = end
    return out


def _fmt(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _lone_approvals(lines_by_hour: dict[datetime, list[str]]) -> dict[datetime, list[tuple[int, dict]]]:
    """Per hour, (index, event) of valid APPROVED lines whose payment_id appears in no other line
    of the window (so nothing but the crafted refund competes with them)."""
    seen: dict[str, int] = {}
    for lines in lines_by_hour.values():
        for line in lines:
            try:
                pid = json.loads(line).get("payment_id")
            except (ValueError, AttributeError):
                continue
            if isinstance(pid, str):
                seen[pid] = seen.get(pid, 0) + 1
    out: dict[datetime, list[tuple[int, dict]]] = {}
    for hour, lines in lines_by_hour.items():
        for i, line in enumerate(lines):
            e = validate(line)
            if e is not None and e["status"] == "APPROVED" and seen.get(e["payment_id"]) == 1 and e["created_at"] >= hour:
                out.setdefault(hour, []).append((i, json.loads(line)))
    return out


def build_plan(lines_by_hour: dict[datetime, list[str]], closed: list[datetime], seed: int, *, rounds: int,
               open_part_seconds: int, out_of_order: int | None = None, replays: int | None = None) -> LandingPlan:
    """The landing plan for the closed hours (`closed`, oldest first) and the open ones (every
    other hour of lines_by_hour). `rounds` is how many writer rounds the soak expects (>= 3)."""
    if rounds < 3:
        raise ValueError("a plan needs at least 3 writer rounds")
    if not closed:
        raise ValueError("a plan needs at least one closed landing hour")
    rng = random.Random(f"soak-plan:{seed}")
    closed = sorted(closed)
    lines = {h: list(lines_by_hour[h]) for h in closed}

    # Out-of-order pairs: an approval of hour a; a refund crafted in a later closed hour r.
    n_ooo = out_of_order if out_of_order is not None else max(2, len(closed) // 3)
    held: dict[datetime, list[str]] = {}
    ooo_refunds: dict[datetime, list[str]] = {}
    held_ids: list[str] = []
    approvals = _lone_approvals(lines) if len(closed) > 1 else {}
    candidates = [(h, i, e) for h in closed[:-1] for i, e in approvals.get(h, [])]
    rng.shuffle(candidates)
    taken: dict[datetime, set[int]] = {}
    for a, i, event in candidates[:n_ooo]:
        r = rng.choice([h for h in closed if h > a])
        refund = dict(event)
        refund["status"] = "REFUNDED"
        refund["created_at"] = _fmt(r + timedelta(milliseconds=rng.randrange(3_600_000)))
        refund.pop("decline_reason", None)
        ooo_refunds.setdefault(r, []).append(json.dumps(refund, separators=(",", ":")))
        held.setdefault(a, []).append(lines[a][i])
        taken.setdefault(a, set()).add(i)
        held_ids.append(event["payment_id"])
    for a, idx in taken.items():
        lines[a] = [line for i, line in enumerate(lines[a]) if i not in idx]

    puts: list[Put] = []
    late_rounds = list(range(1, rounds - 1))
    # Every other closed hour gets a late file (each late file costs a rerun of its hour).
    late_hours = set(rng.sample(closed, (len(closed) + 1) // 2))
    for h in closed:
        p0, p1, p2 = _split(lines[h], (0.45, 0.35, 0.20))
        puts.append(Put(0, h, f"events-{seed}-0000.ndjson", tuple(p0), "backlog"))
        puts.append(Put(0, h, f"events-{seed}-0001.ndjson", tuple(p1), "backlog"))
        if h in late_hours:
            puts.append(Put(rng.choice(late_rounds), h, f"late-{seed}-0002.ndjson", tuple(p2), "late"))
        else:
            puts.append(Put(0, h, f"events-{seed}-0002.ndjson", tuple(p2), "backlog"))
        if h in ooo_refunds:
            puts.append(Put(0, h, f"ooo-refunds-{seed}.ndjson", tuple(ooo_refunds[h]), "ooo_refund"))
    # The held approvals land after their refunds' hours had time to be processed.
    held_from = max(2, rounds // 3)
    for a, held_lines in held.items():
        puts.append(Put(rng.randrange(held_from, rounds), a, f"held-approvals-{seed}.ndjson", tuple(held_lines), "held"))

    n_replays = replays if replays is not None else max(1, len(closed) // 6)
    for n, h in enumerate(rng.sample(closed, min(n_replays, len(closed)))):
        p0 = next(p for p in puts if p.hour == h and p.name.endswith("-0000.ndjson"))
        puts.append(Put(rng.randrange(1, rounds), h, f"replay-{seed}-{n:04d}.ndjson", p0.lines, "replay"))
    rewritten = rng.choice(closed)
    p1 = next(p for p in puts if p.hour == rewritten and p.name.endswith("-0001.ndjson"))
    puts.append(Put(rng.randrange(1, rounds), rewritten, p1.name, p1.lines, "rewrite"))

    source = rng.choice(closed)
    src_lines = next(p for p in puts if p.hour == source and p.name.endswith("-0000.ndjson")).lines
    open_lines = {h: list(v) for h, v in lines_by_hour.items() if h not in closed and h > closed[-1]}
    puts.sort(key=lambda p: (p.round, p.hour, p.name))
    return LandingPlan(
        seed=seed, closed=closed, puts=puts, open_lines=open_lines, open_part_seconds=open_part_seconds,
        replay_into_open=tuple(src_lines[:25]), replay_source=source, replay_round=rng.randrange(1, rounds),
        held_payments=held_ids,
    )


def open_part(plan: LandingPlan, hour: datetime, index: int) -> tuple[str, ...]:
    """Part `index` of an open hour's lines (lines are in arrival order, so part i is about what
    the processor wrote in the i-th slice of the hour)."""
    lines = plan.open_lines.get(hour, [])
    n = plan.parts_per_hour
    return tuple(lines[index * len(lines) // n:(index + 1) * len(lines) // n])


def due_open_parts(plan: LandingPlan, now: datetime, written: set[tuple[datetime, int]]) -> list[tuple[datetime, int]]:
    """(hour, part) of the open-hour parts due at `now` and not written yet: part i of hour h is
    due at h + (i + 1) * open_part_seconds (the processor's flush at the end of its slice)."""
    out = []
    step = timedelta(seconds=plan.open_part_seconds)
    for hour in sorted(plan.open_lines):
        if hour > now:
            break
        for i in range(plan.parts_per_hour):
            if (hour, i) not in written and hour + (i + 1) * step <= now:
                out.append((hour, i))
    return out


def open_part_name(plan: LandingPlan, hour: datetime, index: int, now: datetime) -> tuple[str, str]:
    """(object name, kind) of an open-hour part written at `now`: after the hour closed it is late."""
    kind = "open" if now < hour + HOUR else "late_after_close"
    return f"stream-{plan.seed}-{index:04d}.ndjson", kind


# ------------------------------------------------------------------------------------- kills

@dataclass(frozen=True)
class KillSpec:
    target: str
    during_run: bool  # wait for a pipeline run in progress first (always for the run and curation workers)
    # How far into the run to kill, as a share of the shortest recent run (kill_delay_s): runs
    # take seconds on the warm worker and minutes on a cold engine, and a fixed delay outlasts
    # the short ones (the run is over and a run_worker kill has nothing left to hit).
    delay_share: float
    outage_s: float  # how long the target stays down before the operator acts


def kill_schedule(kills: int, seed: int, *, targets: tuple[str, ...] = TARGETS, short: bool = False) -> list[KillSpec]:
    """`kills` kills spread evenly over the targets (each target's share differs by one at
    most), in a seeded order that never kills the same target twice in a row."""
    if kills < 0:
        raise ValueError("kills must be >= 0")
    rng = random.Random(f"soak-kills:{seed}")
    order: list[str] = []
    while len(order) < kills:
        batch = list(targets)
        rng.shuffle(batch)
        if order and batch[0] == order[-1] and len(batch) > 1:
            batch[0], batch[-1] = batch[-1], batch[0]
        order += batch
    out = []
    for target in order[:kills]:
        # Run and curation workers always mid-run: out of a run a curation-worker kill only tests
        # its restart, while mid-run it leaves what a run killed mid-upload leaves.
        during = target in ("run_worker", "curation_worker") or rng.random() < 0.7
        delay_share = rng.uniform(0.05, 0.7)
        outage = rng.uniform(2, 5) if short else rng.uniform(5, 25)
        out.append(KillSpec(target, during, round(delay_share, 2), round(outage, 1)))
    return out


# Before any pipeline run has finished: about what an hour of the soak takes on the warm worker.
FIRST_RUN_SECONDS = 10.0


def kill_delay_s(spec: KillSpec, recent_run_seconds: list[float]) -> float:
    """Seconds after a run's start to kill: the spec's share of the shortest of the pipeline's
    recent run durations (FIRST_RUN_SECONDS before any has finished). The shortest, not the
    median: an hour's run takes ~8 s and a backfill of several hours a minute, and a delay drawn
    from the long ones lands after the short ones have ended."""
    shortest = min(recent_run_seconds) if recent_run_seconds else FIRST_RUN_SECONDS
    return round(spec.delay_share * shortest, 1)
