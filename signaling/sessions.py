"""Live socket.io connections follow their user: an expired token or a disabled user ends them.

A connection is authenticated once, at connect; this keeps it honest afterwards. Every event
checks the token's expiry, and a sweep every `SOCKET_RECHECK_SECONDS` reloads the users behind
the open connections: a connection whose token expired or whose user was disabled (or deleted)
is sent `session-ended` `{code, message}` and disconnected, so it leaves its consult room like any
departure. The bound: at most `SOCKET_RECHECK_SECONDS` after the token expires or the user is
disabled (docs/protocol.md).
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
from rooms.consults.ports import ConsultStore
from signaling import errors
from signaling.errors import ApiError

log = logging.getLogger(__name__)

TOKEN_EXPIRED = "token_expired"
USER_DISABLED = "user_disabled"


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
        store: ConsultStore,
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
        active = {u.id: u for u in await self.store.list_users() if u.active}
        for sid, session in list(self._sessions.items()):
            fresh = active.get(session.user.id)
            if fresh is None:
                await self.end(sid, USER_DISABLED, "your account was disabled")
                ended += 1
            else:
                session.user = fresh  # a changed name or role reaches the live socket too
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
