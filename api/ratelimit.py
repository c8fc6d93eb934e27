"""Token-bucket rate limits, per API key and per client address (pure; clock injected).

A bucket holds at most `burst` tokens and gains `rate_per_s` tokens a second; a request takes
one token or is refused with the time until the next one (the 429's Retry-After). Buckets live
in a bounded TtlCache: a bucket left alone for burst / rate_per_s seconds is full again, the
same as no bucket, so expiring it then loses nothing; the size bound keeps a flood of client
addresses from growing memory (an evicted bucket comes back full, which only errs towards
letting a request through).

Limits are per process: with N uvicorn workers a client gets up to N times the rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.ttl_cache import TtlCache

# Buckets tracked per limiter; about 100 bytes each.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """rate_per_s <= 0 disables the limit (every request allowed)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_buckets: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self.clock = clock
        refill_s = self.burst / rate_per_s if rate_per_s > 0 else 0.0
        self._buckets: TtlCache[str, _Bucket] = TtlCache(max_buckets, refill_s, clock)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def acquire(self, key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until a token is free."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - bucket.tokens) / self.rate_per_s
        # Written back on every call: its expiry counts from its last use.
        self._buckets.set(key, bucket)
        return wait


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds: round up, so a client that waits that long gets a token."""
    return str(max(1, math.ceil(wait_s)))
