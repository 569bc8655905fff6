"""How the repositories use the database: reads, transactions, and audited writes.

Every change of the consult record is written together with the audit entry that explains
it, in one transaction (`Database.audited`): both are committed, or neither is. This is the
only place that writes the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rooms.consults.audit import AuditEntry
from storage.sql.engine import (
    STATEMENT_TIMEOUT_SECONDS,
    Availability,
    create_engine,
    storage_errors,
)
from storage.sql.group_commit import GroupCommit, Outcome
from storage.sql.schema import audit_log
from storage.sql.sqlite_threads import AuditedWrite, SqliteThreads, audit_values

__all__ = ["Database", "audit_values"]

T = TypeVar("T")


class Database:
    """One engine shared by every repository. Each repository method is one transaction,
    committed before it returns.

    A database that does not answer raises `DatabaseUnavailable` from every method, and
    `availability` logs the outage once; the next block that completes ends it."""

    PING_TIMEOUT_SECONDS = 5.0

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.availability = Availability()
        self._writes = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        """SQLite takes one writer at a time. Writers of this process queue here, in order,
        rather than in SQLite's busy handler: a transaction holds the file's write lock across
        several turns of the event loop, and when the loop is busy (a hundred joins at once)
        the others' `busy_timeout` ran out and they were refused `busy`. Now only a writer of
        another process (the CLI) can make a write wait on SQLite's lock."""
        self.threads: SqliteThreads | None = None
        """SQLite in a file: the reader and writer threads of `read_at_once` and
        `write_at_once` (None: PostgreSQL or an in-memory SQLite, where they run on the
        engine's own connections)."""
        self._group: GroupCommit[AuditedWrite] | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.threads = SqliteThreads(Path(url.database).resolve())
            self._group = GroupCommit(self._commit_batch)

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS,
        connect_timeout: float | None = None,
    ) -> Database:
        """A database on a new engine; the time limits apply to PostgreSQL (`create_engine`)."""
        return cls(
            create_engine(
                database_url, statement_timeout=statement_timeout, connect_timeout=connect_timeout
            )
        )

    async def close(self) -> None:
        if self._group is not None:
            await self._group.drain()
        if self.threads is not None:
            await asyncio.to_thread(self.threads.close)
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers within a few seconds."""
        with storage_errors(self.availability):
            async with asyncio.timeout(self.PING_TIMEOUT_SECONDS), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (no transaction is held open for writing)."""
        with storage_errors(self.availability):
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends and rolled back when it raises;
        a database too busy to take it raises `StorageBusy`, one whose disk is full
        `StorageFull`, one that does not answer `DatabaseUnavailable`."""
        async with self._one_writer():
            with storage_errors(self.availability):
                async with self.engine.begin() as conn:
                    yield conn
                self.availability.wrote()

    @asynccontextmanager
    async def _one_writer(self) -> AsyncIterator[None]:
        if self._writes is None:
            yield  # PostgreSQL locks rows, not the database: writers go side by side
        else:
            async with self._writes:
                yield

    @asynccontextmanager
    async def audited(self, audit: AuditEntry) -> AsyncIterator[AsyncConnection]:
        """A write transaction that ends by appending `audit`: the rows written in the block
        and the entry that explains them are committed together or not at all.

        Leaving the block with an exception (a version check that failed, a limit, a
        duplicate) writes neither the rows nor the entry. The entry goes last because it may
        refer to a consult the block has just inserted.
        """
        async with self.transaction() as conn:
            yield conn
            await conn.execute(insert(audit_log).values(**audit_values(audit)))

    async def read_at_once(self, work: Callable[[Connection], T]) -> T:
        """`work` (a function of a synchronous connection: several statements, no writes) run
        as one call: on SQLite one hand-off to the reader thread, not several per statement."""
        threads = self.threads
        with storage_errors(self.availability):
            if threads is None:
                async with self.engine.connect() as conn:
                    return await conn.run_sync(work)
            return await asyncio.get_running_loop().run_in_executor(
                threads.reader, threads.read, work
            )

    async def write_at_once(self, work: Callable[[Connection], T], audit: AuditEntry) -> T:
        """`work` (a function of a synchronous connection) and `audit` in one transaction,
        committed together or not at all, like `audited`; answered once committed.

        On SQLite the write is one hand-off to the writer thread, committed with the other
        writes queued while the batch before it was committing (`GroupCommit`): each still has
        its own audit entry and fails on its own (a version check), and none is answered before
        its batch is on disk. On PostgreSQL it is a transaction of its own, as `audited`."""
        if self._group is None:
            async with self.audited(audit) as conn:
                return await conn.run_sync(work)
        value: T = await self._group.submit((work, audit))
        return value

    async def _commit_batch(self, writes: Sequence[AuditedWrite]) -> Sequence[Outcome]:
        threads = self.threads
        assert threads is not None
        async with self._one_writer():
            with storage_errors(self.availability):
                outcomes = await asyncio.get_running_loop().run_in_executor(
                    threads.writer, threads.commit, writes
                )
            self.availability.wrote()
        return outcomes

    @property
    def group_commit(self) -> GroupCommit[AuditedWrite] | None:
        """The SQLite writer's batches (how many, how large); None on PostgreSQL."""
        return self._group

    async def append(self, table: Table, values: dict[str, Any], audit: AuditEntry) -> None:
        """Insert one row (a consult, a note, a notice...) and its audit entry, or neither."""
        async with self.audited(audit) as conn:
            await conn.execute(insert(table).values(**values))

    async def rows_of_consult(
        self, table: Table, consult_id: str, *order: ColumnElement[Any]
    ) -> Sequence[Row[Any]]:
        """A consult's rows of `table` (which has a `consult_id` column), in `order`."""
        stmt = select(table).where(table.c.consult_id == consult_id).order_by(*order)
        async with self.reading() as conn:
            return (await conn.execute(stmt)).all()
