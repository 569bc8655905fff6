"""Notes during a consult: who may add them, in which statuses, how long, and the offset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import IllegalTransition, NotFound, PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.records.notes import (
    MAX_NOTE_CHARS,
    InvalidNote,
    NoteService,
    note_text,
    recording_offset,
)
from tests.unit.fakes import (
    ADMIN,
    DISABLED_DOCTOR_A,
    DOCTOR_A,
    DOCTOR_B,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    SUPERVISOR_B,
    InMemoryStore,
    consult_in,
)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


async def consult_of(store: InMemoryStore, status: ConsultStatus) -> Consult:
    consult = consult_in(status)
    await store.add_consult(
        consult, AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult.id)
    )
    return consult


def service(store: InMemoryStore, seconds: float = 0.0) -> NoteService:
    return NoteService(store, store, clock=lambda: NOON + timedelta(seconds=seconds))


async def test_the_exam_room_doctor_and_the_assigned_specialist_add_notes_audited(
    store: InMemoryStore,
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    first = await service(store).add(DOCTOR_A, consult.id, "  BP 148/95  ")
    second = await service(store, seconds=20).add(OBSTETRICIAN, consult.id, "胎心 140 次/分")
    assert first.text == "BP 148/95"  # trimmed
    assert (first.author_id, second.author_id) == (DOCTOR_A.id, OBSTETRICIAN.id)
    assert first.at == NOON and first.recording_offset_s is None
    assert await service(store).list(SUPERVISOR, consult.id) == [first, second]
    added = [e for e in store.audit_log if e.action == "note.added"]
    assert [(e.actor_id, e.detail["note"]) for e in added] == [
        (DOCTOR_A.id, first.id),
        (OBSTETRICIAN.id, second.id),
    ]
    assert all("BP" not in str(e.detail) for e in added)  # the audit names, never copies


@pytest.mark.parametrize(
    "user",
    [DOCTOR_B, OBSTETRICIAN_2, PAEDIATRICIAN, SUPERVISOR, SUPERVISOR_B, ADMIN, DISABLED_DOCTOR_A],
)
async def test_nobody_else_may_add_a_note_and_nothing_is_saved(
    store: InMemoryStore, user: User
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    with pytest.raises(PermissionDenied):
        await service(store).add(user, consult.id, "x")
    assert store.notes == []


@pytest.mark.parametrize("status", [ConsultStatus.WAITING, ConsultStatus.LIVE])
async def test_notes_are_taken_while_the_room_is_open(
    store: InMemoryStore, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    await service(store).add(OBSTETRICIAN, consult.id, "ok")
    assert len(store.notes) == 1


@pytest.mark.parametrize(
    "status",
    [
        ConsultStatus.REQUESTED,
        ConsultStatus.ACCEPTED,
        ConsultStatus.ENDED,
        ConsultStatus.DECLINED,
        ConsultStatus.CANCELLED,
        ConsultStatus.EXPIRED,
    ],
)
async def test_no_notes_before_the_room_opens_or_after_it_closes(
    store: InMemoryStore, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    with pytest.raises(IllegalTransition, match=f"{status.value} cannot take notes"):
        await service(store).add(OBSTETRICIAN, consult.id, "late")
    assert store.notes == []


@pytest.mark.parametrize("text", ["", "   \n\t ", "x" * (MAX_NOTE_CHARS + 1)])
async def test_empty_or_oversized_text_is_refused(store: InMemoryStore, text: str) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    with pytest.raises(InvalidNote) as refused:
        await service(store).add(OBSTETRICIAN, consult.id, text)
    assert refused.value.code == "invalid_payload"
    assert store.notes == [] and not any(e.action == "note.added" for e in store.audit_log)


def test_the_length_limit_counts_characters_after_trimming() -> None:
    assert note_text(" " + "字" * MAX_NOTE_CHARS + " ") == "字" * MAX_NOTE_CHARS


async def test_an_unknown_consult_is_not_found(store: InMemoryStore) -> None:
    with pytest.raises(NotFound):
        await service(store).add(OBSTETRICIAN, "f" * 32, "x")
    with pytest.raises(NotFound):
        await service(store).list(SUPERVISOR, "f" * 32)


async def test_reading_notes_needs_permission_to_view_the_consult(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    await service(store).add(DOCTOR_A, consult.id, "x")
    for user in (DOCTOR_A, OBSTETRICIAN, SUPERVISOR, ADMIN):
        assert len(await service(store).list(user, consult.id)) == 1
    for user in (DOCTOR_B, OBSTETRICIAN_2, SUPERVISOR_B):
        with pytest.raises(PermissionDenied):
            await service(store).list(user, consult.id)


async def test_a_note_taken_while_recording_carries_its_offset_into_the_session(
    store: InMemoryStore,
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    started = NOON + timedelta(seconds=30)
    note = await service(store, seconds=95.25).add(OBSTETRICIAN, consult.id, "see 1:05", started)
    assert note.recording_offset_s == pytest.approx(65.25)
    assert store.audit_log[-1].detail["recording_offset_s"] == pytest.approx(65.25)


def test_the_offset_is_none_without_a_recording_and_never_negative() -> None:
    assert recording_offset(None, NOON) is None
    assert recording_offset(NOON, NOON + timedelta(milliseconds=1500)) == 1.5
    assert recording_offset(NOON + timedelta(seconds=1), NOON) == 0.0
