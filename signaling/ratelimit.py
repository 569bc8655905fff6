"""A sliding-window counter per key (user, username, address), for joins and failed logins.

Memory is bounded: a key whose hits have all left the window is forgotten, and at most
`max_keys` keys are tracked at once (beyond it the key least recently hit is dropped, so a
flood of distinct keys — credential stuffing over many usernames — cannot grow it without
end). Each key holds at most `per_minute` timestamps.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = 60.0,
        max_keys: int = 10_000,
    ) -> None:
        self.per_minute = per_minute
        """Hits allowed per window (a minute unless `window_seconds` says otherwise)."""
        self.max_keys = max(1, max_keys)
        """Keys tracked at once; the least recently hit is forgotten beyond it."""
        self._clock = clock
        self._window = window_seconds
        # Ordered by last hit, oldest first, so expired keys are found at the front.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """Keys tracked now."""
        return len(self._hits)

    def _expire(self, cutoff: float) -> None:
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > cutoff:
                return
            del self._hits[key]

    def _count(self, key: str) -> int:
        cutoff = self._clock() - self._window
        self._expire(cutoff)
        hits = self._hits.get(key)
        if hits is None:
            return 0
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return len(hits)

    def _add(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(self._clock())
        while len(hits) > max(self.per_minute, 1):
            hits.popleft()

    def allow(self, key: str) -> bool:
        """Count a hit for `key`; False (and not counted) when the window is full."""
        if self._count(key) >= self.per_minute:
            return False
        self._add(key)
        return True

    def forget(self, key: str) -> None:
        """Drop `key`'s history (its connection closed)."""
        self._hits.pop(key, None)

    def exhausted(self, key: str) -> bool:
        """Whether `key`'s window is full (looking does not count as a hit)."""
        return self._count(key) >= self.per_minute

    def hit(self, key: str) -> None:
        self._count(key)
        self._add(key)
