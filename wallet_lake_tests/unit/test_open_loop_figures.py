"""bench/api_open_loop.py's figures count latency from each request's scheduled send time: a
request the driver sent late carries its lateness (no coordinated omission); and they say what
the slowest requests are made of. Pure arithmetic on hand-made results, apart from the host
probe's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MS = 1_000_000  # ns


@pytest.fixture
def open_loop(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import api_open_loop

    return api_open_loop


def test_request_sent_late_counts_from_its_scheduled_time(open_loop):
    # 1,000/s: request k is due at t0 + (k+1) ms. Requests 0-9 go out on time and take 1 ms;
    # the driver then stalls, and 10-19 all go out at 30 ms, taking 1 ms each.
    base = 5_000 * MS
    rows = [(k, base + (k + 1) * MS, 1 * MS, 200) for k in range(10)]
    rows += [(k, base + 30 * MS, 1 * MS, 200) for k in range(10, 20)]
    figures = open_loop.from_schedule(rows, 1000)
    # Request 10 was due at 11 ms and answered at 31 ms: 20 ms late; request 19, due at 20 ms: 11 ms.
    assert figures["max_ms"] == 20.0
    assert figures["response_from_send_ms"]["p99"] == 1.0
    assert figures["send_lag_ms"]["max"] == 19.0
    expected = sorted([1.0] * 10 + [30 - (k + 1) + 1.0 for k in range(10, 20)])
    assert figures["p50_ms"] == pytest.approx((expected[9] + expected[10]) / 2)
    assert figures["requests"] == 20 and figures["errors"] == 0


def test_schedule_is_fitted_to_the_least_late_request(open_loop):
    # Every stamp 0.2 ms after its tick (the driver's constant overhead): nothing was late.
    rows = [(k, 7 * MS + (k + 1) * 2 * MS + MS // 5, 3 * MS, 200) for k in range(50)]
    figures = open_loop.from_schedule(rows, 500)
    assert figures["send_lag_ms"]["max"] == 0.0
    assert figures["p99_9_ms"] == 3.0
    assert figures["achieved_rate"] == 500.0


def test_answers_other_than_2xx_and_3xx_are_errors(open_loop):
    rows = [(k, (k + 1) * MS, MS, code) for k, code in enumerate([200, 304, 401, 500, 503, 0])]
    assert open_loop.from_schedule(rows, 1000)["errors"] == 4


def test_request_kind_tells_narrowed_requests_from_whole_ones(open_loop):
    assert open_loop.request_kind("/reports/refund-rate?from=2026-06-01&to=2026-06-03") == "refund-rate/all"
    assert open_loop.request_kind("/reports/declines?from=2026-06-01&to=2026-06-03&merchant=m_0007") == "declines/one"
    assert open_loop.request_kind("/reports/latency?from=2026-06-01&to=2026-06-01&payment_method=card") == "latency/one"


def _stall_and_slow_kind() -> tuple[list[tuple[int, int, int, int]], list[str]]:
    """1,000/s for 2 s (t0 = 0, request k due at k+1 ms), every request 1 ms, except: a stall,
    seq 499-528 all sent at 559 ms (560 - (k+1) ms late: 60 ms down to 31 ms), and seq 1000,
    1100, ..., 1900, of kind "b", on time but 100 ms each."""
    rows, kinds = [], []
    for k in range(2000):
        if 499 <= k < 529:
            rows.append((k, 559 * MS, MS, 200))
        elif k >= 1000 and k % 100 == 0:
            rows.append((k, (k + 1) * MS, 100 * MS, 200))
        else:
            rows.append((k, (k + 1) * MS, MS, 200))
        kinds.append("b" if k >= 1000 and k % 100 == 0 else "a")
    return rows, kinds


def test_tail_splits_into_stalls_and_requests_slow_on_their_own(open_loop):
    rows, kinds = _stall_and_slow_kind()
    figures = open_loop.from_schedule(rows, 1000, t0=0, kinds=kinds)
    tail = figures["over_p99"]
    # Sorted: 1,960 of 1 ms, the stall's 31..60 ms, ten of 100 ms. The p99 (rank 1979.01) is
    # 50.01 ms; over it: the stall's ten latest-due-first (seq 499-508, 60..51 ms) and the ten "b".
    assert tail["threshold_ms"] == figures["p99_ms"] == 50.01
    assert tail["requests"] == 20
    assert tail["by_kind"] == {"a": {"tail_share": 0.5, "all_share": 0.995}, "b": {"tail_share": 0.5, "all_share": 0.005}}
    assert tail["episodes"] == 11
    assert tail["single_request_episodes"] == 10  # the "b" requests, 100 ms apart
    assert tail["largest_episodes"][0] == {"at_s": 0.5, "spans_ms": 9.0, "requests": 10, "max_ms": 60.0}
    assert "over_p99" not in open_loop.from_schedule(rows, 1000, t0=0)


def test_tail_reads_each_request_by_its_seq_in_any_order(open_loop):
    # vegeta's results come in completion order, and its kinds by seq (a mapping).
    rows, kinds = _stall_and_slow_kind()
    in_order = open_loop.from_schedule(rows, 1000, t0=0, kinds=kinds)["over_p99"]
    shuffled = rows[1::2] + rows[::2]
    assert open_loop.from_schedule(shuffled, 1000, t0=0, kinds=dict(enumerate(kinds)))["over_p99"] == in_order


def test_an_episode_ends_at_a_gap_of_more_than_50_ms(open_loop):
    assert open_loop.tail_figures([0.0, 50.0], [99.0, 99.0], ["a", "a"], 10.0)["episodes"] == 1
    assert open_loop.tail_figures([0.0, 50.5], [99.0, 99.0], ["a", "a"], 10.0)["episodes"] == 2


def test_target_kinds_follow_the_targets_file_line_by_line(open_loop, tmp_path):
    targets = tmp_path / "targets.json"
    urls = ["http://127.0.0.1:1/reports/latency?from=2026-06-01&to=2026-06-02",
            "http://127.0.0.1:1/reports/daily-recon?date=2026-06-01&merchant=m_0001"]
    targets.write_text("".join(json.dumps({"method": "GET", "url": u, "header": {}}) + "\n" for u in urls))
    assert open_loop.target_kinds(targets) == ["latency/all", "daily-recon/one"]


def test_host_probe_reports_its_fastest_and_median_round(open_loop):
    probe = open_loop.host_probe(repeats=3)
    assert set(probe) == {"fastest_ms", "median_ms"}
    assert 0 < probe["fastest_ms"] <= probe["median_ms"]
