"""A sliding-window counter per key (user, username), for joins and failed logins."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = 60.0,
    ) -> None:
        self.per_minute = per_minute
        """Hits allowed per window (a minute unless `window_seconds` says otherwise)."""
        self._clock = clock
        self._window = window_seconds
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        hits = self._hits[key]
        cutoff = self._clock() - self._window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def allow(self, key: str) -> bool:
        """Count a hit for `key`; False (and not counted) when the window is full."""
        hits = self._recent(key)
        if len(hits) >= self.per_minute:
            return False
        hits.append(self._clock())
        return True

    def forget(self, key: str) -> None:
        """Drop `key`'s history (its connection closed)."""
        self._hits.pop(key, None)

    def exhausted(self, key: str) -> bool:
        return len(self._recent(key)) >= self.per_minute

    def hit(self, key: str) -> None:
        self._recent(key).append(self._clock())
