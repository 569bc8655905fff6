"""Sends what the duty rules make due: new requests, escalation steps, reminders.

`DutyDispatcher.booked` sends step 0 of a request just booked; `DutyDispatcher.run` wakes every
`DUTY_TICK_SECONDS`, first expires what `rooms.consults.expiry` says is due (announced as
`consult-state` and `request-closed`), then asks `rooms.duty.EscalationService` what is due at
the injected clock's now, and sends only what it won the database claim for. Each notice
goes out as:

- live events to the people online, through an `Announcer` (the socket.io edge, handed in by
  the composition root): `consult-requested` to the specialists it reaches (steps 0 and 1),
  `consult-escalated` (every step, with who was told) to the booking institution, the booking
  doctor and, for step 2, the supervisors; `consult-reminder` to the reminded people (the
  assigned specialist, the booking doctor and the invited specialists);
- a Web Push notification to every registered browser of those people (`notify.push`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from notify.messages import push_messages
from notify.push import WebPushSender
from rooms.consults.consult import Consult
from rooms.consults.errors import DatabaseUnavailable
from rooms.consults.expiry import ExpiryService
from rooms.duty.escalation import Notice, NoticeKind
from rooms.duty.services import Claimed, EscalationService

log = logging.getLogger(__name__)

View = TypeVar("View", covariant=True)
"""What the announcer answers a new request with: the consult as clients see it."""


class Announcer(Protocol[View]):
    """What the scheduler tells the people online (`signaling.hub.ConsultHub`)."""

    async def consult_requested(self, consult: Consult, targets: list[int]) -> View:
        """A request just booked: shown to these specialists and the booking institution."""
        ...

    async def request_offered(self, consult: Consult, specialist_ids: list[int]) -> None:
        """An open request shown to more specialists (an escalation step)."""
        ...

    async def status_changed(self, consult: Consult) -> object:
        """A consult's new status (here: expired), to everyone who saw it."""
        ...

    async def escalated(self, consult: Consult, notice: Notice, at: datetime) -> None:
        """Who was told at this step, to the booking side (and the supervisors reached)."""
        ...

    async def reminded(self, consult: Consult, user_ids: list[int]) -> None:
        """A consult starts soon, to these people."""
        ...


class DutyDispatcher(Generic[View]):
    def __init__(
        self,
        announcer: Announcer[View],
        escalation: EscalationService,
        pusher: WebPushSender,
        tick: timedelta,
        expiry: ExpiryService,
    ) -> None:
        self.announcer = announcer
        self.escalation = escalation
        self.pusher = pusher
        self.tick_interval = tick.total_seconds()
        self.expiry = expiry
        self._task: asyncio.Task[None] | None = None
        self._pushes: set[asyncio.Task[int]] = set()

    async def booked(self, consult: Consult) -> View:
        """Send step 0 of a request just booked (live, then push in the background).

        Returns the client view it sent, for the booking request to answer with.
        """
        claimed = await self.escalation.booked(consult)
        targets = [r for c in claimed if c.notice.step == 0 for r in c.notice.recipients]
        view = await self.announcer.consult_requested(consult, targets)
        for c in claimed:
            await self._escalated(c)
            self._push(c)
        return view

    async def tick(self) -> list[Claimed]:
        """Claim and send everything due now; what was sent (pushes may still be in flight)."""
        claimed = await self.escalation.tick()
        for c in claimed:
            await self.send(c)
        return claimed

    async def expire_due(self) -> list[Consult]:
        """Expire what is due (`rooms.consults.expiry`) and tell those who saw it; the expired
        consults."""
        expired = await self.expiry.expire_due()
        for consult in expired:
            await self.announcer.status_changed(consult)
        return expired

    async def send(self, claimed: Claimed) -> None:
        consult, notice = claimed.consult, claimed.notice
        if notice.kind is NoticeKind.REMINDER:
            await self.announcer.reminded(consult, list(notice.recipients))
        else:
            if notice.kind is not NoticeKind.SUPERVISORS and notice.recipients:
                await self.announcer.request_offered(consult, list(notice.recipients))
            await self._escalated(claimed)
        self._push(claimed)

    async def _escalated(self, claimed: Claimed) -> None:
        await self.announcer.escalated(claimed.consult, claimed.notice, self.escalation.clock())

    def _push(self, claimed: Claimed) -> None:
        for user_ids, message in push_messages(claimed.consult, claimed.notice):
            task = asyncio.create_task(self.pusher.send(user_ids, message))
            self._pushes.add(task)
            task.add_done_callback(self._pushes.discard)

    async def drain(self) -> None:
        """Wait for pushes in flight (each is bounded by the push timeout)."""
        if self._pushes:
            await asyncio.gather(*self._pushes, return_exceptions=True)

    async def run(self) -> None:
        """Tick until cancelled; a failing tick is logged and the next one tries again."""
        while True:
            try:
                await self.expire_due()
                await self.tick()
            except DatabaseUnavailable:
                pass  # logged once per outage by the storage; the next tick tries again
            except Exception:
                log.exception("duty tick failed; trying again in %.0f s", self.tick_interval)
            await asyncio.sleep(self.tick_interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.drain()
