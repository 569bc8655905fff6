"""The users behind tokens, kept in memory for a token's lifetime so a request or a connection
does not wait on the database to learn who is calling.

A user is loaded once and kept for `ttl` (TOKEN_TTL_SECONDS: no token that could name it lives
longer). A change to a user drops the entry at once, wherever it is made:

- in this process: `forget(user_id)`;
- by the CLI (`teleconsult user disable|enable`, another process) on the same machine: it
  touches the change stamp in DATA_DIR (`USERS_CHANGED_FILE`); every lookup compares the stamp's
  modification time (one `stat`, no database) and drops every entry when it moved;
- by the CLI on another machine, with `REDIS_URL`: it publishes the user id on `USERS_CHANNEL`,
  which every signaling process reads (`signaling.cluster.RoomCluster`) and forgets the user.

So a disabled user is refused on the next request or connection, as when every lookup read the
database; only a disabled user's already open connections wait for the sweep
(`signaling.sessions`, SOCKET_RECHECK_SECONDS), as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from rooms.consults.people import User

USERS_CHANGED_FILE = "users.changed"
"""In DATA_DIR: touched by whatever changes a user outside the server (the CLI)."""

USERS_CHANNEL = "teleconsult:users-changed"
"""Redis pub/sub channel: the id of a user changed outside the server (the CLI)."""


class UserLookup(Protocol):
    async def get_user(self, user_id: int) -> User | None: ...


class KnownUsers:
    """`get_user` from memory when the user was loaded within `ttl` and nothing changed since."""

    def __init__(
        self,
        store: UserLookup,
        ttl: timedelta,
        stamp: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl.total_seconds()
        self._stamp = stamp
        self._clock = clock
        self._seen_stamp = self._stamp_now()
        self._users: dict[int, tuple[User, float]] = {}
        self._generation = 0
        """Moves on every drop: a load that a drop overtook is not kept."""
        self.loads = 0
        """Lookups that went to the database (for tests and benchmarks)."""

    def _stamp_now(self) -> int:
        if self._stamp is None:
            return 0
        try:
            return os.stat(self._stamp).st_mtime_ns
        except OSError:
            return 0

    async def get_user(self, user_id: int) -> User | None:
        stamp = self._stamp_now()
        if stamp != self._seen_stamp:
            self._seen_stamp = stamp
            self.forget_all()
        now = self._clock()
        kept = self._users.get(user_id)
        if kept is not None and kept[1] > now:
            return kept[0]
        self.loads += 1
        generation = self._generation
        user = await self._store.get_user(user_id)
        if user is not None and generation == self._generation:
            # An unknown id is not kept: a user added later with that id must be found.
            self._users[user_id] = (user, now + self._ttl)
        return user

    def forget(self, user_id: int) -> None:
        """The user changed: the next lookup reads the database."""
        self._generation += 1
        self._users.pop(user_id, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._users.clear()


def mark_users_changed(data_dir: Path) -> None:
    """Tell the servers on this machine that a user changed (the CLI, after writing it)."""
    stamp = data_dir / USERS_CHANGED_FILE
    before = stamp.stat().st_mtime_ns if stamp.exists() else 0
    stamp.touch()
    # Two changes within the file system's timestamp granularity would leave the same time:
    # always move it past the last one.
    now = time.time_ns()
    os.utime(stamp, ns=(now, max(now, before + 1)))
