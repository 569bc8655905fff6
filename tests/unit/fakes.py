"""Plain-object fakes of the domain's ports, and builders of domain objects for unit tests."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from rooms.calls.quality import ConsultQuality, QualityBucket
from rooms.calls.recordings import ConsentAnswer, Recording, RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import ConclusionDraft, Consult, MediaMode, PatientSummary, Sex
from rooms.consults.errors import ConcurrentUpdate, IllegalTransition, NotFound
from rooms.consults.institutions import Institution, InstitutionLevel
from rooms.consults.invitations import Invitation
from rooms.consults.lifecycle import FINISHED, ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.ports import ConsultQuery
from rooms.records.attachments import Attachment, StoredFile, TooManyAttachments
from rooms.records.notes import Note
from rooms.reporting.review import Comment

PROVINCE, CITY, COUNTY_A, COUNTY_B, TOWNSHIP_A = 1, 2, 3, 4, 5
INSTITUTIONS = [
    Institution(PROVINCE, "Provincial hospital", InstitutionLevel.PROVINCE),
    Institution(CITY, "City", InstitutionLevel.CITY, PROVINCE),
    Institution(COUNTY_A, "County A", InstitutionLevel.COUNTY, CITY),
    Institution(COUNTY_B, "County B", InstitutionLevel.COUNTY, CITY),
    Institution(TOWNSHIP_A, "Township under A", InstitutionLevel.TOWNSHIP, COUNTY_A),
]

DOCTOR_A = User(10, "doctor.a", "Dr A", Role.EXAM_ROOM_DOCTOR, COUNTY_A)
DOCTOR_B = User(11, "doctor.b", "Dr B", Role.EXAM_ROOM_DOCTOR, COUNTY_B)
OBSTETRICIAN = User(20, "obst", "Obstetrician", Role.SPECIALIST, PROVINCE, Specialty.OBSTETRICS)
OBSTETRICIAN_2 = User(
    22, "obst2", "Obstetrician 2", Role.SPECIALIST, PROVINCE, Specialty.OBSTETRICS
)
PAEDIATRICIAN = User(21, "paed", "Paediatrician", Role.SPECIALIST, PROVINCE, Specialty.PAEDIATRICS)
SUPERVISOR = User(30, "sup", "Provincial supervisor", Role.SUPERVISOR, PROVINCE)
SUPERVISOR_B = User(31, "sup.b", "County B supervisor", Role.SUPERVISOR, COUNTY_B)
ADMIN = User(40, "admin", "Admin", Role.ADMIN, PROVINCE)
DISABLED_DOCTOR_A = replace(DOCTOR_A, id=12, username="old", active=False)
EVERYONE = [
    DOCTOR_A,
    DOCTOR_B,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    SUPERVISOR_B,
    ADMIN,
    DISABLED_DOCTOR_A,
]

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)


def consult_in(
    status: ConsultStatus,
    specialist_id: int | None = OBSTETRICIAN.id,
    institution_id: int = COUNTY_A,
    consult_id: str = "c" * 32,
) -> Consult:
    return Consult(
        id=consult_id,
        patient=PatientSummary("Patient", Sex.FEMALE, 30),
        specialty=Specialty.OBSTETRICS,
        reason="review",
        intake={},
        scheduled_at=NOON,
        requesting_institution_id=institution_id,
        requesting_doctor_id=DOCTOR_A.id,
        status=status,
        media_mode=MediaMode.P2P,
        requested_at=NOON,
        specialist_id=specialist_id,
    )


class InMemoryStore:
    """The storage ports of consults, invitations, recordings, notes, attachments and review
    comments in dictionaries. It passes the same contract tests as the SQL repositories
    (`tests/integration/test_contract_*.py`); the duty ports have no fake."""

    def __init__(self) -> None:
        self._institutions = {i.id: i for i in INSTITUTIONS}
        self._users = {u.id: u for u in EVERYONE}
        self._passwords: dict[int, str] = {}
        self._consults: dict[str, Consult] = {}
        self._drafts: dict[str, ConclusionDraft] = {}
        self.audit_log: list[AuditEntry] = []
        self.recordings: dict[str, Recording] = {}
        self.consent_answers: list[ConsentAnswer] = []
        self.notes: list[Note] = []
        self.comments: list[Comment] = []
        self.attachments: list[Attachment] = []
        self.quality: list[QualityBucket] = []
        self._ids = itertools.count(100)

    async def add_institution(
        self, name: str, level: InstitutionLevel, parent_id: int | None
    ) -> Institution:
        inst = Institution(next(self._ids), name, level, parent_id)
        self._institutions[inst.id] = inst
        return inst

    async def institutions(self) -> list[Institution]:
        return list(self._institutions.values())

    async def add_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        institution_id: int,
        specialty: Specialty | None,
        password_hash: str,
    ) -> User:
        user = User(next(self._ids), username, display_name, role, institution_id, specialty)
        self._users[user.id] = user
        self._passwords[user.id] = password_hash
        return user

    async def get_user(self, user_id: int) -> User | None:
        return self._users.get(user_id)

    async def credentials(self, username: str) -> tuple[User, str] | None:
        for user in self._users.values():
            if user.username == username:
                return user, self._passwords.get(user.id, "")
        return None

    async def list_users(
        self, role: Role | None = None, specialty: Specialty | None = None
    ) -> list[User]:
        return [
            u
            for u in self._users.values()
            if (role is None or u.role is role) and (specialty is None or u.specialty is specialty)
        ]

    async def count_users(self) -> int:
        return len(self._users)

    async def ping(self) -> None:
        return None

    async def add_consult(self, consult: Consult, audit: AuditEntry) -> None:
        self._consults[consult.id] = consult
        self.audit_log.append(audit)

    async def get_consult(self, consult_id: str) -> Consult | None:
        return self._consults.get(consult_id)

    async def save_conclusion_draft(self, draft: ConclusionDraft, audit: AuditEntry) -> None:
        self._drafts[draft.consult_id] = draft
        self.audit_log.append(audit)

    async def conclusion_draft(self, consult_id: str) -> ConclusionDraft | None:
        return self._drafts.get(consult_id)

    async def update_consult(self, consult: Consult, audit: AuditEntry) -> Consult:
        stored = self._consults.get(consult.id)
        if stored is None or stored.version != consult.version:
            raise ConcurrentUpdate("changed by someone else")
        saved = replace(consult, version=consult.version + 1)
        self._consults[consult.id] = saved
        self.audit_log.append(audit)
        return saved

    async def add_invitation(
        self, consult: Consult, invitation: Invitation, audit: AuditEntry
    ) -> Consult:
        return await self.update_consult(
            replace(consult, invited_ids=consult.invited_ids | {invitation.specialist_id}), audit
        )

    async def remove_invitation(
        self, consult: Consult, specialist_id: int, audit: AuditEntry
    ) -> Consult:
        return await self.update_consult(
            replace(consult, invited_ids=consult.invited_ids - {specialist_id}), audit
        )

    async def list_consults(self, query: ConsultQuery) -> list[Consult]:
        def matches(c: Consult) -> bool:
            whose = (
                c.requesting_institution_id in query.requesting_institution_ids
                or (query.specialist_id is not None and c.specialist_id == query.specialist_id)
                or (c.specialist_id is None and c.specialty is query.unassigned_specialty)
                or query.invited_specialist_id in c.invited_ids
            )
            recorded = any(
                r.consult_id == c.id and r.status is RecordingStatus.READY
                for r in self.recordings.values()
            )
            return (
                whose
                and (not query.statuses or c.status in query.statuses)
                and (not query.specialties or c.specialty in query.specialties)
                and (query.scheduled_from is None or c.scheduled_at >= query.scheduled_from)
                and (query.scheduled_before is None or c.scheduled_at < query.scheduled_before)
                and (query.recorded is None or recorded is query.recorded)
            )

        found = sorted(
            (c for c in self._consults.values() if matches(c)),
            key=lambda c: (-c.scheduled_at.timestamp(), c.id),
        )
        return found[query.offset : query.offset + query.limit]

    async def consults_with_status(
        self,
        statuses: frozenset[ConsultStatus],
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
        requested_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Consult]:
        found = [
            c
            for c in self._consults.values()
            if c.status in statuses
            and (scheduled_from is None or c.scheduled_at >= scheduled_from)
            and (scheduled_to is None or c.scheduled_at <= scheduled_to)
            and (requested_since is None or c.requested_at >= requested_since)
        ]
        found.sort(key=lambda c: c.id)
        found.sort(key=lambda c: c.requested_at, reverse=True)
        return found[:limit]

    async def consults_for_statistics(
        self,
        institution_ids: frozenset[int],
        since: datetime,
        until: datetime,
        specialty: Specialty | None = None,
    ) -> list[Consult]:
        found = [
            c
            for c in self._consults.values()
            if c.requesting_institution_id in institution_ids
            and since <= c.requested_at < until
            and (specialty is None or c.specialty is specialty)
        ]
        return sorted(found, key=lambda c: (c.requested_at, c.id))

    async def append_audit(self, entry: AuditEntry) -> None:
        self.audit_log.append(entry)

    async def audit_trail(self, consult_id: str) -> list[AuditEntry]:
        return [e for e in self.audit_log if e.consult_id == consult_id]

    async def add_recording(self, recording: Recording, audit: AuditEntry) -> None:
        self.recordings[recording.id] = recording
        self.audit_log.append(audit)

    async def finish_recording(self, recording: Recording, audit: AuditEntry) -> None:
        self.recordings[recording.id] = recording
        self.audit_log.append(audit)

    async def get_recording(self, recording_id: str) -> Recording | None:
        return self.recordings.get(recording_id)

    async def list_recordings(self, consult_id: str) -> list[Recording]:
        return sorted(
            (r for r in self.recordings.values() if r.consult_id == consult_id),
            key=lambda r: (r.started_at, r.id),
        )

    async def unfinished_recordings(self) -> list[Recording]:
        return [r for r in self.recordings.values() if r.status is RecordingStatus.RECORDING]

    async def add_consent(self, answer: ConsentAnswer, audit: AuditEntry) -> None:
        self.consent_answers.append(answer)
        self.audit_log.append(audit)

    async def consents(self, consult_id: str) -> list[ConsentAnswer]:
        return [a for a in self.consent_answers if a.consult_id == consult_id]

    async def add_note(self, note: Note, audit: AuditEntry) -> None:
        self.notes.append(note)
        self.audit_log.append(audit)

    async def list_notes(self, consult_id: str) -> list[Note]:
        return sorted(
            (n for n in self.notes if n.consult_id == consult_id), key=lambda n: (n.at, n.id)
        )

    async def add_comment(self, comment: Comment, audit: AuditEntry) -> None:
        self.comments.append(comment)
        self.audit_log.append(audit)

    async def list_comments(self, consult_id: str) -> list[Comment]:
        return sorted(
            (c for c in self.comments if c.consult_id == consult_id), key=lambda c: (c.at, c.id)
        )

    async def add_quality(self, buckets: list[QualityBucket]) -> None:
        self.quality.extend(buckets)

    async def quality_of_consult(self, consult_id: str) -> list[QualityBucket]:
        return sorted(
            (b for b in self.quality if b.consult_id == consult_id),
            key=lambda b: (b.start, b.user_id, b.source),
        )

    async def quality_of_consults(self, consult_ids: frozenset[str]) -> list[ConsultQuality]:
        found = {b.consult_id for b in self.quality if b.consult_id in consult_ids}
        return [ConsultQuality.of(c, (b for b in self.quality if b.consult_id == c)) for c in found]

    async def add_attachment(
        self, attachment: Attachment, audit: AuditEntry, max_per_consult: int
    ) -> None:
        if await self.count_attachments(attachment.consult_id) >= max_per_consult:
            raise TooManyAttachments(f"a consult holds at most {max_per_consult} attachments")
        consult = self._consults.get(attachment.consult_id)
        if consult is not None and consult.status in FINISHED:
            raise IllegalTransition(consult.status.value, "take attachments")
        self.attachments.append(attachment)
        self.audit_log.append(audit)

    async def count_attachments(self, consult_id: str) -> int:
        return sum(1 for a in self.attachments if a.consult_id == consult_id)

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        return next((a for a in self.attachments if a.id == attachment_id), None)

    async def list_attachments(self, consult_id: str) -> list[Attachment]:
        return sorted(
            (a for a in self.attachments if a.consult_id == consult_id),
            key=lambda a: (a.uploaded_at, a.id),
        )


class InMemoryAttachmentFiles:
    """`AttachmentFiles` in a dictionary: a file appears only once its stream ended cleanly."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.streams_read = 0

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> StoredFile:
        self.streams_read += 1
        data = b"".join([chunk async for chunk in chunks])
        self.files[key] = data
        return StoredFile(len(data), hashlib.sha256(data).hexdigest())

    async def delete(self, key: str) -> None:
        self.files.pop(key, None)

    def size(self, key: str) -> int:
        if key not in self.files:
            raise NotFound(key)
        return len(self.files[key])

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        yield self.files[key]
