"""Requests per minute per token: a token bucket for each caller.

Each caller's bucket holds up to a minute's worth of requests and refills continuously,
so a burst after a quiet spell is fine and a steady flood is held to the rate.  State is
per process: with N replicas behind a load balancer a token gets up to N times the rate
(say so in the docs; a shared store would make the replicas stateful).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens left, when)
        self._lock = threading.Lock()

    def allow(self, caller: str) -> float:
        """0 when ``caller`` may go ahead (and it is counted), else seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            left, then = self._buckets.get(caller, (float(self.per_minute), now))
            left = min(float(self.per_minute), left + (now - then) * rate)
            if left < 1.0:
                self._buckets[caller] = (left, now)
                return (1.0 - left) / rate
            self._buckets[caller] = (left - 1.0, now)
            return 0.0
