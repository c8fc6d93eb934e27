"""Waiting in tests for something another process or thread does: poll until a check returns
something truthy, or fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def deadline_poll(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """check's first truthy value, polled every `interval` seconds for at most `timeout`."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {got!r})")
