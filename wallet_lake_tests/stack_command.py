"""`stack/wallet-stack <command>` as the tests and the soak run it, with SIGINT and SIGTERM at
their default dispositions in the services it starts.

Why: a shell ignores SIGINT in the jobs it starts in the background, and Dagster's in-process runs
(dg.materialize) map SIGTERM to whatever SIGINT does (dagster._utils.interrupts) and leave it so.
A pytest started in the background then ignores SIGTERM after its first in-process run, and every
service a test restarts inherits that: a broker or Connect worker that ignores SIGTERM, which the
graceful-stop tests then wait for in vain. A signal ignored at exec cannot be reset by bash
(`trap - TERM` does nothing for it), so a small exec wrapper resets both before bash starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_DEFAULT_SIGNALS_THEN_EXEC = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def with_default_signals(argv: list[str]) -> list[str]:
    """argv run with SIGINT and SIGTERM at their defaults, whatever this process does with them."""
    return [sys.executable, "-c", _DEFAULT_SIGNALS_THEN_EXEC, *argv]


def wallet_stack(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """`bash stack/wallet-stack <args>` from the repository root; output captured."""
    return subprocess.run(with_default_signals(["bash", str(ROOT / "stack" / "wallet-stack"), *args]), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
