"""A bounded map whose entries expire one by one, TTL after they were written (pure; the clock
is injected so tests need no sleeping).

Every entry lives the same TTL, so write order is expiry order: one OrderedDict serves as both
the map and the expiry queue. When full, a write evicts the oldest entry only (the first to
expire anyway), never the whole map."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class TtlCache(Generic[K, V]):
    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        # key -> (expires_at, value), oldest write first. Touched from one event loop: no lock.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, default: V | None = None) -> V | None:
        hit = self._entries.get(key, _MISSING)
        if hit is _MISSING:
            return default
        expires_at, value = hit  # type: ignore[misc]
        if self.clock() >= expires_at:
            del self._entries[key]
            return default
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def set(self, key: K, value: V) -> None:
        """Store `value` for ttl_s from now; a TTL of 0 stores nothing (caching disabled)."""
        if self.ttl_s <= 0:
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[key] = (self.clock() + self.ttl_s, value)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)
