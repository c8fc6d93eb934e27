"""The connector monitor sensor against the real Connect worker: a sink task that failed (its
table is missing) is restarted and recovers once the cause is gone; a task that keeps failing is
not restarted again inside its backoff window, then restarted with a longer wait; every tick
records the states and the sink lag as an AssetObservation, every restart posts an alert."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from confluent_kafka.admin import AdminClient

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS
from wallet_lake.defs.serving.sensors import connect_sink_monitor
from wallet_lake.publish.topic import curated_topic_spec
from wallet_lake.resources import with_changes
from wallet_lake.serving.pg_provision import role_names
from wallet_lake.serving.pg_roles import sink_grant_sql
from wallet_lake_tests.integration.sink_support import (
    create_topic, curated_row, delete_topics, publish_rows, run_prefix, throwaway_connector, wait_until,
)
from wallet_lake_tests.ops.webhook import webhook_receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack_resources):
    """A topic of this test holding one valid curated record."""
    kafka = stack_resources["kafka"]
    admin = AdminClient(kafka.client_config())
    name = f"t-monitor-{uuid.uuid4().hex[:10]}"
    create_topic(admin, name, 1, curated_topic_spec(name).config)
    publish_rows(kafka, [curated_row(run_prefix("monitor") + "1", datetime(2025, 2, 2, 2, tzinfo=timezone.utc))], topic=name)
    yield name
    delete_topics(admin, [name])


@pytest.fixture
def table(stack_resources):
    """The name of a table that does not exist yet (the connector's task fails on it); dropped after."""
    name = f"t_monitor_{uuid.uuid4().hex[:10]}"
    yield name
    with stack_resources["postgres"].connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def alerts(monkeypatch):
    with webhook_receiver() as received:
        monkeypatch.setenv("WL_ALERT_WEBHOOK_URL", received.url)
        yield received


def _tick(res, connector: str, cursor: str | None):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"connect": with_changes(res["connect"], connector_name=connector), "kafka": res["kafka"]},
    )
    result = connect_sink_monitor(context)
    [observation] = result.asset_events
    assert observation.asset_key == dg.AssetKey(TABLE_CURATED_PAYMENTS)
    return result, {k: getattr(v, "value", v) for k, v in observation.metadata.items()}


def _task_state(res, connector: str) -> str | None:
    status = res["connect"].client().status_or_none(connector)
    return status["tasks"][0]["state"] if status and status["tasks"] else None


def _wait_failed_after_restart(res, connector: str, stable_for: float = 3.0) -> None:
    """Until the restarted task has failed again: FAILED on every read for `stable_for` seconds
    (a read right after a restart may still show the previous failure; the new run of the task
    is RUNNING for seconds while it joins the group, so a stable FAILED is the new one)."""
    since: list[float] = []

    def stably_failed() -> bool:
        if _task_state(res, connector) != "FAILED":
            since.clear()
            return False
        since.append(time.monotonic())
        return since[-1] - since[0] >= stable_for

    wait_until(f"task of {connector} FAILED again after its restart", stably_failed, 90)


def test_failed_task_is_restarted_reported_and_recovers(stack_resources, topic, table, alerts):
    res = stack_resources
    with throwaway_connector(res, topic, {"tasks.max": "1"}, table=table) as connector:
        wait_until("the task to fail on the missing table", lambda: _task_state(res, connector) == "FAILED", 90)
        with res["postgres"].connect() as conn:  # the cause goes away; only a restart brings the task back
            conn.execute(f"CREATE TABLE {table} (LIKE curated_payments INCLUDING ALL)")
            conn.execute(sink_grant_sql(table, role_names()["sink"]))  # writable by the sink's role

        result, md = _tick(res, connector, cursor=None)
        assert (md["connector_state"], md["tasks"], md["tasks_failed"], md["tasks_running"]) == ("RUNNING", 1, 1, 0)
        assert md["restarts_requested"] == 1 and md["restarted"] == {"task-0": 1}
        assert md["sink_lag_messages"] == 1  # the one record, not yet written
        assert md["alerts_sent"] == 1
        [alert] = alerts
        text = alert["json"]["text"]
        assert connector in text and "task-0" in text and "restarted" in text
        state = json.loads(result.cursor)["instances"]
        assert state["task-0"]["attempts"] == 1

        def row_loaded() -> bool:
            with res["postgres"].connect() as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1

        wait_until("the restarted task to load the row", row_loaded, 90)
        assert _task_state(res, connector) == "RUNNING"

        def caught_up():
            return _tick(res, connector, cursor=result.cursor)[1]["sink_lag_messages"] == 0

        wait_until("the sink lag to reach 0", caught_up, 60, poll=1.0)
        _, md = _tick(res, connector, cursor=result.cursor)
        assert (md["tasks_running"], md["tasks_failed"], md["restarts_requested"]) == (1, 0, 0)
        assert len(alerts) == 1  # a healthy tick alerts nobody


def test_task_failing_again_is_restarted_only_after_a_growing_backoff(stack_resources, topic, table, alerts):
    res = stack_resources
    with throwaway_connector(res, topic, {"tasks.max": "1"}, table=table) as connector:  # the table never appears
        wait_until("the task to fail on the missing table", lambda: _task_state(res, connector) == "FAILED", 90)

        first, md = _tick(res, connector, cursor=None)
        assert md["restarted"] == {"task-0": 1}
        state = json.loads(first.cursor)["instances"]["task-0"]
        first_wait = state["next_at"] - datetime.now(timezone.utc).timestamp()

        # Whatever the task is doing right after its restart, a second tick inside the window
        # must not restart it again (nor alert).
        second, md = _tick(res, connector, cursor=first.cursor)
        assert md["restarts_requested"] == 0
        if md["tasks_failed"]:
            assert "task-0" in md["backing_off"]
        assert json.loads(second.cursor)["instances"]["task-0"] == state
        assert len(alerts) == 1

        _wait_failed_after_restart(res, connector)

        # The backoff window elapses (the cursor is what the daemon would hand the next tick).
        elapsed = json.loads(second.cursor)
        elapsed["instances"]["task-0"]["next_at"] = 0
        third, md = _tick(res, connector, cursor=json.dumps(elapsed))
        assert md["restarted"] == {"task-0": 2}
        again = json.loads(third.cursor)["instances"]["task-0"]
        assert again["attempts"] == 2
        assert again["next_at"] - datetime.now(timezone.utc).timestamp() > first_wait * 1.5  # the wait grew
        assert len(alerts) == 2 and "task-0" in alerts[1]["json"]["text"]
