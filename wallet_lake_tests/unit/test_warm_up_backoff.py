"""The curation worker's resume backoff (Warming.resume_delay_s): the idle time before a stopped
warm-up resumes doubles for each resumed warm-up a run stopped, to at most
RESUME_BACKOFF_LIMIT times the setting. The worker's own test (integration/test_curation_worker.py)
sees the first doubling in a real worker; this one the whole rule, without waiting."""

from __future__ import annotations

import pytest

from wallet_lake.lake.curation_worker import Warming


@pytest.mark.parametrize(("stopped", "factor"), [(0, 1), (1, 2), (2, 4), (6, 64), (7, 64), (40, 64)])
def test_each_stopped_resume_doubles_the_wait_up_to_the_limit(stopped: int, factor: int) -> None:
    assert Warming.RESUME_BACKOFF_LIMIT == 64  # as its comment says: 60 s doubled up to 64 min
    warming = Warming(worker=None, events=100_000, resume_after_s=60.0, on_failure=lambda: None)
    warming.resumes_stopped = stopped
    assert warming.resume_delay_s() == 60.0 * factor


def test_no_wait_stays_no_wait() -> None:
    warming = Warming(worker=None, events=100_000, resume_after_s=0.0, on_failure=lambda: None)
    warming.resumes_stopped = 5
    assert warming.resume_delay_s() == 0.0
