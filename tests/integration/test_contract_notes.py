"""Notes in storage, kept alike by every implementation: oldest first, with their audit."""

from __future__ import annotations

from datetime import timedelta

from rooms.records.notes import Note
from tests.integration.stores import Stores, actions, audit, booked
from tests.unit.fakes import NOON


async def test_notes_round_trip_oldest_first_with_their_audit(stores: Stores) -> None:
    consult = await booked(stores)
    later = Note(
        Note.new_id(), consult.id, stores.doctor_id, "复查", NOON + timedelta(seconds=5), 12.5
    )
    earlier = Note(Note.new_id(), consult.id, stores.doctor_id, "血压 148/95\n胎心 140", NOON)
    for note in (later, earlier):
        await stores.notes.add_note(note, audit("note.added", consult.id))
    assert await stores.notes.list_notes(consult.id) == [earlier, later]
    assert await stores.notes.list_notes("f" * 32) == []
    assert (await actions(stores, consult.id)).count("note.added") == 2
