"""The kernel's repository: institutions, users, consults with their invitations, the audit log.

Implements `rooms.consults.ports.ConsultStore` and `rooms.consults.invitations.InvitationStore`.
A consult is saved only if its stored `version` is still the one it was loaded with
(`ConcurrentUpdate` otherwise, nothing written), and always with its audit entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Update,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from rooms.calls.recordings import RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import ConclusionDraft, Consult, MediaMode, PatientSummary, Sex
from rooms.consults.errors import ConcurrentUpdate
from rooms.consults.institutions import Institution, InstitutionLevel
from rooms.consults.invitations import Invitation
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.ports import ConsultQuery
from storage.sql.database import Database
from storage.sql.schema import (
    audit_log,
    conclusion_drafts,
    consult_invitations,
    consults,
    institutions,
    recordings,
    users,
)


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
        ended_by_id=row.ended_by_id,
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
        "ended_by_id": consult.ended_by_id,
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


def _consult_with_invitations(conn: Connection, consult_id: str) -> Consult | None:
    """The consult and its invited specialists, in one call on a synchronous connection."""
    row = conn.execute(select(consults).where(consults.c.id == consult_id)).first()
    if row is None:
        return None
    consult = _consult(row)
    stmt = select(consult_invitations.c.specialist_id).where(
        consult_invitations.c.consult_id == consult_id
    )
    invited = frozenset(int(r.specialist_id) for r in conn.execute(stmt))
    return replace(consult, invited_ids=invited) if invited else consult


def _next_version(consult: Consult, values: dict[str, Any]) -> Update:
    """The consult's next version (and `values`), if it is still at `consult.version`."""
    return (
        update(consults)
        .where(and_(consults.c.id == consult.id, consults.c.version == consult.version))
        .values(**values, version=consult.version + 1)
    )


def _check_bumped(rowcount: int, consult: Consult) -> None:
    if rowcount != 1:
        raise ConcurrentUpdate(
            f"consult {consult.id} was changed by someone else; reload and try again"
        )


def _bump_now(conn: Connection, consult: Consult, **values: Any) -> None:
    """`_bump` on a synchronous connection."""
    _check_bumped(conn.execute(_next_version(consult, values)).rowcount, consult)


async def _bump(conn: AsyncConnection, consult: Consult, **values: Any) -> None:
    """Write the consult's next version (and `values`), or `ConcurrentUpdate` if it moved
    since `consult` was loaded."""
    _check_bumped((await conn.execute(_next_version(consult, values))).rowcount, consult)


INSTITUTIONS_KEPT_SECONDS = 10.0
"""How long the institution list read from the database is reused. Institutions are only ever
added (`teleconsult institution add`), never renamed, moved or removed; one added through this
process is seen at once, one added by another process (the CLI) within this time. Every
permission check and every consult view reads the tree, so this spares a read per join."""


