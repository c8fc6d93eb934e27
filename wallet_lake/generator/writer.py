"""Puts generated hours into the lake's landing area, one object per hour."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from wallet_lake.contracts.landing import landing_prefix
from wallet_lake.generator.events import Generated, HourStats, to_ndjson
from wallet_lake.lake.store import LakeStore


def landing_key(hour: datetime, seed: int, part: int = 0) -> str:
    """Deterministic object name, so rerunning a seed overwrites its hour instead of adding to it."""
    return f"{landing_prefix(hour)}events-{seed}-{part:04d}.ndjson"


def write_generated(
    store: LakeStore,
    generated: Generated,
    seed: int,
    on_hour: Callable[[datetime, str, HourStats], None] | None = None,
) -> list[str]:
    """Write every hour (an empty hour too, so a rerun clears it) and return the keys written.
    S3 stores add SSE-KMS to each put themselves."""
    keys = []
    for hour, lines in generated.lines.items():
        key = landing_key(hour, seed)
        store.put_bytes(key, to_ndjson(lines))
        keys.append(key)
        if on_hour:
            on_hour(hour, key, generated.stats.hours[hour])
    return keys
