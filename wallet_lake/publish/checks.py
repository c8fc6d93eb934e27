"""The topic asset's check: the keys the broker acknowledged equal the curated payment_ids of the
landing hour, each exactly once (pure: takes the two key lists, no Kafka or lake access)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

SAMPLE = 20


@dataclass(frozen=True)
class KeyComparison:
    curated: int
    delivered: int
    missing: list[str]  # curated payment_ids acknowledged fewer times than curated, i.e. never (sample)
    unexpected: list[str]  # acknowledged keys that are not curated payment_ids of the hour (sample)
    repeated: list[str]  # keys acknowledged more often than they are curated (sample)
    missing_count: int
    unexpected_count: int
    repeated_count: int

    @property
    def passed(self) -> bool:
        return not (self.missing_count or self.unexpected_count or self.repeated_count)

    def metadata(self) -> dict:
        return {
            "curated_ids": self.curated, "delivered_keys": self.delivered,
            "missing": self.missing_count, "unexpected": self.unexpected_count, "repeated": self.repeated_count,
            "examples": {"missing": self.missing, "unexpected": self.unexpected, "repeated": self.repeated},
        }


def _text(key) -> str:
    return key.decode() if isinstance(key, (bytes, bytearray)) else str(key)


def compare_published_keys(curated_ids: Iterable[str], delivered_keys: Iterable[bytes | str]) -> KeyComparison:
    """Compare as multisets, so a key sent twice or a curated row sent under another key fails.
    The usual answer, equal and each key once, is recognised with two sets of bytes (a 1M-key
    hour: 1.6 s, against 3.5 s for the Counters); only a difference is counted key by key."""
    curated_ids = list(curated_ids)
    delivered_keys = list(delivered_keys)
    n = len(delivered_keys)
    if len(curated_ids) == n:
        got = set(delivered_keys) if all(type(k) is bytes for k in delivered_keys) else {_text(k).encode() for k in delivered_keys}
        if len(got) == n:
            want = {i.encode() for i in curated_ids}
            if len(want) == n and want == got:
                return KeyComparison(curated=n, delivered=n, missing=[], unexpected=[], repeated=[],
                                     missing_count=0, unexpected_count=0, repeated_count=0)
    want = Counter(curated_ids)
    got = Counter(_text(k) for k in delivered_keys)
    missing = sorted(k for k, n in want.items() if got[k] < n)
    unexpected = sorted(k for k in got if k not in want)
    repeated = sorted(k for k, n in got.items() if k in want and n > want[k])
    return KeyComparison(
        curated=sum(want.values()), delivered=sum(got.values()),
        missing=missing[:SAMPLE], unexpected=unexpected[:SAMPLE], repeated=repeated[:SAMPLE],
        missing_count=len(missing), unexpected_count=len(unexpected), repeated_count=len(repeated),
    )
