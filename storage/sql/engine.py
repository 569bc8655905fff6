"""Connecting to the database: the async engine for a `sqlite:///…` or `postgresql://…` URL,
SQLite's durability pragmas, PostgreSQL's time limits, a busy database reported as
`StorageBusy`, a full disk as `StorageFull` and one that does not answer (or not in time) as
`DatabaseUnavailable` (logged once per outage, by `Availability`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from rooms.consults.errors import DatabaseUnavailable, StorageBusy, StorageFull

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
"""How long opening a connection to PostgreSQL may take before the database counts as
unavailable (asyncpg's own default is 60 s, far longer than any client waits)."""

STATEMENT_TIMEOUT_SECONDS = 10.0
"""How long one PostgreSQL statement may run, waiting for a lock included, before it is
cancelled and the request answered `database_unavailable` (`DATABASE_STATEMENT_TIMEOUT_SECONDS`;
no statement of the application needs more than a fraction of a second)."""

STATEMENT_TIMEOUT_MARGIN_SECONDS = 1.0
"""How much longer than the statement timeout the client waits for PostgreSQL's answer before it
gives up on its own: the server cancels a slow statement itself, but a hung server (stopped,
swapped out, a network that drops packets) cancels nothing."""

POOL_TIMEOUT_SECONDS = 10.0
"""How long a request waits for a pooled connection when all are in use (SQLAlchemy: 30 s)."""

_SQLITE_UNAVAILABLE = (
    "unable to open database file",
    "disk i/o error",
    "readonly database",
    "file is not a database",
)
"""SQLite's messages for a database file it cannot read or write (as opposed to a bug in a
statement, which SQLite also reports as `OperationalError`)."""


_SQLITE_FULL = "database or disk is full"
"""SQLite's message for SQLITE_FULL: a write found no space on the disk (or hit
`max_page_count`)."""

_POSTGRES_DISK_FULL = "53100"
"""PostgreSQL's SQLSTATE `disk_full`."""

_POSTGRES_QUERY_CANCELED = "57014"
"""PostgreSQL's SQLSTATE `query_canceled`: `statement_timeout` ran out (or an operator cancelled
the statement)."""


def full_reason(exc: BaseException) -> str | None:
    """Why `exc` means the database's disk is full, in a few words; None for any other error."""
    if not isinstance(exc, DBAPIError):
        return None
    if _SQLITE_FULL in str(exc.orig).lower():
        return _SQLITE_FULL
    if getattr(exc.orig, "sqlstate", None) == _POSTGRES_DISK_FULL:
        return str(exc.orig)
    return None


def async_url(database_url: str) -> str:
    """The SQLAlchemy async URL for a plain `sqlite:///…` or `postgresql://…` URL."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if database_url.startswith(plain):
            return driver + database_url[len(plain) :]
    return database_url


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a `sqlite:///…` URL; None for PostgreSQL or an in-memory SQLite."""
    url = make_url(async_url(database_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers and the writer proceed together; synchronous=FULL makes every commit
    # durable on disk before it is acknowledged; foreign keys are off in SQLite unless asked.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def postgres_connect_args(
    statement_timeout: float | None, connect_timeout: float | None
) -> dict[str, Any]:
    """asyncpg's arguments for every connection: `connect_timeout` to open it (None: the module's
    `CONNECT_TIMEOUT_SECONDS`); with a `statement_timeout`, PostgreSQL's own `statement_timeout`
    (it cancels a statement running or waiting for a lock that long) and a client-side limit a
    little longer (`command_timeout`: a hung server cancels nothing). None: no statement limit
    (the migrations, which may rewrite large tables)."""
    args: dict[str, Any] = {
        "timeout": CONNECT_TIMEOUT_SECONDS if connect_timeout is None else connect_timeout
    }
    if statement_timeout is not None:
        milliseconds = max(1, round(statement_timeout * 1000))
        args["server_settings"] = {"statement_timeout": str(milliseconds)}
        args["command_timeout"] = statement_timeout + STATEMENT_TIMEOUT_MARGIN_SECONDS
    return args


def create_engine(
    database_url: str,
    *,
    statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS,
    connect_timeout: float | None = None,
) -> AsyncEngine:
    """The engine for `database_url`. On PostgreSQL every connection gets `statement_timeout`
    seconds per statement (None: no limit) and `connect_timeout` seconds to connect (see
    `postgres_connect_args`); SQLite gets its pragmas."""
    url = async_url(database_url)
    if url.startswith("postgresql"):
        # A pooled connection is checked before use, so the first request after PostgreSQL
        # restarts gets a fresh connection rather than the dead one kept through the outage.
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            connect_args=postgres_connect_args(statement_timeout, connect_timeout),
        )
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


def unavailable_reason(exc: BaseException) -> str | None:
    """Why `exc` means the database does not answer (stopped, unreachable, timing out, its file
    unreadable), in a few words; None for any other error (a bug, a constraint, a lock)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return f"connection lost: {exc.orig}"
        if getattr(exc.orig, "sqlstate", None) == _POSTGRES_QUERY_CANCELED:
            return f"statement cancelled: {exc.orig}"
        message = str(exc.orig).lower()
        if any(m in message for m in _SQLITE_UNAVAILABLE):
            return str(exc.orig)
        return None
    if isinstance(exc, PoolTimeout):
        return "no connection free in time"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):  # connection refused, host unreachable, name not resolved
        return str(exc) or type(exc).__name__
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # the connection failed or was closed
        | asyncpg.exceptions.OperatorInterventionError  # shutting down, starting up
        | asyncpg.TooManyConnectionsError,
    ):
        return str(exc) or type(exc).__name__
    return None


class Availability:
    """Whether the database answered when last asked: an outage is logged once when it starts
    (WARNING) and once when the database answers again (INFO), not once per request."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.reason = ""
        self.full_since: float | None = None
        """When a write last found the disk full without a write succeeding since (reads do
        not end it: they succeed on a full disk)."""

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.reason = reason
            log.warning(
                "database unavailable (%s); answering database_unavailable (503) until it "
                "answers again",
                reason,
            )

    def full(self, reason: str) -> None:
        if self.full_since is None:
            self.full_since = time.monotonic()
            log.warning(
                "database storage full (%s); writes answer storage_full (507) until space is freed",
                reason,
            )

    def wrote(self) -> None:
        """A write was committed: the disk has room again."""
        if self.full_since is not None:
            log.info(
                "database storage writable again after %.1f s full",
                time.monotonic() - self.full_since,
            )
            self.full_since = None

    def answered(self) -> None:
        if self.down_since is not None:
            log.info(
                "database answers again after %.1f s unavailable",
                time.monotonic() - self.down_since,
            )
            self.down_since = None
            self.reason = ""


@contextmanager
def storage_errors(availability: Availability) -> Iterator[None]:
    """Report a write that timed out waiting for SQLite's lock as `StorageBusy`, a write that
    found the disk full as `StorageFull`, and a database that does not answer as
    `DatabaseUnavailable` (both noted in `availability`), not as a crash; a block that completes
    tells `availability` the database answered."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, OperationalError) and (
            "locked" in str(exc.orig) or "busy" in str(exc.orig)
        ):
            raise StorageBusy("the database is busy; nothing was saved, try again") from exc
        if (full := full_reason(exc)) is not None:
            availability.full(full)
            raise StorageFull("the server's storage is full; nothing was saved") from exc
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        availability.failed(reason)
        raise DatabaseUnavailable("the database is unavailable; try again later") from exc
    availability.answered()
