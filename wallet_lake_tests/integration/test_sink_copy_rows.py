"""The COPY sink (connect/copy-sink) writes what the topic holds, byte for byte, and never lets one
row stop a batch: text COPY must escape, rows Postgres refuses go to the dead-letter topic with the
reason, and several records of one payment in a batch reach the table in the topic's order, each
judged by the table's newest-state trigger.

Each test runs the project's connector config on a topic of its own (a throwaway connector writing
the real curated_payments table), created only after the records are on the topic, so the
connector receives them as one batch, as a sink catching up does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.publish.producer import producer_config, publish
from wallet_lake.publish.records import curated_record
from wallet_lake.serving.connect import raise_if_failed, sink_group_id, wait_for_sink
from wallet_lake.serving.pg_provision import role_names
from wallet_lake.serving.pg_roles import sink_grant_sql
from wallet_lake_tests.integration.sink_support import (
    consume, curated_row, curated_topic_fixture, fetch_rows, random_day, rows_prefix_fixture, throwaway_connector,
    wait_until,
)

pytestmark = pytest.mark.integration
UTC = timezone.utc


prefix = rows_prefix_fixture("copy")


# One partition: the records of a payment keep one order, whatever their keys hash to.
topic = curated_topic_fixture("t-copy-", partitions=1)


def _load(res, topic: str, records: list[tuple[bytes, bytes]]):
    """Publish the records (before any connector reads the topic)."""
    return publish(records, topic, producer_config(res["kafka"].client_config()))


def _sink(res, topic: str, result, timeout: float = 120):
    """The Connect client, and a wait until a connector has committed past every record (raising
    as soon as one of its tasks FAILED)."""
    client = res["connect"].client()
    return client, lambda name: wait_for_sink(
        res["kafka"].client_config(), sink_group_id(name), topic, result.end_offsets, timeout=timeout, poll=0.5,
        check=lambda: raise_if_failed(client.status_or_none(name) or {}))


@pytest.mark.parametrize("flavor", ["copy", "debezium"])
def test_text_that_copy_must_escape_arrives_byte_for_byte(stack_resources, prefix, topic, flavor):
    """The same rows through the project's connector and through Debezium's JDBC sink (the
    rendered alternative, serving/deploy.py) arrive identical: the COPY text path loses nothing
    that bound parameters keep."""
    res = stack_resources
    d = random_day()
    at = datetime(d.year, d.month, d.day, 10, tzinfo=UTC)
    texts = {
        "tab": "a\tb", "newline": "line1\nline2", "cr": "a\r\nb", "backslash": "C:\\path\\N",
        "null-marker": "\\N", "quotes": "\"'; DROP TABLE x; --", "unicode": "Zürich 東京 💳", "empty": "",
        "trailing-backslash": "ends\\",
    }
    # Doubles that need all 17 digits or sit at the range's ends. (-0.0 is not among them:
    # JsonConverter reads it as 0.0, before either connector sees it.)
    rows = [curated_row(f"{prefix}{name}", at + timedelta(seconds=i), user_id=text, decline_reason=text,
                        risk_score=[0.1 + 0.2, 5e-324, 1.7976931348623157e308, 1e-7, 1 / 3][i % 5],
                        amount_cents=[0, 9_223_372_036_854_775_807, 1][i % 3])
            for i, (name, text) in enumerate(texts.items())]
    result = _load(res, topic, [curated_record(r) for r in rows])
    with throwaway_connector(res, topic, flavor=flavor) as name:
        _, wait = _sink(res, topic, result)
        wait(name)
    got = fetch_rows(res["postgres"], [r["payment_id"] for r in rows])
    for r in rows:
        g = got[r["payment_id"]]
        assert (g["user_id"], g["decline_reason"]) == (r["user_id"], r["decline_reason"]), r["payment_id"]
        assert g["risk_score"] == r["risk_score"] and str(g["risk_score"]) == str(r["risk_score"]), r["payment_id"]
        assert g["amount_cents"] == r["amount_cents"], r["payment_id"]


def test_rows_postgres_refuses_go_to_the_dead_letter_topic_with_the_reason_and_the_rest_load(stack_resources, prefix, topic):
    """Values the converter accepts but the table's constraints refuse: the batch is split until
    those rows are alone; each is dead-lettered with its SQLSTATE, and every other row loads."""
    res = stack_resources
    d = random_day()
    at = datetime(d.year, d.month, d.day, 8, tzinfo=UTC)
    good = [curated_row(f"{prefix}{i:03d}", at + timedelta(minutes=i)) for i in range(200)]
    bad = {
        f"{prefix}bad-currency": ("23514", curated_row(f"{prefix}bad-currency", at, currency="eur")),
        f"{prefix}bad-amount": ("23514", curated_row(f"{prefix}bad-amount", at, amount_cents=-5)),
        f"{prefix}bad-nul": ("22021", curated_row(f"{prefix}bad-nul", at, user_id="nul\x00byte")),
    }
    # A payment whose middle state is refused: the states around it still apply in order.
    pid = f"{prefix}three-states"
    states = [curated_row(pid, at, "PENDING", amount_cents=1), curated_row(pid, at, "APPROVED", amount_cents=2, currency="usd"),
              curated_row(pid, at, "REFUNDED", amount_cents=3)]
    bad[f"{pid}-approved"] = ("23514", states[1])
    records = [curated_record(r) for r in good[:50]] + [curated_record(bad[f"{prefix}bad-currency"][1])] \
        + [curated_record(states[0])] + [curated_record(r) for r in good[50:120]] + [curated_record(bad[f"{prefix}bad-amount"][1])] \
        + [curated_record(states[1])] + [curated_record(r) for r in good[120:]] + [curated_record(bad[f"{prefix}bad-nul"][1])] \
        + [curated_record(states[2])]
    result = _load(res, topic, records)
    with throwaway_connector(res, topic) as name:
        client, wait = _sink(res, topic, result)
        wait(name)
        raise_if_failed(client.status(name))
        dead = consume(res["kafka"], f"{topic}.dlq", {}, until=lambda got: len(got) >= len(bad), timeout=60)
    assert set(fetch_rows(res["postgres"], [r["payment_id"] for r in good])) == {r["payment_id"] for r in good}
    assert fetch_rows(res["postgres"], [k for k in bad if k != f"{pid}-approved"]) == {}
    assert [(r["status"], r["amount_cents"]) for r in fetch_rows(res["postgres"], [pid]).values()] == [("REFUNDED", 3)]
    by_key = {(m.key().decode() + "-approved" if m.key().decode() == pid else m.key().decode()): m for m in dead}
    assert set(by_key) == set(bad) and len(dead) == len(bad)
    for key, msg in by_key.items():
        sqlstate, row = bad[key]
        assert msg.value() == curated_record(row)[1]  # the original bytes, ready for a fix-and-replay
        headers = {k: (v.decode() if v is not None else None) for k, v in msg.headers()}
        assert headers["__connect.errors.stage"] == "TASK_PUT"
        assert headers["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
        assert f"SQLSTATE {sqlstate}" in headers["__connect.errors.exception.message"], headers["__connect.errors.exception.message"]


def test_several_states_of_a_payment_in_one_batch_are_each_judged_in_topic_order(stack_resources, prefix, topic):
    """A replayed older state after a newer one, both in the batch, must not win (as it would if
    only the batch's last record per key were written), and a newer state after an older one must."""
    res = stack_resources
    d = random_day()
    t = datetime(d.year, d.month, d.day, 9, tzinfo=UTC)
    h = timedelta(hours=1)
    sequences = {
        # payment -> states in topic order, and the state the table must hold
        "newer-then-older": ([("APPROVED", t + h, 1), ("PENDING", t, 2)], ("APPROVED", t + h, 1)),
        "older-then-newer": ([("PENDING", t, 1), ("APPROVED", t + h, 2)], ("APPROVED", t + h, 2)),
        "refund-then-replayed-approval": ([("APPROVED", t, 1), ("REFUNDED", t, 2), ("APPROVED", t, 3)], ("REFUNDED", t, 2)),
        "four-states": ([("PENDING", t, 1), ("APPROVED", t, 2), ("REFUNDED", t, 3), ("CHARGEBACK", t, 4)], ("CHARGEBACK", t, 4)),
    }
    records, want = [], {}
    for n in range(30):  # interleaved, so a payment's states are spread over the batch
        for name, (states, expected) in sequences.items():
            pid = f"{prefix}{name}-{n:02d}"
            want[pid] = expected
    for step in range(4):
        for pid in want:
            states = sequences[pid[len(prefix):-3]][0]
            if step < len(states):
                status, created, amount = states[step]
                records.append(curated_record(curated_row(pid, created, status, amount_cents=amount)))
    result = _load(res, topic, records)
    with throwaway_connector(res, topic) as name:
        _, wait = _sink(res, topic, result)
        wait(name)
    got = fetch_rows(res["postgres"], list(want))
    assert {pid: (r["status"], r["created_at"], r["amount_cents"]) for pid, r in got.items()} == want


@pytest.fixture
def strict_table(stack_resources):
    """A table of curated_payments' shape that refuses every row (a CHECK no payment meets), which
    the sink's role may write: the table and the records disagree, not one record."""
    name = f"t_copy_strict_{uuid.uuid4().hex[:10]}"
    with stack_resources["postgres"].connect() as conn:
        conn.execute(f"CREATE TABLE {name} (LIKE curated_payments INCLUDING ALL, CHECK (amount_cents < 0))")
        conn.execute(sink_grant_sql(name, role_names()["sink"]))
    yield name
    with stack_resources["postgres"].connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def test_a_batch_postgres_refuses_whole_fails_the_task_and_dead_letters_nothing(stack_resources, prefix, topic, strict_table):
    """Dead-lettering every record one by one would empty the topic into the dead-letter topic while
    the task looks healthy; the task fails instead, with the SQLSTATE, for the monitor to report."""
    res = stack_resources
    d = random_day()
    rows = [curated_row(f"{prefix}{i:03d}", datetime(d.year, d.month, d.day, 7, tzinfo=UTC) + timedelta(minutes=i)) for i in range(40)]
    _load(res, topic, [curated_record(r) for r in rows])
    with throwaway_connector(res, topic, {"tasks.max": "1"}, table=strict_table) as name:
        client = res["connect"].client()

        def failed():
            tasks = (client.status_or_none(name) or {}).get("tasks", [])
            return next((t for t in tasks if t["state"] == "FAILED"), None)

        task = wait_until("the task to fail on the batch its table refuses whole", failed, 90)
        assert "refused every one of a batch of 40 records (first: SQLSTATE 23514)" in task["trace"]
        assert "Failing row contains" not in task["trace"]  # no payment values in the task's status
        with res["postgres"].connect() as conn:
            assert conn.execute(f"SELECT count(*) FROM {strict_table}").fetchone()[0] == 0
        from confluent_kafka.admin import AdminClient

        dlq = f"{topic}.dlq"
        topics = AdminClient(res["kafka"].client_config()).list_topics(timeout=10).topics
        if dlq in topics:  # Connect creates it with the connector; it must hold nothing
            with pytest.raises(AssertionError, match="timed out"):
                consume(res["kafka"], dlq, {}, until=lambda got: len(got) >= 1, timeout=5)
