"""What only the SQL database does, on a real SQLite file (and PostgreSQL), migrated by Alembic
as `teleconsult migrate` does: durable commits, a clear `busy`, and append-only tables that
refuse UPDATE and DELETE even in plain SQL. The rest of the storage contract is in
`test_contract_*.py`, run against the SQL repositories and the in-memory fake alike."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from rooms.consults.consult import Consult
from rooms.consults.errors import (
    ConcurrentUpdate,
    DatabaseUnavailable,
    StorageBusy,
    StorageFull,
)
from rooms.consults.institutions import InstitutionLevel
from rooms.records.notes import Note
from rooms.reporting.review import Comment
from signaling.errors import from_domain
from storage.sql import engine
from storage.sql.consults import SqlConsults
from storage.sql.database import Database
from storage.sql.engine import create_engine
from storage.sql.migrate import upgrade
from storage.sql.repositories import SqlRepositories
from tests.integration.stores import (
    SqlStores,
    _county_and_doctor,
    actions,
    audit,
    booked,
    fresh_database,
)
from tests.support.peer import eventually
from tests.unit.fakes import NOON


async def test_sqlite_commits_durably(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    await fresh_database(url)
    engine = create_engine(url)
    async with engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
    await engine.dispose()
    assert (mode, sync) == ("wal", 2)  # 2 = FULL: fsync on every commit


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade(url)
    upgrade(url)


async def test_a_write_that_waits_too_long_for_the_lock_is_a_clear_busy_error(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    await fresh_database(url)
    repos = SqlRepositories.open(url)
    blocker = sqlite3.connect(tmp_path / "locked.db")
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        with pytest.raises(StorageBusy) as caught:
            await repos.consults.add_institution("Province", InstitutionLevel.PROVINCE, None)
        assert caught.value.code == "busy"
    finally:
        blocker.rollback()
        blocker.close()
    assert await repos.consults.institutions() == []
    await repos.close()


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "storage.sql.engine"]


async def test_writers_of_one_process_queue_for_sqlite_rather_than_run_out_of_busy_time(
    tmp_path: Path,
) -> None:
    """Two writes of this process at once: the second waits for the first to commit, however
    long, instead of waiting in SQLite's busy handler until `busy` (cut to 1 ms here, so a
    second writer that reached SQLite while the first holds the lock would fail at once)."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    await fresh_database(url)
    database = Database(create_engine(url))

    def impatient(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=1")

    event.listen(database.engine.sync_engine, "connect", impatient)
    repos = SqlRepositories.on(database)
    release = asyncio.Event()

    async def first_writer() -> None:
        async with database.transaction() as conn:
            await conn.execute(
                text("INSERT INTO institutions (name, level) VALUES ('First', 'province')")
            )
            await release.wait()

    try:
        first = asyncio.create_task(first_writer())
        await eventually(lambda: database._writes is not None and database._writes.locked())
        second = asyncio.create_task(
            repos.consults.add_institution("Second", InstitutionLevel.PROVINCE, None)
        )
        done, _ = await asyncio.wait({second}, timeout=0.5)
        assert not done, "the second writer must wait for the first, not fail busy"
        release.set()
        await first
        assert (await second).name == "Second"
        assert [i.name for i in await repos.consults.institutions()] == ["First", "Second"]
    finally:
        release.set()
        await database.close()


async def test_the_institution_list_is_reused_and_an_addition_is_seen(tmp_path: Path) -> None:
    """Read once and reused for `INSTITUTIONS_KEPT_SECONDS`: one added through this store is
    seen at once, one added by another process (the CLI) once the kept list is that old."""
    url = f"sqlite:///{tmp_path / 'institutions.db'}"
    await fresh_database(url)
    database = Database(create_engine(url))
    now = [1000.0]
    ours = SqlConsults(database, clock=lambda: now[0], institutions_kept=10.0)
    cli = SqlRepositories.open(url)  # another process's view of the same file
    try:
        province = await ours.add_institution("Province", InstitutionLevel.PROVINCE, None)
        assert [i.name for i in await ours.institutions()] == ["Province"]
        await cli.consults.add_institution("County", InstitutionLevel.COUNTY, province.id)
        now[0] += 9.0
        assert [i.name for i in await ours.institutions()] == ["Province"], "reused"
        now[0] += 1.0
        assert [i.name for i in await ours.institutions()] == ["Province", "County"]
        await ours.add_institution("Township", InstitutionLevel.TOWNSHIP, province.id)
        assert [i.name for i in await ours.institutions()][-1] == "Township", "at once"
        listed = await ours.institutions()
        listed.clear()
        assert len(await ours.institutions()) == 3, "a caller cannot change the kept list"
    finally:
        await cli.close()
        await database.close()


async def test_a_database_file_that_cannot_be_opened_is_unavailable_logged_once_and_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'gone' / 'db.sqlite'}"  # its directory does not exist (yet)
    repos = SqlRepositories.open(url)
    caplog.set_level(logging.INFO, logger="storage.sql.engine")
    for _ in range(3):  # reads, writes and the health check alike
        with pytest.raises(DatabaseUnavailable) as caught:
            await repos.consults.institutions()
        assert caught.value.code == "database_unavailable"
        with pytest.raises(DatabaseUnavailable):
            await repos.consults.add_institution("Province", InstitutionLevel.PROVINCE, None)
        with pytest.raises(DatabaseUnavailable):
            await repos.consults.ping()
    [(level, message)] = _outage_lines(caplog)
    assert level == logging.WARNING
    assert "database unavailable (unable to open database file)" in message

    (tmp_path / "gone").mkdir()
    await fresh_database(url)
    assert await repos.consults.institutions() == []
    await repos.consults.ping()
    lines = _outage_lines(caplog)
    assert len(lines) == 2 and lines[1][0] == logging.INFO
    assert "database answers again" in lines[1][1]
    await repos.close()


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not.db").write_bytes(b"this is no SQLite file " * 100)
    repos = SqlRepositories.open(f"sqlite:///{tmp_path / 'not.db'}")
    with pytest.raises(DatabaseUnavailable):
        await repos.consults.ping()
    await repos.close()


