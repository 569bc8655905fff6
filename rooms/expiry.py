"""When an unanswered or unattended consult expires, so that no request waits forever.

A request nobody accepted is of no use once its time has long passed, and an accepted consult
that nobody opened is not going to happen: both expire (`ConsultEvent.EXPIRE`), which tells the
booking doctor to re-book and keeps the specialists' queues and the statistics truthful. The
consult room, once opened, never expires: a `waiting` or `live` consult ends by a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.consult import Consult
from rooms.lifecycle import ConsultStatus

EXPIRING = frozenset({ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED})
"""The statuses the expiry rule applies to (the only ones `EXPIRE` leads out of)."""


@dataclass(frozen=True, slots=True)
class ExpiryRules:
    request_grace: timedelta = timedelta(hours=2)
    """How long after its scheduled time a request nobody accepted stays open to accept."""
    accepted_grace: timedelta = timedelta(hours=24)
    """How long after its scheduled time an accepted consult nobody opened stays joinable."""

    def __post_init__(self) -> None:
        if self.request_grace < timedelta(0) or self.accepted_grace < timedelta(0):
            raise ValueError("expiry grace periods cannot be negative")

    def expires_at(self, consult: Consult) -> datetime | None:
        """The instant `consult` expires, or None when it does not (any more)."""
        if consult.status is ConsultStatus.REQUESTED:
            return consult.scheduled_at + self.request_grace
        if consult.status is ConsultStatus.ACCEPTED:
            return consult.scheduled_at + self.accepted_grace
        return None

    def is_due(self, consult: Consult, now: datetime) -> bool:
        """True when `consult` should expire at `now` (the expiry instant itself included)."""
        at = self.expires_at(consult)
        return at is not None and now >= at

    def oldest_scheduled(self, now: datetime) -> datetime:
        """Consults scheduled before this instant may be due: the bound for a store query."""
        return now - min(self.request_grace, self.accepted_grace)
