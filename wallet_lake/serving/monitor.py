"""Connector monitor decisions (pure): which FAILED connector/task instances to restart now, and
which wait, under exponential backoff kept in a small JSON-able state (the sensor's cursor).

A task that fails again right after a restart (bad data, a database that stays down) is
restarted after 30 s, then 60 s, 120 s ... up to 30 min, instead of hammering Postgres every
tick; an instance that stayed RUNNING through its whole backoff window starts afresh."""

from __future__ import annotations

from dataclasses import dataclass, field

CONNECTOR = "connector"


def task_instance(task_id: int) -> str:
    return f"task-{task_id}"


# How long a connector/task may stay UNASSIGNED before it is reported as stuck: a worker that
# lost its group (after a long broker outage, say) can leave instances unassigned for good,
# and a REST restart does not reach them; the worker itself must be restarted.
STUCK_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class Backoff:
    first_seconds: float = 30.0
    factor: float = 2.0
    max_seconds: float = 1800.0

    def delay(self, attempts: int) -> float:
        """Wait before restart number attempts+1, after `attempts` restarts."""
        return min(self.max_seconds, self.first_seconds * self.factor ** max(0, attempts - 1))


@dataclass
class Plan:
    restart: list[str] = field(default_factory=list)  # instances to restart now
    waiting: dict[str, float] = field(default_factory=dict)  # failed instances -> seconds until allowed
    failed: dict[str, str] = field(default_factory=dict)  # failed instance -> first line of its trace
    attempts: dict[str, int] = field(default_factory=dict)  # attempt number of each restart in `restart`
    state: dict = field(default_factory=dict)  # the next cursor state (restart backoff)
    unassigned: dict = field(default_factory=dict)  # next cursor state: instance -> {since, alerted}
    stuck: list[str] = field(default_factory=list)  # UNASSIGNED for STUCK_AFTER_SECONDS: alert now (once)


def instance_states(status: dict) -> dict[str, str]:
    """{instance: state} of a Connect status document ("connector", "task-0", ...)."""
    out = {CONNECTOR: status["connector"]["state"]}
    for t in status.get("tasks", []):
        out[task_instance(t["id"])] = t["state"]
    return out


def state_summary(states: dict[str, str]) -> dict:
    """Numbers of a status for the event log (plotted by the UI): running flag and task counts."""
    tasks = {i: s for i, s in states.items() if i != CONNECTOR}
    return {
        "connector_state": states[CONNECTOR],
        "connector_running": int(states[CONNECTOR] == "RUNNING"),
        "tasks": len(tasks),
        "tasks_running": sum(s == "RUNNING" for s in tasks.values()),
        "tasks_failed": sum(s == "FAILED" for s in tasks.values()),
        "task_states": tasks,
    }


def _first_line(trace: str | None) -> str:
    return (trace or "").strip().splitlines()[0][:300] if trace and trace.strip() else ""


def plan_restarts(status: dict, state: dict, now: float, backoff: Backoff = Backoff(), unassigned: dict | None = None,
                  stuck_after: float = STUCK_AFTER_SECONDS) -> Plan:
    """Decide restarts from a status document and the previous state {instance: {attempts, next_at}};
    track how long instances stay UNASSIGNED (previous `unassigned` state) and flag the stuck ones."""
    plan = Plan()
    for inst, st in instance_states(status).items():
        if st != "UNASSIGNED":
            continue
        seen = (unassigned or {}).get(inst) or {"since": now, "alerted": False}
        if not seen["alerted"] and now - seen["since"] >= stuck_after:
            plan.stuck.append(inst)
            seen = {**seen, "alerted": True}
        plan.unassigned[inst] = seen
    traces = {CONNECTOR: status["connector"].get("trace")}
    traces.update({task_instance(t["id"]): t.get("trace") for t in status.get("tasks", [])})
    new_state: dict = {}
    for inst, st in instance_states(status).items():
        prev = state.get(inst)
        if st == "FAILED":
            plan.failed[inst] = _first_line(traces.get(inst))
            attempts = prev["attempts"] if prev else 0
            next_at = prev["next_at"] if prev else now
            if now >= next_at:
                attempts += 1
                plan.restart.append(inst)
                plan.attempts[inst] = attempts
                new_state[inst] = {"attempts": attempts, "next_at": now + backoff.delay(attempts)}
            else:
                plan.waiting[inst] = round(next_at - now, 1)
                new_state[inst] = prev
        elif prev and now < prev["next_at"]:
            # Up again, but not yet for a whole backoff window: a new failure keeps escalating.
            new_state[inst] = prev
    plan.state = new_state
    return plan
