"""Connecting to the database: the async engine for a `sqlite:///…` or `postgresql://…` URL,
SQLite's durability pragmas, and a busy database reported as `StorageBusy`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from rooms.consults.errors import StorageBusy


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


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers and the writer proceed together; synchronous=FULL makes every commit
    # durable on disk before it is acknowledged; foreign keys are off in SQLite unless asked.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    engine = create_async_engine(async_url(database_url))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def busy_as_storage_busy() -> Iterator[None]:
    """Report a write that timed out waiting for SQLite's lock as `StorageBusy`, not a crash."""
    try:
        yield
    except OperationalError as exc:
        if "locked" in str(exc.orig) or "busy" in str(exc.orig):
            raise StorageBusy("the database is busy; nothing was saved, try again") from exc
        raise
