"""What the kernel needs from storage: institutions, people, consults and the audit log.

Each feature package declares the storage it needs beside its own code (`rooms.calls.ports`,
`rooms.records.ports`, `rooms.duty.ports`, `rooms.reporting.ports`; invitations in
`rooms.consults.invitations`). `storage.sql` implements them all; unit tests fake them
(`tests/unit/fakes.py`), and both run the same contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import ConclusionDraft, Consult
from rooms.consults.institutions import Institution, InstitutionLevel
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User


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

    async def save_conclusion_draft(self, draft: ConclusionDraft, audit: AuditEntry) -> None:
        """Keep `draft` as the consult's one conclusion draft (replacing any earlier one)."""
        ...

    async def conclusion_draft(self, consult_id: str) -> ConclusionDraft | None: ...

    async def get_consult(self, consult_id: str) -> Consult | None: ...

    async def update_consult(self, consult: Consult, audit: AuditEntry) -> Consult:
        """Save `consult` if the stored version is still `consult.version`; return it bumped.

        Raises `ConcurrentUpdate` when someone else saved first; nothing is written then.
        """
        ...

    async def list_consults(self, query: ConsultQuery) -> list[Consult]: ...

    async def consults_with_status(
        self,
        statuses: frozenset[ConsultStatus],
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
        requested_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Consult]:
        """Consults in these statuses (scheduled within `[from, to]`, requested at or after
        `requested_since`, when given), most recently requested first: the scans of expiry
        (`rooms.consults.expiry`) and of the escalation scheduler (`rooms.duty`)."""
        ...

    async def consults_for_statistics(
        self,
        institution_ids: frozenset[int],
        since: datetime,
        until: datetime,
        specialty: Specialty | None = None,
    ) -> list[Consult]:
        """Every consult requested by one of `institution_ids` with since <= requested_at <
        until (of `specialty`, when given), oldest first. Unlike `list_consults` there is no
        row limit: statistics count them all (`rooms.reporting.ports.StatisticsStore`)."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_trail(self, consult_id: str) -> list[AuditEntry]: ...

    async def count_users(self) -> int: ...

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers."""
        ...
