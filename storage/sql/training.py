"""The training package's repository (`rooms.training.ports.TrainingStore`).

A change is saved only if the stored `version` is still the one before it (optimistic, like
consults): two organisers ending the same training at once cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, select, update

from rooms.consults.audit import AuditEntry
from rooms.consults.people import Specialty
from rooms.reporting.training_statistics import AttendanceRecord
from rooms.training.attendance import Attendee, Unwritten
from rooms.training.questions import Question, QuestionStatus
from rooms.training.training import Audience, AudienceKind, Training, TrainingStatus
from storage.sql.database import Database
from storage.sql.schema import training_attendance, training_questions, trainings


def _training(row: Row[Any]) -> Training:
    return Training(
        id=row.id,
        title=row.title,
        organiser_institution_id=row.organiser_institution_id,
        lecturer_ids=frozenset(int(i) for i in row.lecturer_ids),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        audience=Audience(
            AudienceKind(row.audience_kind),
            frozenset(int(i) for i in row.audience_institution_ids),
        ),
        specialties=frozenset(Specialty(s) for s in row.specialties),
        status=TrainingStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        version=row.version,
    )


def _values(training: Training) -> dict[str, Any]:
    return {
        "id": training.id,
        "title": training.title,
        "organiser_institution_id": training.organiser_institution_id,
        "lecturer_ids": sorted(training.lecturer_ids),
        "starts_at": training.starts_at,
        "ends_at": training.ends_at,
        "audience_kind": training.audience.kind.value,
        "audience_institution_ids": sorted(training.audience.institution_ids),
        "specialties": sorted(s.value for s in training.specialties),
        "status": training.status.value,
        "created_by": training.created_by,
        "created_at": training.created_at,
        "version": training.version,
    }


def _question(row: Row[Any]) -> Question:
    return Question(
        id=row.id,
        training_id=row.training_id,
        asker_id=row.asker_id,
        institution_id=row.institution_id,
        text=row.text,
        asked_at=row.asked_at,
        status=QuestionStatus(row.status),
        moderated_by=row.moderated_by,
        moderated_at=row.moderated_at,
    )


class _Stale(Exception):
    """Raised inside the update's transaction so that no audit entry is written."""


