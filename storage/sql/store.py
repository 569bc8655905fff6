"""`ConsultStore` on SQLAlchemy's async engine: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from rooms.calls.recordings import ConsentAnswer, Recording, RecordingStatus, TrackSource
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, MediaMode, PatientSummary, Sex
from rooms.consults.errors import ConcurrentUpdate, StorageBusy
from rooms.consults.institutions import Institution, InstitutionLevel
from rooms.consults.invitations import Invitation
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.ports import ConsultQuery
from rooms.duty.escalation import NoticeKind, Sent
from rooms.duty.push import PushSubscription
from rooms.duty.roster import Shift
from rooms.records.attachments import Attachment, TooManyAttachments
from rooms.records.notes import Note
from rooms.reporting.review import Comment
from storage.sql.schema import (
    attachments,
    audit_log,
    consult_invitations,
    consult_notices,
    consults,
    duty_shifts,
    institutions,
    notes,
    push_subscriptions,
    recording_consents,
    recordings,
    review_comments,
    users,
)


def async_url(database_url: str) -> str:
    """The SQLAlchemy async URL for a plain `sqlite:///…` or `postgresql://…` URL."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if database_url.startswith(plain):
            return driver + database_url[len(plain) :]
    return database_url


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers and the writer proceed together; synchronous=FULL makes every commit
    # durable on disk before it is acknowledged; foreign keys are off in SQLite unless asked.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    engine = create_async_engine(async_url(database_url))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])


def busy_is_retryable(method: Method) -> Method:
    """Report a write that timed out waiting for SQLite's lock as `StorageBusy`, not a crash."""

    @functools.wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StorageBusy("the database is busy; nothing was saved, try again") from exc
            raise

    return guarded  # type: ignore[return-value]


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        institution_id=row.institution_id,
        specialty=Specialty(row.specialty) if row.specialty else None,
        active=row.active,
    )


def _consult(row: Row[Any]) -> Consult:
    patient = row.patient
    return Consult(
        id=row.id,
        patient=PatientSummary(
            name=patient["name"],
            sex=Sex(patient["sex"]),
            age_years=patient.get("age_years"),
            summary=patient.get("summary", ""),
        ),
        specialty=Specialty(row.specialty),
        reason=row.reason,
        intake=row.intake,
        scheduled_at=row.scheduled_at,
        requesting_institution_id=row.requesting_institution_id,
        requesting_doctor_id=row.requesting_doctor_id,
        status=ConsultStatus(row.status),
        media_mode=MediaMode(row.media_mode),
        requested_at=row.requested_at,
        specialist_id=row.specialist_id,
        accepted_at=row.accepted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        closing_note=row.closing_note,
        version=row.version,
    )


def _consult_values(consult: Consult) -> dict[str, Any]:
    p = consult.patient
    return {
        "id": consult.id,
        "status": consult.status.value,
        "media_mode": consult.media_mode.value,
        "specialty": consult.specialty.value,
        "reason": consult.reason,
        "patient": {
            "name": p.name,
            "sex": p.sex.value,
            "age_years": p.age_years,
            "summary": p.summary,
        },
        "intake": consult.intake,
        "scheduled_at": consult.scheduled_at,
        "requested_at": consult.requested_at,
        "requesting_institution_id": consult.requesting_institution_id,
        "requesting_doctor_id": consult.requesting_doctor_id,
        "specialist_id": consult.specialist_id,
        "accepted_at": consult.accepted_at,
        "started_at": consult.started_at,
        "ended_at": consult.ended_at,
        "closing_note": consult.closing_note,
        "version": consult.version,
    }


async def _consults(conn: AsyncConnection, rows: list[Row[Any]]) -> list[Consult]:
    """Consults of these rows, each with its invited specialists (one query for all)."""
    found = [_consult(r) for r in rows]
    if not found:
        return found
    invited: dict[str, set[int]] = {}
    stmt = select(consult_invitations.c.consult_id, consult_invitations.c.specialist_id).where(
        consult_invitations.c.consult_id.in_([c.id for c in found])
    )
    for r in (await conn.execute(stmt)).all():
        invited.setdefault(r.consult_id, set()).add(int(r.specialist_id))
    return [
        replace(c, invited_ids=frozenset(invited[c.id])) if c.id in invited else c for c in found
    ]


def _audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "consult_id": entry.consult_id,
        "detail": entry.detail,
    }


