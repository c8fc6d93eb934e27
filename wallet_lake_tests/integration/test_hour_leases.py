"""Landing-hour leases on the stack's Postgres (wallet_lake/ops/hour_leases.py), driven by
threads acting as runs: a second run of an hour waits for the first and never overlaps it; hours
are taken all or none; a run that waits too long fails naming the holder; a dead holder's lease
(expired, or its run finished) is taken over, and the dead holder learns it lost the hour."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.ops.hour_leases import HourLeaseLost, HourLeaseTimeout, LeaseSettings, acquire, read_leases

pytestmark = pytest.mark.integration

# Quick polls and short deadlines; each deadline bounds a wait, none is asserted.
FAST = LeaseSettings(ttl=timedelta(seconds=60), wait=timedelta(seconds=120), poll=timedelta(seconds=0.1))
DEADLINE_S = 120


@pytest.fixture
def connect(stack_resources):
    return stack_resources["postgres"].connect


@pytest.fixture
def hours(connect):
    """Four consecutive hours in 2031 no other test uses; their lease rows removed afterwards."""
    start = datetime(2031, 1, 1, tzinfo=timezone.utc) + timedelta(hours=random.Random(time.time_ns()).randrange(24 * 360) * 4)
    hs = [start + timedelta(hours=i) for i in range(4)]
    yield hs
    with connect() as conn:
        conn.execute("DELETE FROM landing_hour_leases WHERE landing_hour = ANY(%s)", (hs,))


def rows(connect, hours):
    return {r.landing_hour: r for r in read_leases(connect, hours)[0]}


def in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test, which asserts on it
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_a_second_run_of_the_hour_waits_until_the_first_releases_and_never_overlaps(connect, hours):
    events: list = []
    waiting = threading.Event()
    first = acquire(connect, hours[:1], "run-a", settings=FAST)
    first.start_heartbeat()
    events.append("a in")

    def second_run():
        def on_wait(blocking, now):
            if not waiting.is_set():
                events.append(("b waits for", sorted({r.holder for r in blocking})))
                waiting.set()

        lease = acquire(connect, hours[:1], "run-b", settings=FAST, on_wait=on_wait)
        events.append("b in")
        return lease

    thread, out = in_thread(second_run)
    assert waiting.wait(DEADLINE_S), "the second run never found the hour held"
    assert rows(connect, hours[:1])[hours[0]].holder == "run-a"  # waiting took nothing
    events.append("a out")
    assert first.release() == [hours[0]]
    thread.join(DEADLINE_S)
    assert "error" not in out, out.get("error")
    assert events == ["a in", ("b waits for", ["run-a"]), "a out", "b in"]
    row = rows(connect, hours[:1])[hours[0]]
    assert (row.holder, row.released_at, row.previous_holder) == ("run-b", None, None)  # a released it: no takeover
    out["value"].release()


def test_hours_are_taken_all_or_none_so_a_waiting_run_blocks_nobody(connect, hours):
    h0, h1, h2, _ = hours
    a = acquire(connect, [h0, h1], "run-a", settings=FAST)
    waiting = threading.Event()
    thread, out = in_thread(lambda: acquire(connect, [h2, h1], "run-b", settings=FAST, on_wait=lambda b, n: waiting.set()))
    assert waiting.wait(DEADLINE_S)
    # run-b waits for h1 and holds no part of its hours meanwhile: run-c takes h2 at once.
    c = acquire(connect, [h2], "run-c", settings=replace_wait(FAST, 0))
    assert rows(connect, [h2])[h2].holder == "run-c"
    c.release()
    a.release()
    thread.join(DEADLINE_S)
    assert "error" not in out, out.get("error")
    now_held = rows(connect, [h0, h1, h2])
    assert (now_held[h1].holder, now_held[h2].holder, now_held[h0].released_at is not None) == ("run-b", "run-b", True)
    out["value"].release()


def replace_wait(settings: LeaseSettings, seconds: float) -> LeaseSettings:
    return LeaseSettings(ttl=settings.ttl, handover=settings.handover, wait=timedelta(seconds=seconds), poll=settings.poll)


def test_a_run_that_waits_past_its_deadline_fails_naming_the_holder_and_takes_nothing(connect, hours):
    a = acquire(connect, hours[:2], "run-a", detail="curated_payments, pid 42 on host-1", settings=FAST)
    with pytest.raises(HourLeaseTimeout) as caught:
        acquire(connect, hours[1:3], "run-b", settings=replace_wait(FAST, 0.3))
    message = str(caught.value)
    assert caught.value.holders == ["run-a"]
    assert f"{hours[1]:%Y-%m-%dT%H} is held by run run-a (curated_payments, pid 42 on host-1)" in message
    assert "WL_HOUR_LEASE_TTL_SECONDS" in message and f"{hours[0]:%Y-%m-%dT%H}" not in message
    assert set(rows(connect, hours)) == set(hours[:2])  # run-b left no row behind
    a.release()


def test_the_same_run_takes_its_hours_again_and_keeps_when_it_first_took_them(connect, hours):
    first_step = acquire(connect, hours[:2], "run-a", settings=FAST)
    taken_at = rows(connect, hours[:2])[hours[0]].acquired_at
    second_step = acquire(connect, hours[:2], "run-a", detail="next step", settings=replace_wait(FAST, 0))
    again = rows(connect, hours[:2])
    assert {r.acquired_at for r in again.values()} == {taken_at} and {r.holder_detail for r in again.values()} == {"next step"}
    assert first_step.takeovers == [] and second_step.takeovers == []
    second_step.release()


def test_the_heartbeat_renews_the_lease_while_the_run_works(connect, hours):
    lease = acquire(connect, hours[:1], "run-a", settings=LeaseSettings(ttl=timedelta(seconds=2), poll=FAST.poll))
    before = rows(connect, hours[:1])[hours[0]]
    lease.start_heartbeat()
    deadline = time.monotonic() + DEADLINE_S
    while rows(connect, hours[:1])[hours[0]].heartbeat_at == before.heartbeat_at:
        assert time.monotonic() < deadline, "no heartbeat reached the database"
        time.sleep(0.1)
    after = rows(connect, hours[:1])[hours[0]]
    assert after.expires_at > before.expires_at and after.holder == "run-a"
    lease.release()
    assert rows(connect, hours[:1])[hours[0]].released_at is not None


def test_an_expired_lease_of_a_dead_run_is_taken_over_and_the_dead_run_learns_it_lost_the_hour(connect, hours):
    # run-a takes the hour with a 1-second ttl and never renews it (it died).
    dead = acquire(connect, hours[:1], "run-a", settings=LeaseSettings(ttl=timedelta(seconds=1), poll=FAST.poll))
    taker = acquire(connect, hours[:1], "run-b", settings=FAST)  # polls until the database's clock passes the expiry
    row = rows(connect, hours[:1])[hours[0]]
    assert (row.holder, row.previous_holder) == ("run-b", "run-a") and row.takeover_reason.startswith("expired")
    assert [r.previous_holder for r in taker.takeovers] == ["run-a"]
    next_step = acquire(connect, hours[:1], "run-b", settings=replace_wait(FAST, 0))  # the run's next step
    assert next_step.takeovers == [] and rows(connect, hours[:1])[hours[0]].previous_holder == "run-a"  # reported once, kept
    dead.renew()  # the "dead" run wakes up: its renewal finds the hour gone
    assert list(dead.lost) == [hours[0]]
    with pytest.raises(HourLeaseLost, match="held by run run-b"):
        dead.check()
    assert dead.release() == []  # it cannot release what run-b holds
    assert rows(connect, hours[:1])[hours[0]].released_at is None
    taker.release()


def test_the_lease_of_a_run_the_orchestrator_reports_finished_is_taken_at_once(connect, hours):
    acquire(connect, hours[:1], "run-killed", settings=LeaseSettings(ttl=timedelta(hours=1)))
    asked: list[str] = []

    def finished(run_id):
        asked.append(run_id)
        return "FAILURE" if run_id == "run-killed" else None

    with pytest.raises(HourLeaseTimeout):
        acquire(connect, hours[:1], "run-b", settings=replace_wait(FAST, 0))  # not expired, not known finished
    taker = acquire(connect, hours[:1], "run-b", settings=replace_wait(FAST, 0), finished=finished)
    row = rows(connect, hours[:1])[hours[0]]
    assert asked == ["run-killed"]
    assert (row.holder, row.previous_holder, row.takeover_reason) == ("run-b", "run-killed", "holder run FAILURE")
    taker.release()