class SqlTrainings:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_training(self, training: Training, audit: AuditEntry) -> None:
        async with self.db.audited(audit) as conn:
            await conn.execute(insert(trainings).values(**_values(training)))

    async def get_training(self, training_id: str) -> Training | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(select(trainings).where(trainings.c.id == training_id))
            ).first()
        return _training(row) if row else None

    async def list_trainings(
        self, statuses: frozenset[TrainingStatus] | None = None, limit: int = 500
    ) -> list[Training]:
        stmt = select(trainings).order_by(trainings.c.starts_at.desc(), trainings.c.id)
        if statuses is not None:
            stmt = stmt.where(trainings.c.status.in_(sorted(s.value for s in statuses)))
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt.limit(limit))).all()
        return [_training(row) for row in rows]

    async def update_training(self, training: Training, audit: AuditEntry) -> bool:
        values = _values(training)
        del values["id"]
        try:
            async with self.db.audited(audit) as conn:
                result = await conn.execute(
                    update(trainings)
                    .where(
                        and_(
                            trainings.c.id == training.id,
                            trainings.c.version == training.version - 1,
                        )
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise _Stale
        except _Stale:
            return False
        return True

    async def add_attendance(self, rows: list[Unwritten]) -> None:
        if not rows:
            return
        table = training_attendance
        async with self.db.transaction() as conn:
            for row in rows:
                key = and_(table.c.training_id == row.training_id, table.c.user_id == row.user_id)
                found = (await conn.execute(select(table).where(key))).first()
                if found is None:
                    await conn.execute(
                        insert(table).values(
                            training_id=row.training_id,
                            user_id=row.user_id,
                            institution_id=row.institution_id,
                            first_seen=row.first_seen,
                            last_seen=row.last_seen,
                            seconds=row.added_seconds,
                        )
                    )
                else:
                    await conn.execute(
                        update(table)
                        .where(key)
                        .values(
                            first_seen=min(found.first_seen, row.first_seen),
                            last_seen=max(found.last_seen, row.last_seen),
                            seconds=table.c.seconds + row.added_seconds,
                        )
                    )

    async def attendance(self, training_id: str) -> list[Attendee]:
        table = training_attendance
        stmt = (
            select(table)
            .where(table.c.training_id == training_id)
            .order_by(table.c.seconds.desc(), table.c.user_id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            Attendee(
                r.training_id, r.user_id, r.institution_id, r.first_seen, r.last_seen, r.seconds
            )
            for r in rows
        ]

    # ---- questions (`rooms.training.ports.QuestionStore`) -----------------------------------

    async def add_question(self, question: Question, audit: AuditEntry) -> None:
        async with self.db.audited(audit) as conn:
            await conn.execute(
                insert(training_questions).values(
                    id=question.id,
                    training_id=question.training_id,
                    asker_id=question.asker_id,
                    institution_id=question.institution_id,
                    text=question.text,
                    asked_at=question.asked_at,
                    status=question.status.value,
                    moderated_by=question.moderated_by,
                    moderated_at=question.moderated_at,
                )
            )

    async def get_question(self, question_id: str) -> Question | None:
        table = training_questions
        async with self.db.reading() as conn:
            row = (await conn.execute(select(table).where(table.c.id == question_id))).first()
        return _question(row) if row else None

    async def moderate_question(self, question: Question, audit: AuditEntry) -> bool:
        table = training_questions
        try:
            async with self.db.audited(audit) as conn:
                result = await conn.execute(
                    update(table)
                    .where(
                        and_(
                            table.c.id == question.id,
                            table.c.status == QuestionStatus.PENDING.value,
                        )
                    )
                    .values(
                        status=question.status.value,
                        moderated_by=question.moderated_by,
                        moderated_at=question.moderated_at,
                    )
                )
                if result.rowcount != 1:
                    raise _Stale
        except _Stale:
            return False
        return True

    async def list_questions(
        self, training_id: str, statuses: frozenset[QuestionStatus], limit: int
    ) -> list[Question]:
        table = training_questions
        stmt = (
            select(table)
            .where(
                and_(
                    table.c.training_id == training_id,
                    table.c.status.in_(sorted(s.value for s in statuses)),
                )
            )
            .order_by(table.c.asked_at, table.c.id)
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_question(row) for row in rows]

    # ---- statistics (`rooms.reporting.ports.TrainingAttendanceStore`) ------------------------

    async def attendance_for_statistics(
        self, institution_ids: frozenset[int], since: datetime, until: datetime
    ) -> list[AttendanceRecord]:
        if not institution_ids:
            return []
        a, t = training_attendance, trainings
        held = (TrainingStatus.LIVE.value, TrainingStatus.ENDED.value)
        stmt = (
            select(
                a.c.training_id,
                t.c.starts_at,
                t.c.specialties,
                a.c.user_id,
                a.c.institution_id,
                a.c.seconds,
            )
            .join(t, t.c.id == a.c.training_id)
            .where(
                and_(
                    a.c.institution_id.in_(sorted(institution_ids)),
                    t.c.starts_at >= since,
                    t.c.starts_at < until,
                    t.c.status.in_(held),
                )
            )
            .order_by(t.c.starts_at, a.c.training_id, a.c.user_id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            AttendanceRecord(
                training_id=r.training_id,
                starts_at=r.starts_at,
                specialties=frozenset(Specialty(s) for s in r.specialties),
                user_id=r.user_id,
                institution_id=r.institution_id,
                seconds=float(r.seconds),
            )
            for r in rows
        ]
