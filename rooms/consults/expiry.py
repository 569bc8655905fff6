"""When an unanswered or unattended consult expires, so that no request waits forever.

A request nobody accepted is of no use once its time has long passed, and an accepted consult
that nobody opened is not going to happen: both expire (`ConsultEvent.EXPIRE`), which tells the
booking doctor to re-book and keeps the specialists' queues and the statistics truthful. The
consult room, once opened, never expires: a `waiting` or `live` consult ends by a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from rooms.consults.consult import Consult
from rooms.consults.errors import ConcurrentUpdate, IllegalTransition
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.service import ConsultService

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

    def due_if_scheduled_by(self, status: ConsultStatus, now: datetime) -> datetime:
        """A consult in `status` (one of `EXPIRING`) is due at `now` exactly when it was
        scheduled at or before this instant: the bound for a store query."""
        grace = self.request_grace if status is ConsultStatus.REQUESTED else self.accepted_grace
        return now - grace


EXPIRY_SCAN_LIMIT = 500
"""Most consults of each status one expiry pass moves; the rest are moved by the next passes."""


class ExpiringStore(Protocol):
    async def consults_with_status(
        self,
        statuses: frozenset[ConsultStatus],
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
        requested_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Consult]: ...


class ExpiryService:
    """Expires what the rules say is due, through the consult lifecycle (audited, no actor)."""

    def __init__(self, consults: ConsultService, store: ExpiringStore, rules: ExpiryRules) -> None:
        self.consults = consults
        self.store = store
        self.rules = rules

    async def expire_due(self) -> list[Consult]:
        """Expire every consult due at the consult service's now; the expired consults.

        A consult somebody changed meanwhile (accepted at the last moment, opened) is left to
        that change: the lifecycle refuses the move or the version check loses the race, and
        the next pass looks again.
        """
        now = self.consults.clock()
        # One query per status, bounded by that status's own due time, so that what the store
        # returns is due: consults not due yet (however many) cannot fill the scan's limit and
        # hide a due one. More than the limit due at once are moved by the next passes.
        candidates: list[Consult] = []
        for status in sorted(EXPIRING, key=lambda s: s.value):
            candidates += await self.store.consults_with_status(
                frozenset({status}),
                scheduled_to=self.rules.due_if_scheduled_by(status, now),
                limit=EXPIRY_SCAN_LIMIT,
            )
        expired = []
        for consult in candidates:
            due_at = self.rules.expires_at(consult)
            if due_at is None or now < due_at:
                continue
            try:
                expired.append(
                    await self.consults.expire(
                        consult, {"reason": EXPIRY_REASONS[consult.status], "due_at": str(due_at)}
                    )
                )
            except (ConcurrentUpdate, IllegalTransition):
                continue
        return expired


EXPIRY_REASONS = {
    ConsultStatus.REQUESTED: "not_accepted_in_time",
    ConsultStatus.ACCEPTED: "not_opened_in_time",
}
"""The reason code written to the audit entry of each expiry."""
