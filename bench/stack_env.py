"""The local stack's variables for a benchmark run by hand, exactly as `stack/wallet-stack env`
prints them (stack/local.env, the clone's generated secrets, WL_KAFKA_HOME...); variables already
set in the environment win, as they do for the stack script itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_stack_env() -> None:
    out = subprocess.run(
        ["bash", "-c", 'eval "$(stack/wallet-stack env)" && env -0'], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for item in out.split(b"\0"):
        key, sep, value = item.decode().partition("=")
        if sep:
            os.environ.setdefault(key, value)
