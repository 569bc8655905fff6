"""Waiting for a condition from synchronous test code (Playwright tests, subprocess servers):
poll it against a deadline, fail with what was awaited. Async tests use `tests.support.peer`'s
`eventually`."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(predicate: Callable[[], bool], within: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within} s")
        time.sleep(0.05)
