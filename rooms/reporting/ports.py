"""What the reporting package needs from storage: review comments, and consults to count.

Reporting is the upper layer of `rooms`: it reads what the calls and records packages keep
(recordings, notes, attachments) through their own ports, `rooms.calls.ports` and
`rooms.records.ports`. No other feature package reads another.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.institutions import Institution
from rooms.consults.people import Specialty
from rooms.reporting.training_statistics import AttendanceRecord

if TYPE_CHECKING:  # review.py uses these ports: annotations only, no import cycle
    from rooms.reporting.review import Comment


class CommentStore(Protocol):
    """Supervisors' review comments on consults: append-only (no update, no delete)."""

    async def add_comment(self, comment: Comment, audit: AuditEntry) -> None:
        """Save the comment together with its audit entry, or neither."""
        ...

    async def list_comments(self, consult_id: str) -> list[Comment]:
        """The consult's comments, oldest first."""
        ...


class StatisticsStore(Protocol):
    """What the statistics use case reads (and audits); the kernel's `ConsultStore` has it."""

    async def institutions(self) -> list[Institution]: ...

    async def consults_for_statistics(
        self,
        institution_ids: frozenset[int],
        since: datetime,
        until: datetime,
        specialty: Specialty | None = None,
    ) -> list[Consult]:
        """Every consult requested by one of `institution_ids` with since <= requested_at <
        until (of `specialty`, when given), oldest first, with no row limit."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None: ...


class TrainingAttendanceStore(Protocol):
    """The trainings' attendance the statistics count (`storage.sql.training.SqlTrainings`)."""

    async def attendance_for_statistics(
        self, institution_ids: frozenset[int], since: datetime, until: datetime
    ) -> list[AttendanceRecord]:
        """Every attendance record of a held (live or ended) training planned to start in
        since <= starts_at < until, by people of one of `institution_ids`, with no row
        limit; ordered by start, training, person."""
        ...