def _recording(row: Row[Any]) -> Recording:
    return Recording(
        id=row.id,
        consult_id=row.consult_id,
        participant_id=row.participant_id,
        source=TrackSource(row.source),
        kind=row.kind,
        codec=row.codec,
        container=row.container,
        storage_key=row.storage_key,
        started_at=row.started_at,
        started_offset_s=row.started_offset_s,
        status=RecordingStatus(row.status),
        duration_s=row.duration_s,
        bytes=row.bytes,
        sha256=row.sha256,
        recovered=row.recovered,
        finished_at=row.finished_at,
    )


def _recording_values(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id,
        "consult_id": rec.consult_id,
        "participant_id": rec.participant_id,
        "source": rec.source.value,
        "kind": rec.kind,
        "codec": rec.codec,
        "container": rec.container,
        "storage_key": rec.storage_key,
        "started_at": rec.started_at,
        "started_offset_s": rec.started_offset_s,
        "status": rec.status.value,
        "duration_s": rec.duration_s,
        "bytes": rec.bytes,
        "sha256": rec.sha256,
        "recovered": rec.recovered,
        "finished_at": rec.finished_at,
    }


def _attachment(row: Row[Any]) -> Attachment:
    return Attachment(
        id=row.id,
        consult_id=row.consult_id,
        uploader_id=row.uploader_id,
        file_name=row.file_name,
        media_type=row.media_type,
        bytes=row.bytes,
        sha256=row.sha256,
        storage_key=row.storage_key,
        uploaded_at=row.uploaded_at,
    )


