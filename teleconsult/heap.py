"""The garbage collector of a serving process, set once start-up is done.

A signaling process holds ~150 MB of objects it built at start-up (modules, models, the
app), which every full (generation-2) collection walked again, and Python's default thresholds
ran a full collection every few seconds under load: in `bench/signaling.py --full` (2 000
clients, 1 000 signals/s) 38 of them, up to 7.9 s of wall time each on a loaded machine, long
enough to miss `REDIS_TIMEOUT_SECONDS` and `ROOM_LEASE_SECONDS`. Once the app has started,
`settle()` collects once and freezes what is there (`gc.freeze()`: the permanent generation,
never walked again), and raises the thresholds so that young collections run a tenth as often
and full ones only after 100 middle ones. In the same run, the server so set ran 1 full
collection (the freeze's) against 38, spent 16 against 48 s of wall time in the collector, and
0.71 against 0.96 ms of CPU per relayed signal (README, "The signal across two processes, and
the pauses behind the tail").
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

THRESHOLDS = (7000, 10, 100)
"""`gc.set_threshold` once settled (Python's defaults: 700, 10, 10)."""


def settle() -> None:
    """Collect once, freeze everything alive now, and raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


async def settled_heap(_app: Any) -> AsyncIterator[None]:
    """An aiohttp cleanup context, appended last: runs `settle()` after every other start-up
    step; gives the frozen objects back to the collector at shutdown."""
    settle()
    yield
    gc.unfreeze()
