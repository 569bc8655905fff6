"""A training: its title, lecturers, schedule, audience and lifecycle.

Lifecycle (`TRANSITIONS`): `scheduled → live → ended`, and `scheduled → cancelled`. A live
training is ended, never cancelled (its broadcast happened and stays as its replay).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from rooms.consults.errors import DomainError, IllegalTransition
from rooms.consults.institutions import InstitutionTree
from rooms.consults.people import Specialty

MAX_TITLE = 200
"""Longest title, in characters."""

MAX_LECTURERS = 5
"""Most lecturers one training names."""

MAX_NAMED_INSTITUTIONS = 200
"""Most institutions a training names one by one (a province has about a hundred)."""

MAX_DURATION = timedelta(hours=8)
"""Longest training: a full day of teaching. A typo cannot make it last a month."""


class TrainingStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class TrainingEvent(StrEnum):
    START = "start"
    END = "end"
    CANCEL = "cancel"


TRANSITIONS: dict[tuple[TrainingStatus, TrainingEvent], TrainingStatus] = {
    (TrainingStatus.SCHEDULED, TrainingEvent.START): TrainingStatus.LIVE,
    (TrainingStatus.LIVE, TrainingEvent.END): TrainingStatus.ENDED,
    (TrainingStatus.SCHEDULED, TrainingEvent.CANCEL): TrainingStatus.CANCELLED,
}
"""Every move a training's status can make; anything else is `IllegalTransition`."""


def next_status(status: TrainingStatus, event: TrainingEvent) -> TrainingStatus:
    found = TRANSITIONS.get((status, event))
    if found is None:
        raise IllegalTransition(status.value, event.value)
    return found


class AudienceKind(StrEnum):
    SUBTREE = "subtree"
    """One institution and everything below it (a city and its counties and townships)."""
    NAMED = "named"
    """Exactly the institutions named, nothing below them."""


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose staff a training is open to."""

    kind: AudienceKind
    institution_ids: frozenset[int]
    """SUBTREE: exactly one, the root; NAMED: one or more."""

    def reaches(self, institution_id: int, tree: InstitutionTree) -> bool:
        """True when staff of `institution_id` are in the audience."""
        if self.kind is AudienceKind.NAMED:
            return institution_id in self.institution_ids
        return any(tree.is_within(institution_id, root) for root in self.institution_ids)

    def institutions(self, tree: InstitutionTree) -> frozenset[int]:
        """Every institution the audience covers."""
        if self.kind is AudienceKind.NAMED:
            return self.institution_ids
        return frozenset().union(*(tree.subtree(root) for root in self.institution_ids))


class InvalidTraining(DomainError):
    """A training that cannot be kept: nothing was saved. `reason` names the broken rule."""

    code = "invalid_training"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Training:
    id: str
    title: str
    organiser_institution_id: int
    """The institution that runs it (the creator's): its admins and supervisors manage it."""
    lecturer_ids: frozenset[int]
    starts_at: datetime
    ends_at: datetime
    """The planned end; a live training runs on until it is ended."""
    audience: Audience
    specialties: frozenset[Specialty]
    """What it is about (may be empty: for everybody); informative, not a filter."""
    status: TrainingStatus
    created_by: int
    created_at: datetime
    version: int = 1
    """Bumped by every change: a change made against an older version is refused."""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def reaches(self, institution_id: int, tree: InstitutionTree) -> bool:
        return self.audience.reaches(institution_id, tree)
