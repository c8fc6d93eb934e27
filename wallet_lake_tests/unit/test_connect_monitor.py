"""Restart decisions of the connector monitor: a failed task restarts at once, then only after an
exponentially growing wait; a task that stays healthy through its window starts afresh."""

from wallet_lake.serving.monitor import Backoff, plan_restarts

B = Backoff(first_seconds=30, factor=2, max_seconds=300)


def _status(connector="RUNNING", **tasks):
    return {"name": "sink", "connector": {"state": connector},
            "tasks": [{"id": int(k.split("_")[1]), "state": v, "trace": "org.postgresql.util.PSQLException: boom\n\tat x"} for k, v in tasks.items()]}


def test_failed_task_is_restarted_at_once_on_first_sight():
    plan = plan_restarts(_status(task_0="RUNNING", task_1="FAILED"), {}, now=1000, backoff=B)
    assert plan.restart == ["task-1"] and plan.attempts == {"task-1": 1}
    assert plan.state["task-1"] == {"attempts": 1, "next_at": 1030}
    assert plan.failed["task-1"].startswith("org.postgresql.util.PSQLException: boom")


def test_failed_again_within_the_backoff_window_waits():
    state = {"task-0": {"attempts": 1, "next_at": 1030}}
    plan = plan_restarts(_status(task_0="FAILED"), state, now=1010, backoff=B)
    assert plan.restart == [] and plan.waiting == {"task-0": 20}
    assert plan.state == state


def test_backoff_doubles_per_attempt_up_to_the_cap():
    state, now, waits = {}, 0.0, []
    for _ in range(6):
        plan = plan_restarts(_status(task_0="FAILED"), state, now=now, backoff=B)
        assert plan.restart == ["task-0"]
        state = plan.state
        waits.append(state["task-0"]["next_at"] - now)
        now = state["task-0"]["next_at"]
    assert waits == [30, 60, 120, 240, 300, 300]


def test_running_through_the_whole_window_resets_attempts():
    state = {"task-0": {"attempts": 3, "next_at": 1120}}
    assert plan_restarts(_status(task_0="RUNNING"), state, now=1100, backoff=B).state == state  # still inside: kept
    assert plan_restarts(_status(task_0="RUNNING"), state, now=1121, backoff=B).state == {}  # outlived it: fresh


def test_failed_connector_instance_is_restarted_like_a_task():
    plan = plan_restarts(_status(connector="FAILED"), {}, now=5, backoff=B)
    assert plan.restart == ["connector"]


def test_paused_or_unassigned_tasks_are_not_restarted():
    plan = plan_restarts(_status(connector="PAUSED", task_0="PAUSED", task_1="UNASSIGNED"), {}, now=5, backoff=B)
    assert plan.restart == [] and plan.failed == {}


def test_state_summary_counts_tasks_for_the_event_log():
    from wallet_lake.serving.monitor import instance_states, state_summary

    s = state_summary(instance_states(_status(task_0="RUNNING", task_1="FAILED", task_2="RUNNING")))
    assert (s["connector_running"], s["tasks"], s["tasks_running"], s["tasks_failed"]) == (1, 3, 2, 1)
    assert s["task_states"] == {"task-0": "RUNNING", "task-1": "FAILED", "task-2": "RUNNING"}


def test_an_instance_unassigned_for_five_minutes_is_flagged_once():
    status = _status(connector="UNASSIGNED", task_0="UNASSIGNED")
    first = plan_restarts(status, {}, now=1000, backoff=B, stuck_after=300)
    assert first.stuck == [] and first.restart == []
    later = plan_restarts(status, {}, now=1299, backoff=B, unassigned=first.unassigned, stuck_after=300)
    assert later.stuck == []
    stuck = plan_restarts(status, {}, now=1300, backoff=B, unassigned=later.unassigned, stuck_after=300)
    assert stuck.stuck == ["connector", "task-0"]
    again = plan_restarts(status, {}, now=1400, backoff=B, unassigned=stuck.unassigned, stuck_after=300)
    assert again.stuck == []  # alerted once per episode
    assert plan_restarts(_status(task_0="RUNNING"), {}, now=1500, backoff=B, unassigned=again.unassigned).unassigned == {}
