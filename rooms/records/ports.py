"""What the records package needs from storage: notes and attachments' metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from rooms.consults.audit import AuditEntry

if TYPE_CHECKING:  # notes.py and attachments.py use these ports: annotations only, no cycle
    from rooms.records.attachments import Attachment
    from rooms.records.notes import Note


class NoteStore(Protocol):
    """Notes taken during consults: append-only (no update, no delete)."""

    async def add_note(self, note: Note, audit: AuditEntry) -> None:
        """Save the note together with its audit entry, or neither."""
        ...

    async def list_notes(self, consult_id: str) -> list[Note]:
        """The consult's notes, oldest first."""
        ...


class AttachmentStore(Protocol):
    """Attachments' metadata (their bytes are in `rooms.records.attachments.AttachmentFiles`)."""

    async def add_attachment(
        self, attachment: Attachment, audit: AuditEntry, max_per_consult: int
    ) -> None:
        """Save the attachment together with its audit entry, or neither.

        Raises `TooManyAttachments` (nothing written) when the consult already holds
        `max_per_consult`, and `IllegalTransition` (nothing written) when the consult is
        finished; the checks and the insert are one transaction.
        """
        ...

    async def count_attachments(self, consult_id: str) -> int: ...

    async def get_attachment(self, attachment_id: str) -> Attachment | None: ...

    async def list_attachments(self, consult_id: str) -> list[Attachment]:
        """The consult's attachments, oldest first."""
        ...