class SqlConsultStore:
    """Each method is one transaction, committed before it returns."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @busy_is_retryable
    async def add_institution(
        self, name: str, level: InstitutionLevel, parent_id: int | None
    ) -> Institution:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(institutions).values(name=name, level=level.value, parent_id=parent_id)
            )
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            assert new_id is not None
        return Institution(id=int(new_id), name=name, level=level, parent_id=parent_id)

    async def institutions(self) -> list[Institution]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(institutions).order_by(institutions.c.id))).all()
        return [
            Institution(
                id=r.id, name=r.name, level=InstitutionLevel(r.level), parent_id=r.parent_id
            )
            for r in rows
        ]

    @busy_is_retryable
    async def add_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        institution_id: int,
        specialty: Specialty | None,
        password_hash: str,
    ) -> User:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(users).values(
                    username=username,
                    display_name=display_name,
                    role=role.value,
                    institution_id=institution_id,
                    specialty=specialty.value if specialty else None,
                    password_hash=password_hash,
                    active=True,
                )
            )
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            assert new_id is not None
        return User(
            id=int(new_id),
            username=username,
            display_name=display_name,
            role=role,
            institution_id=institution_id,
            specialty=specialty,
        )

    async def get_user(self, user_id: int) -> User | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def credentials(self, username: str) -> tuple[User, str] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return (_user(row), row.password_hash) if row else None

    async def list_users(
        self, role: Role | None = None, specialty: Specialty | None = None
    ) -> list[User]:
        query = select(users).order_by(users.c.id)
        if role is not None:
            query = query.where(users.c.role == role.value)
        if specialty is not None:
            query = query.where(users.c.specialty == specialty.value)
        async with self.engine.connect() as conn:
            return [_user(r) for r in (await conn.execute(query)).all()]

    async def count_users(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    async def add_consult(self, consult: Consult, audit: AuditEntry) -> None:
        await self._append(consults, _consult_values(consult), audit)

    async def get_consult(self, consult_id: str) -> Consult | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(consults).where(consults.c.id == consult_id))).first()
            found = await _consults(conn, [row] if row else [])
        return found[0] if found else None

    @busy_is_retryable
    async def update_consult(self, consult: Consult, audit: AuditEntry) -> Consult:
        values = _consult_values(consult)
        values["version"] = consult.version + 1
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(consults)
                .where(and_(consults.c.id == consult.id, consults.c.version == consult.version))
                .values(**values)
            )
            if result.rowcount != 1:
                raise ConcurrentUpdate(
                    f"consult {consult.id} was changed by someone else; reload and try again"
                )
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))
        return replace(consult, version=consult.version + 1)

    async def list_consults(self, query: ConsultQuery) -> list[Consult]:
        whose: list[ColumnElement[bool]] = []
        if query.requesting_institution_ids:
            whose.append(consults.c.requesting_institution_id.in_(query.requesting_institution_ids))
        if query.specialist_id is not None:
            whose.append(consults.c.specialist_id == query.specialist_id)
        if query.unassigned_specialty is not None:
            whose.append(
                and_(
                    consults.c.specialist_id.is_(None),
                    consults.c.specialty == query.unassigned_specialty.value,
                )
            )
        if query.invited_specialist_id is not None:
            whose.append(
                consults.c.id.in_(
                    select(consult_invitations.c.consult_id).where(
                        consult_invitations.c.specialist_id == query.invited_specialist_id
                    )
                )
            )
        if not whose:
            return []
        stmt = select(consults).where(or_(*whose))
        if query.statuses:
            stmt = stmt.where(consults.c.status.in_([s.value for s in query.statuses]))
        if query.specialties:
            stmt = stmt.where(consults.c.specialty.in_([s.value for s in query.specialties]))
        if query.scheduled_from is not None:
            stmt = stmt.where(consults.c.scheduled_at >= query.scheduled_from)
        if query.scheduled_before is not None:
            stmt = stmt.where(consults.c.scheduled_at < query.scheduled_before)
        if query.recorded is not None:
            has_recording = exists().where(
                and_(
                    recordings.c.consult_id == consults.c.id,
                    recordings.c.status == RecordingStatus.READY.value,
                )
            )
            stmt = stmt.where(has_recording if query.recorded else ~has_recording)
        stmt = (
            stmt.order_by(consults.c.scheduled_at.desc(), consults.c.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        async with self.engine.connect() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

    async def _bump(self, conn: AsyncConnection, consult: Consult) -> None:
        """Take the consult's next version, or `ConcurrentUpdate` if it moved meanwhile."""
        result = await conn.execute(
            update(consults)
            .where(and_(consults.c.id == consult.id, consults.c.version == consult.version))
            .values(version=consult.version + 1)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(
                f"consult {consult.id} was changed by someone else; reload and try again"
            )

    @busy_is_retryable
    async def add_invitation(
        self, consult: Consult, invitation: Invitation, audit: AuditEntry
    ) -> Consult:
        async with self.engine.begin() as conn:
            await self._bump(conn, consult)
            await conn.execute(
                insert(consult_invitations).values(
                    consult_id=invitation.consult_id,
                    specialist_id=invitation.specialist_id,
                    invited_by=invitation.invited_by,
                    invited_at=invitation.at,
                )
            )
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))
        return replace(
            consult,
            version=consult.version + 1,
            invited_ids=consult.invited_ids | {invitation.specialist_id},
        )

    @busy_is_retryable
    async def remove_invitation(
        self, consult: Consult, specialist_id: int, audit: AuditEntry
    ) -> Consult:
        async with self.engine.begin() as conn:
            await self._bump(conn, consult)
            await conn.execute(
                delete(consult_invitations).where(
                    and_(
                        consult_invitations.c.consult_id == consult.id,
                        consult_invitations.c.specialist_id == specialist_id,
                    )
                )
            )
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))
        return replace(
            consult, version=consult.version + 1, invited_ids=consult.invited_ids - {specialist_id}
        )

    async def consults_for_statistics(
        self,
        institution_ids: frozenset[int],
        since: datetime,
        until: datetime,
        specialty: Specialty | None = None,
    ) -> list[Consult]:
        if not institution_ids:
            return []
        stmt = select(consults).where(
            consults.c.requesting_institution_id.in_(sorted(institution_ids)),
            consults.c.requested_at >= since,
            consults.c.requested_at < until,
        )
        if specialty is not None:
            stmt = stmt.where(consults.c.specialty == specialty.value)
        stmt = stmt.order_by(consults.c.requested_at, consults.c.id)
        async with self.engine.connect() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

    @busy_is_retryable
    async def append_audit(self, entry: AuditEntry) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(audit_log).values(**_audit_values(entry)))

    async def audit_trail(self, consult_id: str) -> list[AuditEntry]:
        stmt = (
            select(audit_log).where(audit_log.c.consult_id == consult_id).order_by(audit_log.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor_id=r.actor_id,
                action=r.action,
                consult_id=r.consult_id,
                detail=r.detail,
            )
            for r in rows
        ]

    async def add_recording(self, recording: Recording, audit: AuditEntry) -> None:
        await self._append(recordings, _recording_values(recording), audit)

    @busy_is_retryable
    async def finish_recording(self, recording: Recording, audit: AuditEntry) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(recordings)
                .where(recordings.c.id == recording.id)
                .values(**_recording_values(recording))
            )
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))

    async def get_recording(self, recording_id: str) -> Recording | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(recordings).where(recordings.c.id == recording_id))
            ).first()
        return _recording(row) if row else None

    async def list_recordings(self, consult_id: str) -> list[Recording]:
        stmt = (
            select(recordings)
            .where(recordings.c.consult_id == consult_id)
            .order_by(recordings.c.started_at, recordings.c.id)
        )
        async with self.engine.connect() as conn:
            return [_recording(r) for r in (await conn.execute(stmt)).all()]

    async def unfinished_recordings(self) -> list[Recording]:
        stmt = select(recordings).where(recordings.c.status == RecordingStatus.RECORDING.value)
        async with self.engine.connect() as conn:
            return [_recording(r) for r in (await conn.execute(stmt)).all()]

    async def add_consent(self, answer: ConsentAnswer, audit: AuditEntry) -> None:
        await self._append(recording_consents, asdict(answer), audit)

    async def consents(self, consult_id: str) -> list[ConsentAnswer]:
        rows = await self._consult_rows(recording_consents, consult_id, recording_consents.c.id)
        return [
            ConsentAnswer(
                consult_id=r.consult_id,
                user_id=r.user_id,
                granted=r.granted,
                at=r.at,
                session_id=r.session_id,
            )
            for r in rows
        ]

    @busy_is_retryable
    async def _append(self, table: Table, values: dict[str, Any], audit: AuditEntry) -> None:
        """Insert one row (a consult, a note, a notice...) and its audit entry, or neither."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(table).values(**values))
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))

    async def _consult_rows(
        self, table: Table, consult_id: str, *order: ColumnElement[Any]
    ) -> Sequence[Row[Any]]:
        """A consult's rows of `table` (which has a `consult_id` column), in `order`."""
        stmt = select(table).where(table.c.consult_id == consult_id).order_by(*order)
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).all()

    async def add_note(self, note: Note, audit: AuditEntry) -> None:
        await self._append(notes, asdict(note), audit)

    async def list_notes(self, consult_id: str) -> list[Note]:
        rows = await self._consult_rows(notes, consult_id, notes.c.at, notes.c.id)
        return [Note(**r._mapping) for r in rows]

    async def add_comment(self, comment: Comment, audit: AuditEntry) -> None:
        await self._append(review_comments, asdict(comment), audit)

    async def list_comments(self, consult_id: str) -> list[Comment]:
        table = review_comments
        rows = await self._consult_rows(table, consult_id, table.c.at, table.c.id)
        return [Comment(**r._mapping) for r in rows]

    async def add_attachment(
        self, attachment: Attachment, audit: AuditEntry, max_per_consult: int
    ) -> None:
        async with self.engine.begin() as conn:
            # Two uploads at once must not both pass the count. PostgreSQL: lock the consult's
            # row first. SQLite: the insert comes before the count, because it is the insert
            # that takes the database's single write lock (a plain SELECT starts no
            # transaction in Python's sqlite3), so the count then sees every committed row.
            await conn.execute(
                select(consults.c.id)
                .where(consults.c.id == attachment.consult_id)
                .with_for_update()
            )
            await conn.execute(insert(attachments).values(**asdict(attachment)))
            held = (
                await conn.execute(
                    select(func.count())
                    .select_from(attachments)
                    .where(attachments.c.consult_id == attachment.consult_id)
                )
            ).scalar_one()
            if held > max_per_consult:
                # Leaving the block with an error rolls the insert back.
                raise TooManyAttachments(f"a consult holds at most {max_per_consult} attachments")
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))

    async def count_attachments(self, consult_id: str) -> int:
        stmt = select(func.count()).select_from(attachments)
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(stmt.where(attachments.c.consult_id == consult_id))
                ).scalar_one()
            )

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(attachments).where(attachments.c.id == attachment_id))
            ).first()
        return _attachment(row) if row else None

    async def list_attachments(self, consult_id: str) -> list[Attachment]:
        table = attachments
        rows = await self._consult_rows(table, consult_id, table.c.uploaded_at, table.c.id)
        return [_attachment(r) for r in rows]

    # ---- duty roster, notices, push subscriptions ---------------------------------------

    async def add_shift(self, shift: Shift, audit: AuditEntry) -> None:
        values = {
            "id": shift.id,
            "specialist_id": shift.specialist_id,
            "specialty": shift.specialty.value,
            "start_at": shift.start,
            "end_at": shift.end,
            "tier": shift.tier,
        }
        await self._append(duty_shifts, values, audit)

    async def get_shift(self, shift_id: str) -> Shift | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(duty_shifts).where(duty_shifts.c.id == shift_id))
            ).first()
        return _shift(row) if row else None

    @busy_is_retryable
    async def remove_shift(self, shift_id: str, audit: AuditEntry) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(duty_shifts).where(duty_shifts.c.id == shift_id))
            if result.rowcount != 1:
                return False
            await conn.execute(insert(audit_log).values(**_audit_values(audit)))
        return True

    async def shifts_between(
        self, start: datetime, end: datetime, specialty: Specialty | None = None
    ) -> list[Shift]:
        stmt = select(duty_shifts).where(
            and_(duty_shifts.c.start_at < end, duty_shifts.c.end_at > start)
        )
        if specialty is not None:
            stmt = stmt.where(duty_shifts.c.specialty == specialty.value)
        stmt = stmt.order_by(duty_shifts.c.start_at, duty_shifts.c.id)
        async with self.engine.connect() as conn:
            return [_shift(r) for r in (await conn.execute(stmt)).all()]

    async def consults_with_status(
        self,
        statuses: frozenset[ConsultStatus],
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
        requested_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Consult]:
        stmt = select(consults).where(consults.c.status.in_([s.value for s in statuses]))
        if scheduled_from is not None:
            stmt = stmt.where(consults.c.scheduled_at >= scheduled_from)
        if scheduled_to is not None:
            stmt = stmt.where(consults.c.scheduled_at <= scheduled_to)
        if requested_since is not None:
            stmt = stmt.where(consults.c.requested_at >= requested_since)
        stmt = stmt.order_by(consults.c.requested_at.desc(), consults.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

    async def claim_notice(self, consult_id: str, sent: Sent, audit: AuditEntry) -> bool:
        values = {
            "consult_id": consult_id,
            "kind": sent.kind.value,
            "at": sent.at,
            "recipients": list(sent.recipients),
            "fallback": sent.fallback,
        }
        try:
            await self._append(consult_notices, values, audit)
        except IntegrityError:
            return False  # claimed before, by this process or another
        return True

    async def sent_notices(self, consult_ids: list[str]) -> dict[str, dict[NoticeKind, Sent]]:
        if not consult_ids:
            return {}
        stmt = (
            select(consult_notices)
            .where(consult_notices.c.consult_id.in_(consult_ids))
            .order_by(consult_notices.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out: dict[str, dict[NoticeKind, Sent]] = {}
        for r in rows:
            kind = NoticeKind(r.kind)
            out.setdefault(r.consult_id, {})[kind] = Sent(
                kind, r.at, tuple(int(i) for i in r.recipients), bool(r.fallback)
            )
        return out

    @busy_is_retryable
    async def save_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(push_subscriptions).where(
                    push_subscriptions.c.endpoint == subscription.endpoint
                )
            )
            await conn.execute(
                insert(push_subscriptions).values(
                    user_id=subscription.user_id,
                    endpoint=subscription.endpoint,
                    p256dh=subscription.p256dh,
                    auth=subscription.auth,
                    created_at=subscription.created_at,
                )
            )
            ids = (
                await conn.execute(
                    select(push_subscriptions.c.id)
                    .where(push_subscriptions.c.user_id == subscription.user_id)
                    .order_by(push_subscriptions.c.id.desc())
                )
            ).scalars()
            stale = list(ids)[keep:]
            if stale:
                await conn.execute(
                    delete(push_subscriptions).where(push_subscriptions.c.id.in_(stale))
                )

    @busy_is_retryable
    async def remove_push_subscription(self, endpoint: str, user_id: int | None = None) -> bool:
        stmt = delete(push_subscriptions).where(push_subscriptions.c.endpoint == endpoint)
        if user_id is not None:
            stmt = stmt.where(push_subscriptions.c.user_id == user_id)
        async with self.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def push_subscriptions(self, user_ids: list[int]) -> list[PushSubscription]:
        if not user_ids:
            return []
        stmt = (
            select(push_subscriptions)
            .where(push_subscriptions.c.user_id.in_(user_ids))
            .order_by(push_subscriptions.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            PushSubscription(r.user_id, r.endpoint, r.p256dh, r.auth, r.created_at) for r in rows
        ]


def _shift(row: Row[Any]) -> Shift:
    return Shift(
        id=row.id,
        specialist_id=row.specialist_id,
        specialty=Specialty(row.specialty),
        start=row.start_at,
        end=row.end_at,
        tier=row.tier,
    )
