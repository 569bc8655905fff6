"""What only the SQL database does, on a real SQLite file (and PostgreSQL), migrated by Alembic
as `teleconsult migrate` does: durable commits, a clear `busy`, and append-only tables that
refuse UPDATE and DELETE even in plain SQL. The rest of the storage contract is in
`test_contract_*.py`, run against the SQL repositories and the in-memory fake alike."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rooms.consults.errors import StorageBusy
from rooms.consults.institutions import InstitutionLevel
from rooms.records.notes import Note
from rooms.reporting.review import Comment
from storage.sql.engine import create_engine
from storage.sql.migrate import upgrade
from storage.sql.repositories import SqlRepositories
from tests.integration.stores import SqlStores, actions, audit, booked, fresh_database
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
