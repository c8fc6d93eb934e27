"""bench/api_open_loop.py's figures count latency from each request's scheduled send time: a
request the driver sent late carries its lateness (no coordinated omission). Pure arithmetic on
hand-made results; nothing is timed."""

from __future__ import annotations

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


def test_tail_splits_into_stalls_and_requests_slow_on_their_own(open_loop):
    # 1,000/s for 2 s, every request 1 ms, except: a stall at 500 ms (requests 500-529 answered
    # at 560 ms) and every 100th request of kind "b" from 1,000 on taking 100 ms by itself.
    rows, kinds = [], []
    for k in range(2000):
        due = (k + 1) * MS
        if 499 <= k < 529:
            rows.append((k, 559 * MS, MS, 200))
        elif k >= 1000 and k % 100 == 0:
            rows.append((k, due, 100 * MS, 200))
        else:
            rows.append((k, due, MS, 200))
        kinds.append("b" if k >= 1000 and k % 100 == 0 else "a")
    figures = open_loop.from_schedule(rows, 1000, t0=0, kinds=kinds)
    tail = figures["over_p99"]
    # Over the p99: the ten "b" requests and the stall's ten latest-answered; each is counted.
    assert tail["requests"] == sum(1 for seq, sent, lat, _ in rows if (sent + lat) / MS - (seq + 1) > tail["threshold_ms"])
    assert tail["largest_episodes"][0]["requests"] >= 10
    assert tail["largest_episodes"][0]["at_s"] == pytest.approx(0.5, abs=0.01)
    assert tail["single_request_episodes"] == 10  # the ten "b" requests, 100 ms apart
    assert tail["by_kind"]["b"]["all_share"] == 0.005
    assert tail["by_kind"]["b"]["tail_share"] > 0.2
    assert "over_p99" not in open_loop.from_schedule(rows, 1000, t0=0)


def test_host_probe_reports_its_fastest_and_median_round(open_loop):
    probe = open_loop.host_probe(repeats=3)
    assert set(probe) == {"fastest_ms", "median_ms"}
    assert 0 < probe["fastest_ms"] <= probe["median_ms"]
