"""What the domain needs from storage; `rooms.sql` implements it, unit tests fake it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from rooms.calls.recordings import ConsentAnswer, Recording
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.institutions import Institution, InstitutionLevel
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User

if TYPE_CHECKING:  # the use cases in rooms use these ports; the imports are for annotations only
    from datetime import datetime

    from rooms.duty.escalation import NoticeKind, Sent
    from rooms.duty.push import PushSubscription
    from rooms.duty.roster import Shift
    from rooms.records.attachments import Attachment
    from rooms.records.notes import Note
    from rooms.reporting.review import Comment


@dataclass(frozen=True, slots=True)
class ConsultQuery:
    """Which consults to list. Criteria combine with OR across the four 'whose' fields."""

    requesting_institution_ids: frozenset[int] = frozenset()
    specialist_id: int | None = None
    unassigned_specialty: Specialty | None = None
    invited_specialist_id: int | None = None
    """Consults this specialist is invited into (`rooms.consults.invitations`)."""
    statuses: frozenset[ConsultStatus] = frozenset()
    limit: int = 200
    # Narrowing criteria (AND), used by the supervisor's filters (`rooms.reporting.review`):
    specialties: frozenset[Specialty] = frozenset()
    """Only these specialties; empty means any."""
    scheduled_from: datetime | None = None
    """Scheduled at or after this instant (UTC-aware)."""
    scheduled_before: datetime | None = None
    """Scheduled strictly before this instant (UTC-aware): the range is half-open."""
    recorded: bool | None = None
    """True: with at least one finished recording; False: with none; None: either."""
    offset: int = 0
    """How many matching consults to skip (newest scheduled first, then by id)."""


class ConsultStore(Protocol):
    """Durable storage of institutions, users, consults and the audit log.

    Every write is committed before the call returns; writes that go together (a consult and
    the audit entry that explains it) are committed together or not at all.
    """

    async def add_institution(
        self, name: str, level: InstitutionLevel, parent_id: int | None
    ) -> Institution: ...

    async def institutions(self) -> list[Institution]: ...

    async def add_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        institution_id: int,
        specialty: Specialty | None,
        password_hash: str,
    ) -> User: ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def credentials(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, or None for an unknown username."""
        ...

    async def list_users(
        self, role: Role | None = None, specialty: Specialty | None = None
    ) -> list[User]: ...

    async def add_consult(self, consult: Consult, audit: AuditEntry) -> None: ...

    async def get_consult(self, consult_id: str) -> Consult | None: ...

    async def update_consult(self, consult: Consult, audit: AuditEntry) -> Consult:
        """Save `consult` if the stored version is still `consult.version`; return it bumped.

        Raises `ConcurrentUpdate` when someone else saved first; nothing is written then.
        """
        ...

    async def list_consults(self, query: ConsultQuery) -> list[Consult]: ...

    async def consults_for_statistics(
        self,
        institution_ids: frozenset[int],
        since: datetime,
        until: datetime,
        specialty: Specialty | None = None,
    ) -> list[Consult]:
        """Every consult requested by one of `institution_ids` with since <= requested_at <
        until (of `specialty`, when given), oldest first. Unlike `list_consults` there is no
        row limit: statistics count them all."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_trail(self, consult_id: str) -> list[AuditEntry]: ...

    async def count_users(self) -> int: ...

    async def ping(self) -> None:
        """Raise unless the database answers."""
        ...


class RecordingStore(Protocol):
    """Durable metadata of recorded tracks and the consent answers that allowed them.

    A `Recording` is added when its track starts being written (status `recording`) and
    finished when its file is finalized, so a crash leaves a row that recovery completes.
    """

    async def add_recording(self, recording: Recording, audit: AuditEntry) -> None: ...

    async def finish_recording(self, recording: Recording, audit: AuditEntry) -> None: ...

    async def get_recording(self, recording_id: str) -> Recording | None: ...

    async def list_recordings(self, consult_id: str) -> list[Recording]: ...

    async def unfinished_recordings(self) -> list[Recording]: ...

    async def add_consent(self, answer: ConsentAnswer, audit: AuditEntry) -> None: ...

    async def consents(self, consult_id: str) -> list[ConsentAnswer]: ...


class NoteStore(Protocol):
    """Notes taken during consults: append-only (no update, no delete)."""

    async def add_note(self, note: Note, audit: AuditEntry) -> None:
        """Save the note together with its audit entry, or neither."""
        ...

    async def list_notes(self, consult_id: str) -> list[Note]:
        """The consult's notes, oldest first."""
        ...


class CommentStore(Protocol):
    """Supervisors' review comments on consults: append-only (no update, no delete)."""

    async def add_comment(self, comment: Comment, audit: AuditEntry) -> None:
        """Save the comment together with its audit entry, or neither."""
        ...

    async def list_comments(self, consult_id: str) -> list[Comment]:
        """The consult's comments, oldest first."""
        ...


class AttachmentStore(Protocol):
    """Attachments' metadata (their bytes are in `rooms.records.attachments.AttachmentFiles`)."""

    async def add_attachment(
        self, attachment: Attachment, audit: AuditEntry, max_per_consult: int
    ) -> None:
        """Save the attachment together with its audit entry, or neither.

        Raises `TooManyAttachments` (nothing written) when the consult already holds
        `max_per_consult`; the count and the insert are one transaction.
        """
        ...

    async def count_attachments(self, consult_id: str) -> int: ...

    async def get_attachment(self, attachment_id: str) -> Attachment | None: ...

    async def list_attachments(self, consult_id: str) -> list[Attachment]:
        """The consult's attachments, oldest first."""
        ...


class DutyStore(Protocol):
    """The duty roster, push subscriptions and the notices sent about consults."""

    async def add_shift(self, shift: Shift, audit: AuditEntry) -> None:
        """Save the shift together with its audit entry, or neither."""
        ...

    async def get_shift(self, shift_id: str) -> Shift | None: ...

    async def remove_shift(self, shift_id: str, audit: AuditEntry) -> bool:
        """Delete the shift (and write the audit entry); False if there was no such shift."""
        ...

    async def shifts_between(
        self, start: datetime, end: datetime, specialty: Specialty | None = None
    ) -> list[Shift]:
        """Shifts that overlap `[start, end)`, earliest first."""
        ...

    async def consults_with_status(
        self,
        statuses: frozenset[ConsultStatus],
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
        requested_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Consult]:
        """Consults in these statuses (scheduled within `[from, to]`, requested at or after
        `requested_since`, when given), most recently requested first."""
        ...

    async def claim_notice(self, consult_id: str, sent: Sent, audit: AuditEntry) -> bool:
        """Record that `sent.kind` goes out for the consult, with its audit entry, atomically.

        False, writing nothing, when that kind was already claimed for the consult (by this or
        another process): the caller must then not send it.
        """
        ...

    async def sent_notices(self, consult_ids: list[str]) -> dict[str, dict[NoticeKind, Sent]]: ...

    async def save_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        """Keep the subscription (replacing one with the same endpoint) and at most `keep` of
        its user's subscriptions, the newest."""
        ...

    async def remove_push_subscription(self, endpoint: str, user_id: int | None = None) -> bool:
        """Forget the subscription (only if it is `user_id`'s, when given)."""
        ...

    async def push_subscriptions(self, user_ids: list[int]) -> list[PushSubscription]: ...
