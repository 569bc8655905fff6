"""Password checks: one verify whatever the username, in worker threads, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading

import pytest

from signaling.passwords import (
    _DUMMY_HASH,
    PasswordChecks,
    PasswordChecksBusy,
    hash_password,
    verify_password,
)
from tests.support.peer import eventually


class CountingVerifier:
    """Matches when the hash is `hash:<password>`; records every call and its thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.threads: set[str] = set()

    def __call__(self, password_hash: str, password: str) -> bool:
        self.calls.append((password_hash, password))
        self.threads.add(threading.current_thread().name)
        return password_hash == f"hash:{password}"


def test_no_hash_is_verified_once_against_the_dummy_hash_and_never_matches() -> None:
    verify = CountingVerifier()
    assert verify_password(None, "guess", verify) is False
    assert verify.calls == [(_DUMMY_HASH, "guess")]


def test_a_stored_hash_is_verified_once() -> None:
    verify = CountingVerifier()
    assert verify_password("hash:right", "right", verify) is True
    assert verify_password("hash:right", "wrong", verify) is False
    assert len(verify.calls) == 2


def test_the_dummy_hash_has_the_parameters_of_a_stored_one() -> None:
    stored = hash_password("secret")
    assert stored.split("$")[1:4] == _DUMMY_HASH.split("$")[1:4]  # argon2id, version, m/t/p


def test_argon2_round_trip() -> None:
    stored = hash_password("correct horse")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "no such user")  # the dummy's own password
    assert not verify_password("not a hash", "x")


async def test_checks_run_in_worker_threads() -> None:
    verify = CountingVerifier()
    checks = PasswordChecks(verify=verify)
    try:
        assert await checks.verify(None, "guess") is False
        assert await checks.verify("hash:pw", "pw") is True
        assert verify.calls[0] == (_DUMMY_HASH, "guess")
        assert threading.current_thread().name not in verify.threads
        assert all(name.startswith("password") for name in verify.threads)
        assert await checks.hash("pw") != await checks.hash("pw")  # salted, in the pool too
    finally:
        checks.close()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
async def test_workers_run_at_a_lower_priority_than_the_event_loop() -> None:
    niceness: list[int] = []

    def verify(password_hash: str, password: str) -> bool:
        niceness.append(os.getpriority(os.PRIO_PROCESS, 0))  # 0: this thread, on Linux
        return False

    checks = PasswordChecks(verify=verify)
    try:
        await checks.verify(None, "guess")
    finally:
        checks.close()
    loop_nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness == [min(loop_nice + 10, 19)]


async def test_at_most_at_once_run_together_and_the_rest_wait_then_are_refused() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow(password_hash: str, password: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1
        return False

    checks = PasswordChecks(at_once=2, waiting=3, verify=slow)
    try:
        tasks = [asyncio.create_task(checks.verify(None, str(n))) for n in range(5)]
        await eventually(lambda: running == 2, within=5)  # two checking, three waiting
        assert checks.pending == 5
        with pytest.raises(PasswordChecksBusy):
            await checks.verify(None, "sixth")
        release.set()
        assert await asyncio.gather(*tasks) == [False] * 5
        assert most == 2
        assert checks.pending == 0
    finally:
        release.set()
        checks.close()


async def test_a_check_whose_caller_left_still_counts_until_it_ends() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(password_hash: str, password: str) -> bool:
        started.set()
        return release.wait(5)

    checks = PasswordChecks(at_once=1, waiting=0, verify=slow)
    try:
        task = asyncio.create_task(checks.verify(None, "x"))
        await eventually(started.is_set, within=5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert checks.pending == 1  # the worker is still busy with it
        with pytest.raises(PasswordChecksBusy):
            await checks.verify(None, "y")
        release.set()
        await eventually(lambda: checks.pending == 0, within=5)
        assert checks.pending == 0
    finally:
        release.set()
        checks.close()
