"""Password hashing with argon2id; hashes only ever leave here to be stored.

An argon2id verify costs ~140 ms of CPU. `PasswordChecks` runs it in a small worker pool
(argon2-cffi releases the GIL while hashing) whose threads run at a lower scheduling
priority (nice +10), never on the event loop that also forwards media, with at most
`PASSWORD_CHECKS_AT_ONCE` running and `PASSWORD_CHECKS_WAITING` queued; a check beyond that
is refused (`PasswordChecksBusy`) instead of queued without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verified against when the username is unknown, so that a wrong username and a wrong
# password take the same time and cannot be told apart. Made with the same parameters as
# every stored hash (`_hasher`), so it costs the same to verify.
_DUMMY_HASH = _hasher.hash("no such user")

T = TypeVar("T")

Verifier = Callable[[str, str], bool]
"""`(hash, password) -> matches`; argon2's by default, a counting fake in tests."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _argon2_verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(
    password_hash: str | None, password: str, verify: Verifier = _argon2_verify
) -> bool:
    """Whether `password` matches `password_hash`. No hash (an unknown user) is verified
    against the dummy hash all the same (exactly one verify either way) and is never a match."""
    matches = verify(password_hash or _DUMMY_HASH, password)
    return matches and password_hash is not None


def _yield_to_the_loop() -> None:
    """Lower this worker thread's scheduling priority (Linux: nice is per thread), so that
    when the cores are busy the event loop thread runs first and argon2 takes what is left."""
    with contextlib.suppress(AttributeError, OSError):
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(os.getpriority(os.PRIO_PROCESS, me) + 10, 19))


class PasswordChecksBusy(Exception):
    """More password checks are running and waiting than `PasswordChecks` allows."""


class PasswordChecks:
    """Verifies and hashes passwords in a bounded worker pool, off the event loop."""

    def __init__(
        self, at_once: int = 1, waiting: int = 128, verify: Verifier = _argon2_verify
    ) -> None:
        self.at_once = max(1, at_once)
        self.waiting = max(0, waiting)
        self._verify = verify
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        """Checks submitted and not finished (running + queued), counted on the event loop."""

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def full(self) -> bool:
        """Whether a check now would be refused (`PasswordChecksBusy`)."""
        return self._pending >= self.at_once + self.waiting

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """`verify_password` in the pool; `PasswordChecksBusy` when the pool is full."""
        verify = self._verify
        return await self._run(lambda: verify_password(password_hash, password, verify))

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password(password))

    async def _run(self, work: Callable[[], T]) -> T:
        if self.full:
            raise PasswordChecksBusy
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.at_once, thread_name_prefix="password", initializer=_yield_to_the_loop
            )
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            future = self._pool.submit(work)
        except BaseException:
            self._pending -= 1
            raise

        # Counted down when the work itself ends, not when the awaiting request goes away: a
        # check whose client left still occupies a worker until argon2 returns.
        def finished(_: Future[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._done)

        future.add_done_callback(finished)
        return await asyncio.wrap_future(future)

    def _done(self) -> None:
        self._pending -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
