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
