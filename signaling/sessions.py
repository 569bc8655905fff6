"""Live socket.io connections follow their user: an expired token or a disabled user ends them.

A connection is authenticated once, at connect; this keeps it honest afterwards. Every event
checks the token's expiry, and a sweep every `SOCKET_RECHECK_SECONDS` looks up the users behind
the open connections again: a connection whose token expired or whose user was disabled (or
deleted) is sent `session-ended` `{code, message}` and disconnected, so it leaves its consult
room like any departure. The bound: at most `SOCKET_RECHECK_SECONDS` after the token expires or
the user is disabled (docs/protocol.md).

The users come from `KnownUsers` (memory; a user changed through the CLI is dropped from it at
once and read afresh), one user at a time, and the sweep lets other work run every
`SWEEP_SLICE` connections: it once loaded every user of the database in one query and checked
every connection in one turn of the event loop, a pause of every signal in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import socketio

from rooms.consults.errors import DatabaseUnavailable
from rooms.consults.people import User
from signaling import errors
from signaling.errors import ApiError
from signaling.known_users import UserLookup

log = logging.getLogger(__name__)

TOKEN_EXPIRED = "token_expired"
USER_DISABLED = "user_disabled"

SWEEP_SLICE = 100
"""Connections the sweep checks before it lets the event loop run other work."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class LiveSession:
    user: User
    expires_at: datetime


class LiveSessions:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        store: UserLookup,
        recheck: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sio = sio
        self.store = store
        self.recheck = recheck
        self.clock = clock
        self._sessions: dict[str, LiveSession] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        """Authenticated connections open now."""
        return len(self._sessions)

    def opened(self, sid: str, user: User, expires_at: datetime) -> None:
        self._sessions[sid] = LiveSession(user, expires_at)

    def closed(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    async def user(self, sid: str) -> User:
        """The connection's user; ends the connection (and raises) if its token has expired."""
        session = self._sessions.get(sid)
        if session is None:
            raise ApiError(errors.TOKEN_MISSING, "connection is not authenticated", 401)
        if session.expires_at <= self.clock():
            await self.end(sid, TOKEN_EXPIRED, "your sign-in has expired; sign in again")
            raise ApiError(errors.TOKEN_EXPIRED, "your sign-in has expired; sign in again", 401)
        return session.user

    async def end(self, sid: str, code: str, message: str) -> None:
        """Tell the connection why, then close it (its departure runs as for any disconnect)."""
        if self._sessions.pop(sid, None) is None:
            return
        log.info("ending connection %s: %s", sid, code)
        try:
            await self.sio.emit("session-ended", {"code": code, "message": message}, to=sid)
        finally:
            # Let the event go out before the close frame (both go through the same queue).
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.sio.disconnect(sid))
            )

    async def sweep(self) -> int:
        """Check every open connection once; the number ended."""
        now = self.clock()
        ended = 0
        expired = [sid for sid, s in self._sessions.items() if s.expires_at <= now]
        for sid in expired:
            await self.end(sid, TOKEN_EXPIRED, "your sign-in has expired; sign in again")
            ended += 1
        if not self._sessions:
            return ended
        users: dict[int, User | None] = {}
        for checked, (sid, session) in enumerate(list(self._sessions.items()), 1):
            user_id = session.user.id
            if user_id not in users:
                users[user_id] = await self.store.get_user(user_id)
            fresh = users[user_id]
            if sid not in self._sessions:
                continue  # closed meanwhile
            if fresh is None or not fresh.active:
                await self.end(sid, USER_DISABLED, "your account was disabled")
                ended += 1
            else:
                session.user = fresh  # a changed name or role reaches the live socket too
            if checked % SWEEP_SLICE == 0:
                await asyncio.sleep(0)
        return ended

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.recheck.total_seconds())
            try:
                await self.sweep()
            except DatabaseUnavailable:
                pass  # logged once per outage by the storage; the next round tries again
            except Exception:
                log.exception("checking live connections failed; trying again next round")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
