"""Notes in the SQL store (SQLite and PostgreSQL, migrated by Alembic): round trip, audit, and
append-only in the database itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rooms.records.notes import Note
from storage.sql.store import SqlConsultStore
from tests.integration.test_sql_store import audit, store, stored_consult  # noqa: F401
from tests.unit.fakes import NOON


async def noted_consult(store: SqlConsultStore) -> tuple[str, list[Note]]:  # noqa: F811
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    _county_id, doctor_id = store.test_ids  # type: ignore[attr-defined]
    later = Note(Note.new_id(), consult.id, doctor_id, "复查", NOON + timedelta(seconds=5), 12.5)
    earlier = Note(Note.new_id(), consult.id, doctor_id, "血压 148/95\n胎心 140", NOON, None)
    for note in (later, earlier):
        await store.add_note(note, audit("note.added", consult.id))
    return consult.id, [earlier, later]


async def test_notes_round_trip_oldest_first_with_their_audit(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult_id, notes = await noted_consult(store)
    assert await store.list_notes(consult_id) == notes
    assert await store.list_notes("f" * 32) == []
    assert [e.action for e in await store.audit_trail(consult_id)].count("note.added") == 2


@pytest.mark.parametrize("statement", ["UPDATE notes SET text = 'forged'", "DELETE FROM notes"])
async def test_notes_cannot_be_rewritten_even_in_sql(
    store: SqlConsultStore,  # noqa: F811
    statement: str,
) -> None:
    consult_id, notes = await noted_consult(store)
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(text(statement))
    assert await store.list_notes(consult_id) == notes