async def test_a_postgresql_that_never_answers_is_unavailable_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        repos = SqlRepositories.open(f"postgresql://u:p@127.0.0.1:{port}/db")
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await repos.consults.institutions()
        assert time.monotonic() - started < 5
        assert repos.database.availability.reason == "timed out"
        await repos.close()


async def test_a_bad_statement_stays_a_bug_not_an_outage(sql: SqlStores) -> None:
    with pytest.raises(DBAPIError) as caught:
        async with sql.repos.database.reading() as conn:
            await conn.execute(text("SELEC 1"))
    assert not isinstance(caught.value, DatabaseUnavailable)
    assert sql.repos.database.availability.up


async def _forge(sql: SqlStores, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with sql.repos.database.engine.begin() as conn:
            await conn.execute(text(statement))


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"]
)
async def test_the_audit_log_cannot_be_rewritten_even_in_sql(
    sql: SqlStores, statement: str
) -> None:
    consult = await booked(sql)
    await _forge(sql, statement)
    assert await actions(sql, consult.id) == ["consult.book"]


@pytest.mark.parametrize("statement", ["UPDATE notes SET text = 'forged'", "DELETE FROM notes"])
async def test_notes_cannot_be_rewritten_even_in_sql(sql: SqlStores, statement: str) -> None:
    consult = await booked(sql)
    note = Note(Note.new_id(), consult.id, sql.doctor_id, "血压 148/95", NOON)
    await sql.notes.add_note(note, audit("note.added", consult.id))
    await _forge(sql, statement)
    assert await sql.notes.list_notes(consult.id) == [note]


@pytest.mark.parametrize(
    "statement", ["UPDATE review_comments SET text = 'forged'", "DELETE FROM review_comments"]
)
async def test_comments_cannot_be_rewritten_even_in_sql(sql: SqlStores, statement: str) -> None:
    consult = await booked(sql)
    comment = Comment(
        Comment.new_id(), consult.id, sql.doctor_id, "此处胎心", NOON + timedelta(seconds=1), 12.5
    )
    await sql.comments.add_comment(comment, audit("comment.added", consult.id))
    await _forge(sql, statement)
    assert await sql.comments.list_comments(consult.id) == [comment]


