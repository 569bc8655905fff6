"""SQLite worked in one call: a read, or a batch of audited writes, run whole in a thread of
its own on a synchronous connection to the same file.

Through aiosqlite, each statement is four or five hand-offs between the event loop and the
driver's thread (cursor, execute, fetch, close, the rollback when the connection goes back to
the pool), and each hand-off wakes the event loop; a join made about twenty of them. Here a
whole piece of work — the consult with its invitations, a consult's notes, a batch of status
moves with their audit entries — is one hand-off: the work is a plain function of a
synchronous SQLAlchemy `Connection` (the same tables, types and statements as the async code).

The writer runs a batch in one transaction (`BEGIN IMMEDIATE`), each write in a savepoint of
its own (a write that fails rolls back alone), and commits once: with `synchronous=FULL` the
batch is on disk when the commit returns, before anyone is answered. Only one writer of this
process writes at a time (`Database` holds its write lock around a batch).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, insert
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from rooms.consults.audit import AuditEntry
from storage.sql.engine import sqlite_pragmas
from storage.sql.group_commit import Done, Failed, Outcome
from storage.sql.schema import audit_log

T = TypeVar("T")

Work = Callable[[Connection], Any]
"""A piece of database work: a function of a synchronous connection."""

AuditedWrite = tuple[Work, AuditEntry]
"""A write and the audit entry that explains it: committed together or not at all."""


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "consult_id": entry.consult_id,
        "detail": entry.detail,
    }


def _autocommit_driver(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Python's sqlite3 opens transactions on its own and gets savepoints wrong; with
    # isolation_level None it leaves them to us (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # Take the write lock at the start: a deferred transaction that reads first and then
    # writes can be refused `busy` at once (no busy handler) when another process wrote.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


READER_THREADS = 4
"""Reads run side by side in this many threads (each with its own connection): a read spends
most of its time outside Python's lock (in SQLite, or waiting for the lock back), and one
reader thread made a hundred joins' reads queue behind each other."""


class SqliteThreads:
    """Reader threads and a writer thread, each with its own connection to `path`."""

    def __init__(self, path: Path) -> None:
        url = f"sqlite+pysqlite:///{path}"
        args = {"check_same_thread": False}
        self._reads = create_engine(url, connect_args=args)
        event.listen(self._reads, "connect", sqlite_pragmas)
        self.write_engine: Engine = create_engine(url, connect_args=args)
        event.listen(self.write_engine, "connect", sqlite_pragmas)
        event.listen(self.write_engine, "connect", _autocommit_driver)
        event.listen(self.write_engine, "begin", _begin_immediate)
        """The writer's engine (its connection is made in the writer thread)."""
        self.reader = concurrent.futures.ThreadPoolExecutor(
            READER_THREADS, thread_name_prefix="sqlite-read"
        )
        self.writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a reader's connection (in a reader thread)."""
        with self._reads.connect() as conn:
            return work(conn)

    def commit(self, writes: Sequence[AuditedWrite]) -> list[Outcome]:
        """Run every write with its audit entry, each in a savepoint, and commit them together
        (in the writer thread). A write that raises a domain error (its version check) is
        rolled back alone and reported `Failed`; a database error (busy, full, gone) rolls back
        the whole batch and is raised."""
        outcomes: list[Outcome] = []
        with self.write_engine.begin() as conn:
            for work, audit in writes:
                savepoint = conn.begin_nested()
                try:
                    value = work(conn)
                    conn.execute(insert(audit_log).values(**audit_values(audit)))
                except DBAPIError:
                    savepoint.rollback()
                    raise
                except Exception as exc:  # a refusal of this write alone
                    savepoint.rollback()
                    outcomes.append(Failed(exc))
                    continue
                savepoint.commit()
                outcomes.append(Done(value))
        return outcomes

    def close(self) -> None:
        self.reader.shutdown(wait=True)
        self.writer.shutdown(wait=True)
        self._reads.dispose()
        self.write_engine.dispose()
