"""Per-user rate limiting: a token bucket per key, pure and driven by an injected clock.

The router calls `RateLimiter.check(key)` once per inbound message; a burst of `burst`
messages passes at once, after which messages pass at `rate_per_minute`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from datetime import datetime

# Buckets of quiet users are dropped once this many keys are tracked, so memory stays bounded.
PRUNE_AT = 10_000


class RateLimiter:
    def __init__(
        self,
        rate_per_minute: float = 30,
        burst: int = 10,
        clock: Callable[[], float | datetime] = time.monotonic,
    ) -> None:
        """`clock` returns seconds (`time.monotonic`) or an aware datetime (`crm.clock.now`)."""
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("rate_per_minute must be > 0 and burst >= 1")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def check(self, key: Hashable) -> float | None:
        """Take one token for `key`: None when allowed, else the seconds to wait."""
        now = self._clock()
        if isinstance(now, datetime):
            now = now.timestamp()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > PRUNE_AT:
                self._prune(now)
            return None
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
