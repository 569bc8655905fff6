"""The periodic loops (live-session recheck, duty tick) ride out a database outage quietly: the
storage logs the outage once (`storage.sql.engine.Availability`), the loops only try again next
round instead of logging a traceback per round."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notify.duty import DutyDispatcher
from rooms.consults.errors import DatabaseUnavailable
from rooms.consults.people import Role, User
from signaling.sessions import LiveSessions


class Down:
    """A store (or service) whose every call finds the database unavailable; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.third = asyncio.Event()

    async def fail(self, *_args: Any) -> Any:
        self.calls += 1
        if self.calls >= 3:
            self.third.set()
        raise DatabaseUnavailable("the database is unavailable; try again later")

    list_users = get_user = expire_due = fail


async def test_the_session_recheck_skips_rounds_while_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Down()
    sessions = LiveSessions(sio=None, store=down, recheck=timedelta(0))  # type: ignore[arg-type]
    user = User(1, "doctor.a", "Doctor A", Role.EXAM_ROOM_DOCTOR, 1)
    sessions.opened("sid", user, datetime(2999, 1, 1, tzinfo=UTC))
    sessions.start()
    try:
        await asyncio.wait_for(down.third.wait(), 10)
    finally:
        await sessions.stop()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_the_duty_tick_skips_rounds_while_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Down()
    duty: DutyDispatcher[Any] = DutyDispatcher(
        announcer=None,  # type: ignore[arg-type]
        escalation=None,  # type: ignore[arg-type]
        pusher=None,  # type: ignore[arg-type]
        tick=timedelta(0),
        expiry=down,  # type: ignore[arg-type]
    )
    duty.start()
    try:
        await asyncio.wait_for(down.third.wait(), 10)
    finally:
        await duty.stop()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