async def test_a_full_database_disk_is_a_clear_storage_full_error_not_a_bug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite answers SQLITE_FULL ("database or disk is full") alike for a full disk and for a
    # file at its page limit: the limit stands in for the disk here.
    url = f"sqlite:///{tmp_path / 'full.db'}"
    await fresh_database(url)
    pages = sqlite3.connect(tmp_path / "full.db").execute("PRAGMA page_count").fetchone()[0]
    repos = SqlRepositories.open(url)
    limit = {"pages": pages}

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute(f"PRAGMA max_page_count = {limit['pages']}")

    event.listen(repos.database.engine.sync_engine, "connect", cap)
    caplog.set_level(logging.INFO, logger="storage.sql.engine")
    with pytest.raises(StorageFull) as caught:
        for n in range(200):  # the last free pages of the file fill up first
            await repos.consults.add_institution(
                f"Province {n}" * 20, InstitutionLevel.PROVINCE, None
            )
    assert caught.value.code == "storage_full"
    error = from_domain(caught.value)
    assert (error.status, error.code) == (507, "storage_full")
    saved = len(await repos.consults.institutions())  # reads still work
    with pytest.raises(StorageFull):
        await repos.consults.add_institution("x" * 9000, InstitutionLevel.PROVINCE, None)
    assert len(await repos.consults.institutions()) == saved, "nothing half-written"
    [(level, message)] = _outage_lines(caplog)
    assert level == logging.WARNING and "database storage full" in message

    limit["pages"] = pages * 100  # space freed
    await repos.database.engine.dispose()
    await repos.consults.add_institution("One more", InstitutionLevel.PROVINCE, None)
    lines = _outage_lines(caplog)
    assert len(lines) == 2 and "writable again" in lines[1][1]
    await repos.close()


async def test_consult_saves_at_once_are_committed_together_each_with_its_audit_entry(
    sql: SqlStores,
) -> None:
    """Thirty saves of consults at once, and a second save of one of them from the same version:
    every save is committed with its own audit entry (on SQLite in one batch, one commit), the
    stale one is refused alone (`ConcurrentUpdate`) and leaves no entry."""
    consults = [await booked(sql, id=Consult.new_id()) for _ in range(30)]

    async def save(consult: Consult, reason: str) -> Consult:
        entry = audit("consult.reason_changed", consult.id)
        return await sql.consults.update_consult(replace(consult, reason=reason), entry)

    saves = [save(c, f"moved {n}") for n, c in enumerate(consults)]
    outcomes = await asyncio.gather(*saves, save(consults[0], "stale"), return_exceptions=True)
    assert [type(o) for o in outcomes[:30]] == [Consult] * 30
    assert isinstance(outcomes[30], ConcurrentUpdate)
    for n, consult in enumerate(consults):
        stored = await sql.consults.get_consult(consult.id)
        assert stored is not None
        assert (stored.reason, stored.version) == (f"moved {n}", consult.version + 1)
        assert await actions(sql, consult.id) == ["consult.book", "consult.reason_changed"]
    group = sql.repos.database.group_commit
    if group is not None:  # SQLite: one batch, one commit, for all 31
        assert (group.batches, group.largest) == (1, 31)


async def test_a_sqlite_batch_that_cannot_commit_saves_nothing_and_says_busy(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    await fresh_database(url)
    repos = SqlRepositories.open(url)
    stores = SqlStores(
        repos.consults,
        repos.recordings,
        repos.notes,
        repos.attachments,
        repos.comments,
        repos.quality,
        0,
        0,
        repos,
    )
    county_id, doctor_id = await _county_and_doctor(repos.consults)
    stores.county_id, stores.doctor_id = county_id, doctor_id
    consults = [await booked(stores, id=Consult.new_id()) for _ in range(3)]
    threads = repos.database.threads
    assert threads is not None

    def impatient(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=1")

    event.listen(threads.write_engine, "connect", impatient)
    await asyncio.to_thread(threads.write_engine.dispose)  # its next connection is impatient
    blocker = sqlite3.connect(tmp_path / "batch.db")
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        saves = [
            repos.consults.update_consult(
                replace(c, reason="moved"), audit("consult.reason_changed", c.id)
            )
            for c in consults
        ]
        outcomes = await asyncio.gather(*saves, return_exceptions=True)
    finally:
        blocker.rollback()
        blocker.close()
    assert [type(o) for o in outcomes] == [StorageBusy] * 3
    for consult in consults:
        assert await actions(stores, consult.id) == ["consult.book"]
        stored = await repos.consults.get_consult(consult.id)
        assert stored is not None and stored.version == consult.version
    await repos.close()
