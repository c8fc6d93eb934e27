"""Versions of the local stack that test helpers need, read from where each is declared (no copy):
the PostgreSQL major version from PG_MAJOR in stack/wallet-stack."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pg_major() -> str:
    found = re.findall(r"^PG_MAJOR=(\d+)$", (ROOT / "stack" / "wallet-stack").read_text(), re.MULTILINE)
    assert len(found) == 1, f"stack/wallet-stack: expected one PG_MAJOR=N line, found {found}"
    return found[0]


def pg_bin() -> Path:
    """The PostgreSQL binaries stack/wallet-stack runs: WL_PG_BIN, else Debian's folder of PG_MAJOR."""
    from wallet_lake.settings import StackSettings, load

    return Path(load(StackSettings).pg_bin or f"/usr/lib/postgresql/{pg_major()}/bin")
