"""The stack command's wrapper: services it starts get SIGINT and SIGTERM at their defaults even
when the test process ignores both (a pytest in the background after an in-process Dagster run)."""

from __future__ import annotations

import signal
import subprocess
import sys

from wallet_lake_tests.stack_command import with_default_signals

_IGNORE_THEN_RUN = (
    "import signal, subprocess, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print(subprocess.run(eval(sys.argv[1]), capture_output=True, text=True).stdout)"
)
_IGNORED_MASK = ["bash", "-c", "grep SigIgn /proc/self/status"]


def _ignored_by_child(argv: list[str]) -> int:
    out = subprocess.run([sys.executable, "-c", _IGNORE_THEN_RUN, repr(argv)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1], 16)


def test_a_child_of_a_process_ignoring_sigterm_ignores_it_too_unless_wrapped():
    term, intr = 1 << (signal.SIGTERM - 1), 1 << (signal.SIGINT - 1)
    assert _ignored_by_child(_IGNORED_MASK) & term  # the trap the wrapper exists for
    assert not _ignored_by_child(with_default_signals(_IGNORED_MASK)) & (term | intr)
