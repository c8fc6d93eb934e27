"""Synthetic payment processor: seeded NDJSON payment events written to the landing area."""

from wallet_lake.generator.events import (
    BAD_KINDS,
    Generated,
    GenerationStats,
    HourStats,
    generate,
    generate_with_stats,
    hours_between,
    to_ndjson,
)
from wallet_lake.generator.writer import landing_key, write_generated

__all__ = [
    "BAD_KINDS",
    "Generated",
    "GenerationStats",
    "HourStats",
    "generate",
    "generate_with_stats",
    "hours_between",
    "landing_key",
    "to_ndjson",
    "write_generated",
]