class SqlConsults:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], float] = time.monotonic,
        institutions_kept: float = INSTITUTIONS_KEPT_SECONDS,
    ) -> None:
        self.db = db
        self._clock = clock
        self._institutions_kept = institutions_kept
        self._institutions: tuple[float, list[Institution]] | None = None
        """When the list was read, and the list."""
        self._institutions_added = 0
        """Institutions added through this store: a list read while one was added is not
        kept (it may be from before)."""
        self._institutions_reading: asyncio.Future[list[Institution]] | None = None
        """The read of the list under way, shared by the callers that wait for it."""

    async def ping(self) -> None:
        await self.db.ping()

    # ---- institutions and users ---------------------------------------------------------

    async def add_institution(
        self, name: str, level: InstitutionLevel, parent_id: int | None
    ) -> Institution:
        async with self.db.transaction() as conn:
            result = await conn.execute(
                insert(institutions).values(name=name, level=level.value, parent_id=parent_id)
            )
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            assert new_id is not None
        self._institutions = None
        self._institutions_reading = None  # a read begun before the addition may miss it
        self._institutions_added += 1
        return Institution(id=int(new_id), name=name, level=level, parent_id=parent_id)

    async def institutions(self) -> list[Institution]:
        """Every institution, by id; reused for `INSTITUTIONS_KEPT_SECONDS` (a copy of the
        list each time, so no caller can change what the next one reads). Callers that find
        the list out of date together share one read."""
        kept = self._institutions
        if kept is not None and self._clock() - kept[0] < self._institutions_kept:
            return list(kept[1])
        reading = self._institutions_reading
        if reading is None or reading.done():
            reading = self._institutions_reading = asyncio.ensure_future(self._read_institutions())
        return list(await asyncio.shield(reading))

    async def _read_institutions(self) -> list[Institution]:
        read_at, added = self._clock(), self._institutions_added
        stmt = select(institutions).order_by(institutions.c.id)
        rows = await self.db.read_at_once(lambda conn: conn.execute(stmt).all())
        found = [
            Institution(
                id=r.id, name=r.name, level=InstitutionLevel(r.level), parent_id=r.parent_id
            )
            for r in rows
        ]
        if added == self._institutions_added:
            self._institutions = (read_at, found)
        return found

    async def add_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        institution_id: int,
        specialty: Specialty | None,
        password_hash: str,
    ) -> User:
        async with self.db.transaction() as conn:
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
        stmt = select(users).where(users.c.id == user_id)
        row = await self.db.read_at_once(lambda conn: conn.execute(stmt).first())
        return _user(row) if row else None

    async def credentials(self, username: str) -> tuple[User, str] | None:
        async with self.db.reading() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return (_user(row), row.password_hash) if row else None

    async def set_user_active(self, user_id: int, active: bool) -> None:
        """Enable or disable a user (an operator's `teleconsult user disable|enable`)."""
        async with self.db.transaction() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(active=active))

    async def list_users(
        self, role: Role | None = None, specialty: Specialty | None = None
    ) -> list[User]:
        query = select(users).order_by(users.c.id)
        if role is not None:
            query = query.where(users.c.role == role.value)
        if specialty is not None:
            query = query.where(users.c.specialty == specialty.value)
        async with self.db.reading() as conn:
            return [_user(r) for r in (await conn.execute(query)).all()]

    async def count_users(self) -> int:
        async with self.db.reading() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    # ---- consults -------------------------------------------------------------------------

    async def add_consult(self, consult: Consult, audit: AuditEntry) -> None:
        await self.db.append(consults, _consult_values(consult), audit)

    async def get_consult(self, consult_id: str) -> Consult | None:
        return await self.db.read_at_once(lambda conn: _consult_with_invitations(conn, consult_id))

    async def update_consult(self, consult: Consult, audit: AuditEntry) -> Consult:
        """Save the consult's next version with its audit entry (one call into the database;
        on SQLite committed with the writes queued alongside, `Database.write_at_once`)."""
        values = _consult_values(consult)
        del values["version"]  # _bump writes the next one
        await self.db.write_at_once(lambda conn: _bump_now(conn, consult, **values), audit)
        return replace(consult, version=consult.version + 1)

    async def save_conclusion_draft(self, draft: ConclusionDraft, audit: AuditEntry) -> None:
        async with self.db.audited(audit) as conn:
            await conn.execute(
                delete(conclusion_drafts).where(conclusion_drafts.c.consult_id == draft.consult_id)
            )
            await conn.execute(
                insert(conclusion_drafts).values(
                    consult_id=draft.consult_id,
                    text=draft.text,
                    author_id=draft.author_id,
                    saved_at=draft.saved_at,
                )
            )

    async def conclusion_draft(self, consult_id: str) -> ConclusionDraft | None:
        stmt = select(conclusion_drafts).where(conclusion_drafts.c.consult_id == consult_id)
        async with self.db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return ConclusionDraft(
            consult_id=row.consult_id, text=row.text, author_id=row.author_id, saved_at=row.saved_at
        )

    async def add_invitation(
        self, consult: Consult, invitation: Invitation, audit: AuditEntry
    ) -> Consult:
        async with self.db.audited(audit) as conn:
            await _bump(conn, consult)
            await conn.execute(
                insert(consult_invitations).values(
                    consult_id=invitation.consult_id,
                    specialist_id=invitation.specialist_id,
                    invited_by=invitation.invited_by,
                    invited_at=invitation.at,
                )
            )
        return replace(
            consult,
            version=consult.version + 1,
            invited_ids=consult.invited_ids | {invitation.specialist_id},
        )

    async def remove_invitation(
        self, consult: Consult, specialist_id: int, audit: AuditEntry
    ) -> Consult:
        async with self.db.audited(audit) as conn:
            await _bump(conn, consult)
            await conn.execute(
                delete(consult_invitations).where(
                    and_(
                        consult_invitations.c.consult_id == consult.id,
                        consult_invitations.c.specialist_id == specialist_id,
                    )
                )
            )
        return replace(
            consult, version=consult.version + 1, invited_ids=consult.invited_ids - {specialist_id}
        )

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
        async with self.db.reading() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

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
        async with self.db.reading() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

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
        async with self.db.reading() as conn:
            return await _consults(conn, list((await conn.execute(stmt)).all()))

    # ---- the audit log --------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self.db.audited(entry):
            pass  # an entry with no row of its own (a viewing, an export, a recording event)

    async def audit_trail(self, consult_id: str) -> list[AuditEntry]:
        stmt = (
            select(audit_log).where(audit_log.c.consult_id == consult_id).order_by(audit_log.c.id)
        )
        async with self.db.reading() as conn:
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
