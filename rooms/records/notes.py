"""Notes taken during a consult, pinned to the wall clock and to the recording's timeline.

A note is append-only: it is never edited or deleted; a correction is a new note. Only those
who may join the consult (`Action.ADD_NOTE`, given to the same people as `JOIN_CONSULT`) may
add notes, and only while its room is open (`waiting` or `live`). Those who may view the
consult may read its notes. Every note is written together with its audit entry (`note.added`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import DomainError, IllegalTransition
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.consults.permissions import Action
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, load_permitted, utc_now
from rooms.records.ports import NoteStore

MAX_NOTE_CHARS = 2000
"""Longest note, in characters after trimming: a paragraph of findings, not a report."""

NOTE_STATUSES = frozenset({ConsultStatus.WAITING, ConsultStatus.LIVE})
"""Notes are taken while the consult room is open; afterwards the record is closed."""


class InvalidNote(DomainError):
    """A note that is empty or longer than `MAX_NOTE_CHARS`; nothing was saved."""

    code = "invalid_payload"


@dataclass(frozen=True, slots=True)
class Note:
    id: str
    consult_id: str
    author_id: int
    text: str
    at: datetime
    """Wall-clock time (UTC) the server took the note."""
    recording_offset_s: float | None = None
    """Seconds into the consult's recording session, when one was running; else None."""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def note_text(text: str) -> str:
    """The note's text, trimmed; `InvalidNote` if nothing is left or it is too long."""
    trimmed = text.strip()
    if not trimmed:
        raise InvalidNote("a note needs some text")
    if len(trimmed) > MAX_NOTE_CHARS:
        raise InvalidNote(f"a note is at most {MAX_NOTE_CHARS} characters ({len(trimmed)} given)")
    return trimmed


def recording_offset(recording_started_at: datetime | None, at: datetime) -> float | None:
    """Where `at` falls on the recording's timeline: seconds since the session started.

    None when no recording is running. Never negative (clocks read in a different order).
    """
    if recording_started_at is None:
        return None
    return round(max(0.0, (at - recording_started_at).total_seconds()), 3)


class NoteService:
    """`consults` keeps the consults, `store` their notes."""

    def __init__(self, consults: ConsultStore, store: NoteStore, clock: Clock = utc_now) -> None:
        self.consults = consults
        self.store = store
        self.clock = clock

    async def _consult(self, user: User, consult_id: str, action: Action) -> Consult:
        return await load_permitted(self.consults, user, consult_id, action)

    async def authorize(self, user: User, consult_id: str) -> Consult:
        """The consult, if `user` may add notes to it now; raises otherwise."""
        consult = await self._consult(user, consult_id, Action.ADD_NOTE)
        if consult.status not in NOTE_STATUSES:
            raise IllegalTransition(consult.status.value, "take notes")
        return consult

    async def add(
        self,
        user: User,
        consult_id: str,
        text: str,
        recording_started_at: datetime | None = None,
    ) -> Note:
        """Add a note by `user`; `recording_started_at` is the running recording's start."""
        trimmed = note_text(text)
        await self.authorize(user, consult_id)
        now = self.clock()
        note = Note(
            id=Note.new_id(),
            consult_id=consult_id,
            author_id=user.id,
            text=trimmed,
            at=now,
            recording_offset_s=recording_offset(recording_started_at, now),
        )
        await self.store.add_note(
            note,
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="note.added",
                consult_id=consult_id,
                detail={"note": note.id, "recording_offset_s": note.recording_offset_s},
            ),
        )
        return note

    async def list(self, user: User, consult_id: str) -> list[Note]:
        """The consult's notes, oldest first, for those who may view the consult."""
        await self._consult(user, consult_id, Action.VIEW_CONSULT)
        return await self.store.list_notes(consult_id)
