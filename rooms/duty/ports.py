"""What the duty package needs from storage: the roster, notices claimed, push subscriptions.

The consults the scheduler scans come from the kernel's `ConsultStore.consults_with_status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.consults.people import Specialty
from rooms.duty.escalation import NoticeKind, Sent
from rooms.duty.push import PushSubscription
from rooms.duty.roster import Shift


class RosterStore(Protocol):
    """The duty roster: shifts of specialists, added and removed with their audit entries."""

    async def add_shift(self, shift: Shift, audit: AuditEntry) -> None:
        """Save the shift together with its audit entry, or neither."""
        ...

    async def get_shift(self, shift_id: str) -> Shift | None: ...

    async def remove_shift(self, shift_id: str, audit: AuditEntry) -> bool:
        """Delete the shift (and write the audit entry); False, writing nothing, if there was
        no such shift."""
        ...

    async def shifts_between(
        self, start: datetime, end: datetime, specialty: Specialty | None = None
    ) -> list[Shift]:
        """Shifts that overlap `[start, end)`, earliest first."""
        ...


class NoticeStore(Protocol):
    """The notices sent about consults, each kind claimed once per consult."""

    async def claim_notice(self, consult_id: str, sent: Sent, audit: AuditEntry) -> bool:
        """Record that `sent.kind` goes out for the consult, with its audit entry, atomically.

        False, writing nothing, when that kind was already claimed for the consult (by this or
        another process): the caller must then not send it.
        """
        ...

    async def sent_notices(self, consult_ids: list[str]) -> dict[str, dict[NoticeKind, Sent]]: ...


class EscalationStore(RosterStore, NoticeStore, Protocol):
    """Who is on duty, and which notices went out: what the escalation scheduler reads."""


class PushSubscriptionStore(Protocol):
    """The browsers (phones) that asked to be woken for a user's notices."""

    async def save_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        """Keep the subscription (replacing one with the same endpoint) and at most `keep` of
        its user's subscriptions, the newest."""
        ...

    async def remove_push_subscription(self, endpoint: str, user_id: int | None = None) -> bool:
        """Forget the subscription (only if it is `user_id`'s, when given)."""
        ...

    async def push_subscriptions(self, user_ids: list[int]) -> list[PushSubscription]: ...
