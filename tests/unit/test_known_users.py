"""`KnownUsers`: the user behind a token from memory, dropped at once when it changes (in this
process, through the change stamp the CLI touches, or by a notice), re-read when it ages out."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

from rooms.consults.people import User
from signaling.known_users import KnownUsers, mark_users_changed
from tests.unit.fakes import DOCTOR_A


class CountingUsers:
    """A user table that counts its reads; `gate` (when set) holds a read until released."""

    def __init__(self, *users: User) -> None:
        self.users = {u.id: u for u in users}
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def get_user(self, user_id: int) -> User | None:
        self.reads += 1
        found = self.users.get(user_id)
        if self.gate is not None:
            await self.gate.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def disabled(user: User) -> User:
    return dataclasses.replace(user, active=False)


async def test_a_known_user_is_answered_without_reading_the_table_again() -> None:
    table = CountingUsers(DOCTOR_A)
    known = KnownUsers(table, timedelta(hours=1))
    assert await known.get_user(DOCTOR_A.id) == DOCTOR_A
    assert await known.get_user(DOCTOR_A.id) == DOCTOR_A
    assert table.reads == 1


async def test_a_forgotten_user_is_read_afresh_and_a_disabled_one_is_seen_so() -> None:
    table = CountingUsers(DOCTOR_A)
    known = KnownUsers(table, timedelta(hours=1))
    await known.get_user(DOCTOR_A.id)
    table.users[DOCTOR_A.id] = disabled(DOCTOR_A)
    known.forget(DOCTOR_A.id)
    found = await known.get_user(DOCTOR_A.id)
    assert found is not None and not found.active


async def test_the_change_stamp_touched_by_another_process_drops_every_user(tmp_path: Path) -> None:
    table = CountingUsers(DOCTOR_A)
    known = KnownUsers(table, timedelta(hours=1), stamp=tmp_path / "users.changed")
    await known.get_user(DOCTOR_A.id)
    table.users[DOCTOR_A.id] = disabled(DOCTOR_A)
    mark_users_changed(tmp_path)  # what the CLI does after `user disable`
    found = await known.get_user(DOCTOR_A.id)
    assert found is not None and not found.active
    mark_users_changed(tmp_path)  # twice within the file system's time granularity: moves too
    await known.get_user(DOCTOR_A.id)
    assert table.reads == 3


async def test_a_user_is_kept_for_the_token_lifetime_only() -> None:
    table = CountingUsers(DOCTOR_A)
    clock = Clock()
    known = KnownUsers(table, timedelta(minutes=10), clock=clock)
    await known.get_user(DOCTOR_A.id)
    clock.now += 599
    await known.get_user(DOCTOR_A.id)
    assert table.reads == 1
    clock.now += 2
    await known.get_user(DOCTOR_A.id)
    assert table.reads == 2


async def test_an_unknown_user_is_not_kept() -> None:
    table = CountingUsers()
    known = KnownUsers(table, timedelta(hours=1))
    assert await known.get_user(DOCTOR_A.id) is None
    table.users[DOCTOR_A.id] = DOCTOR_A
    assert await known.get_user(DOCTOR_A.id) == DOCTOR_A


async def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    table = CountingUsers(DOCTOR_A)
    known = KnownUsers(table, timedelta(hours=1))
    table.gate = asyncio.Event()
    reading = asyncio.create_task(known.get_user(DOCTOR_A.id))
    await asyncio.sleep(0)  # the read started with the user still active ...
    table.users[DOCTOR_A.id] = disabled(DOCTOR_A)
    known.forget(DOCTOR_A.id)  # ... and the user was disabled meanwhile
    table.gate.set()
    assert (await reading) == DOCTOR_A
    table.gate = None
    found = await known.get_user(DOCTOR_A.id)
    assert found is not None and not found.active
