"""The soak harness's pure parts: its landing plan lands every generated line, and its check
catches what it is there to catch (a lost, regressed or changed row; a wrong report)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from wallet_lake.generator.events import generate_with_stats
from wallet_lake_tests.soak import expect, plan

UTC = timezone.utc
H = timedelta(hours=1)
H0 = datetime(2026, 11, 24, 10, tzinfo=UTC)


def _line(pid: str, status: str, created: str, amount: int = 1000, **extra) -> str:
    return json.dumps({"payment_id": pid, "merchant_id": "m_1", "amount_cents": amount, "currency": "EUR",
                       "status": status, "created_at": created, **extra})


def _objects(lines: list[str]) -> dict[str, bytes]:
    return {"a.ndjson": "".join(f"{x}\n" for x in lines).encode()}


@pytest.fixture(scope="module")
def generated():
    closed = [H0 - (6 - i) * H for i in range(6)]
    return closed, generate_with_stats(closed[0], H0 + 3 * H, seed=5, events_per_hour=300)


def test_plan_lands_every_line_of_the_closed_hours_once_besides_its_replays(generated):
    closed, g = generated
    p = plan.build_plan(g.lines, closed, 5, rounds=20, open_part_seconds=300)
    landed: dict[datetime, Counter] = {h: Counter() for h in closed}
    for put in p.puts:
        if put.kind in ("backlog", "late", "held"):
            landed[put.hour].update(put.lines)
    for h in closed:
        assert landed[h] == Counter(g.lines[h]), h
    kinds = Counter(put.kind for put in p.puts)
    assert kinds["replay"] >= 1 and kinds["rewrite"] == 1 and kinds["late"] == (len(closed) + 1) // 2
    assert len(p.held_payments) >= 2


def test_held_approvals_land_after_the_refunds_that_supersede_them(generated):
    closed, g = generated
    p = plan.build_plan(g.lines, closed, 5, rounds=20, open_part_seconds=300)
    refunds = {json.loads(x)["payment_id"]: put for put in p.puts if put.kind == "ooo_refund" for x in put.lines}
    for put in (q for q in p.puts if q.kind == "held"):
        for line in put.lines:
            pid = json.loads(line)["payment_id"]
            assert refunds[pid].round < put.round and refunds[pid].hour > put.hour, pid
    # The independent recomputation keeps the refund, though the approval lands last.
    objects: dict[datetime, dict[str, bytes]] = {}
    for put in p.puts:
        objects.setdefault(put.hour, {})[put.name] = "".join(f"{x}\n" for x in put.lines).encode()
    latest = expect.latest_records(expect.expect_hour(h, o) for h, o in objects.items())
    assert {latest[pid].candidates[0]["status"] for pid in p.held_payments} == {"REFUNDED"}


def test_open_hour_parts_are_due_at_their_share_of_the_hour(generated):
    closed, g = generated
    p = plan.build_plan(g.lines, closed, 5, rounds=20, open_part_seconds=600)
    assert plan.due_open_parts(p, H0 + timedelta(minutes=5), set()) == []
    assert plan.due_open_parts(p, H0 + timedelta(minutes=21), set()) == [(H0, 0), (H0, 1)]
    assert plan.due_open_parts(p, H0 + timedelta(minutes=21), {(H0, 0)}) == [(H0, 1)]
    parts = [plan.open_part(p, H0, i) for i in range(p.parts_per_hour)]
    assert [x for part in parts for x in part] == g.lines[H0]


def test_kill_schedule_spreads_kills_evenly_and_never_repeats_a_target_back_to_back():
    kills = plan.kill_schedule(24, seed=3)
    counts = Counter(k.target for k in kills)
    assert set(counts) == set(plan.TARGETS) and max(counts.values()) - min(counts.values()) <= 1
    assert Counter(k.target for k in plan.kill_schedule(4 * len(plan.TARGETS), seed=3)) == {t: 4 for t in plan.TARGETS}
    assert all(a.target != b.target for a, b in zip(kills, kills[1:]))
    assert all(k.during_run for k in kills if k.target in ("run_worker", "curation_worker"))


def test_a_kill_during_a_run_lands_inside_a_run_of_typical_length_however_short_runs_are():
    kills = plan.kill_schedule(24, seed=3)
    for recent in ([8.0, 71.0, 9.5, 57.0], [240.0, 300.0], []):
        shortest = min(recent) if recent else plan.FIRST_RUN_SECONDS
        delays = [plan.kill_delay_s(k, recent) for k in kills]
        assert all(0 < d < shortest for d in delays), (recent, delays)
    # A slower pipeline waits longer into its runs: the delay follows the runs, not a fixed clock.
    k = kills[0]
    assert plan.kill_delay_s(k, [300.0]) == round(k.delay_share * 300.0, 1) > plan.kill_delay_s(k, [10.0])


def test_hour_expectation_counts_lines_like_a_text_reader():
    data = _objects([_line("p1", "APPROVED", "2026-11-24T10:00:00Z")])["a.ndjson"] + b"not json\r\n{\"x\":1}"
    e = expect.expect_hour(H0, {"k.ndjson": data})
    assert (e.raw_lines, e.curated, e.quarantined, e.duplicates) == (3, 1, 2, 0)


def test_latest_record_is_the_newest_state_whatever_hour_it_landed_in():
    first = expect.expect_hour(H0, _objects([_line("p1", "REFUNDED", "2026-11-24T10:30:00Z")]))
    later = expect.expect_hour(H0 + H, _objects([_line("p1", "APPROVED", "2026-11-24T09:10:00Z")]))
    latest = expect.latest_records([later, first])
    assert latest["p1"].candidates[0]["status"] == "REFUNDED"


def test_row_comparison_finds_missing_regressed_and_changed_rows():
    e = expect.expect_hour(H0, _objects([
        _line("p1", "REFUNDED", "2026-11-24T10:30:00Z"), _line("p2", "APPROVED", "2026-11-24T10:00:00Z"),
        _line("p3", "APPROVED", "2026-11-24T10:00:00Z"), _line("p4", "DECLINED", "2026-11-24T10:00:00.123456Z"),
    ]))
    latest = expect.latest_records([e])
    stored = {
        "p1": {**e.survivors["p1"], "status": "APPROVED", "created_at": datetime(2026, 11, 24, 9, 0, tzinfo=UTC)},
        "p3": {**e.survivors["p3"], "amount_cents": 999},
        # millisecond precision in Postgres is not a difference
        "p4": {**e.survivors["p4"], "created_at": datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)},
    }
    cmp = expect.compare_rows(latest, stored)
    assert cmp.missing == ["p2"] and cmp.regressed == ["p1"] and list(cmp.mismatched) == ["p3"]
    assert cmp.mismatched["p3"] == {"amount_cents": (1000, 999)}


def test_report_recomputation_and_its_diffs():
    rows = [
        {"dt": date(2026, 11, 24), "merchant_id": "m_1", "currency": "EUR", "status": "APPROVED", "amount_cents": 100,
         "decline_reason": None, "payment_method": "card", "authorized_to_complete_ms": 10},
        {"dt": date(2026, 11, 24), "merchant_id": "m_1", "currency": "EUR", "status": "REFUNDED", "amount_cents": 50,
         "decline_reason": None, "payment_method": None, "authorized_to_complete_ms": 30},
        {"dt": date(2026, 11, 24), "merchant_id": "m_2", "currency": "USD", "status": "DECLINED", "amount_cents": 70,
         "decline_reason": "", "payment_method": "card", "authorized_to_complete_ms": None},
    ]
    day = date(2026, 11, 24)
    assert expect.daily_recon(rows, day, "m_1") == {
        "by_status": [("EUR", "APPROVED", 1, 100), ("EUR", "REFUNDED", 1, 50)], "totals": [("EUR", 2, 150)]}
    rr = expect.refund_rate(rows, day, day, None)
    assert (rr["captured_count"], rr["refunded_count"], rr["refund_rate"]) == (2, 1, 0.5)
    d = expect.declines(rows, day, day, None)
    assert d["by_reason"] == [("unknown", 1, [("USD", 70)])] and d["decline_rate"] == 1 / 3
    assert expect.latency_values(rows, day, day) == {"card": [10], "unknown": [30]}
    answer = {"by_status": [{"currency": "EUR", "status": "APPROVED", "count": 1, "amount_cents": 100}],
              "totals": [{"currency": "EUR", "count": 1, "amount_cents": 100}]}
    assert expect.diff_daily_recon(answer, expect.daily_recon(rows, day, "m_1"))  # the refund is missing
    latency = {"percentile_max_relative_error": 1 / 64, "methods": [
        {"payment_method": "card", "count": 1, "mean_ms": 10.0, "p50_ms": 10.0, "p95_ms": 10.0, "p99_ms": 10.0, "max_ms": 10},
        {"payment_method": "unknown", "count": 1, "mean_ms": 30.0, "p50_ms": 30.0, "p95_ms": 30.0, "p99_ms": 31.0, "max_ms": 30}]}
    assert expect.diff_latency(latency, expect.latency_values(rows, day, day)) == ["unknown.p99_ms 31.0 not within 0.0156 of 30.0"]


def test_ledger_hour_must_match_every_independent_figure_and_be_reconciled():
    e = expect.expect_hour(H0, _objects([_line("p1", "APPROVED", "2026-11-24T10:00:00Z"), "bad"]))
    want = expect.expected_ledger(e)
    entry = {"landing_hour": H0.isoformat(), "raw_lines": 2, "curated": 1, "quarantined": 1, "duplicates_removed": 0,
             "published": 1, "loaded": 1, "counted": 1, "reconciled": True}
    assert expect.diff_ledger_hour(entry, want) == []
    assert expect.diff_ledger_hour({**entry, "loaded": 0, "reconciled": False, "first_difference": "loaded"}, want) == [
        "loaded 0 != 1", "reconciled=False (first difference: 'loaded')"]
    assert expect.diff_ledger_hour(None, want) == ["hour missing from the ledger"]


def test_a_tie_between_landing_hours_has_one_latest_record_whatever_the_hour_order():
    same = "2026-11-24T10:00:00.250Z"
    a = expect.expect_hour(H0, _objects([_line("p1", "APPROVED", same, amount=500)]))
    d = expect.expect_hour(H0 + H, _objects([_line("p1", "DECLINED", same, amount=500)]))
    forward, backward = expect.latest_records([a, d]), expect.latest_records([d, a])
    assert len(forward["p1"].candidates) == 1
    assert forward["p1"].candidates[0]["status"] == backward["p1"].candidates[0]["status"]
