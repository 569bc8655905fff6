"""Sends what the duty rules make due: new requests, escalation steps, reminders.

`DutyDispatcher.booked` sends step 0 of a request just booked; `DutyDispatcher.run` wakes every
`DUTY_TICK_SECONDS`, first expires what `rooms.consults.expiry` says is due (announced as
`consult-state` and `request-closed`), then asks `rooms.duty.EscalationService` what is due at
the injected clock's now, and sends only what it won the database claim for. Each notice
goes out as:

- live socket.io events: `consult-requested` to the specialists it reaches (steps 0 and 1),
  `consult-escalated` (every step, with who was told) to the booking institution, the booking
  doctor and, for step 2, the supervisors; `consult-reminder` to the reminded people (the
  assigned specialist, the booking doctor and the invited specialists);
- a Web Push notification to every registered browser of those people (`signaling.push`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import socketio

from rooms.consults.consult import Consult
from rooms.consults.expiry import ExpiryService
from rooms.consults.people import Specialty
from rooms.duty.escalation import Notice, NoticeKind
from rooms.duty.services import Claimed, EscalationService
from signaling.hub import ConsultHub, institution_channel, user_channel
from signaling.push import PushMessage, WebPushSender
from signaling.schemas import ConsultOut
from signaling.views import Directory

log = logging.getLogger(__name__)

SPECIALTY_NAMES: dict[Specialty, tuple[str, str]] = {
    Specialty.OBSTETRICS: ("产科", "Obstetrics"),
    Specialty.PAEDIATRICS: ("儿科", "Paediatrics"),
    Specialty.CHILD_GROWTH: ("儿童生长发育", "Child growth"),
    Specialty.REPRODUCTIVE_MEDICINE: ("生殖医学", "Reproductive medicine"),
    Specialty.ULTRASOUND: ("超声", "Ultrasound"),
    Specialty.OPHTHALMOLOGY: ("眼科", "Ophthalmology"),
    Specialty.IMAGING: ("影像", "Imaging"),
    Specialty.CARDIOLOGY: ("心内科", "Cardiology"),
    Specialty.NEUROLOGY: ("神经内科", "Neurology"),
    Specialty.GENERAL_MEDICINE: ("全科", "General medicine"),
}
"""Specialty names for push texts (the web client has its own in i18n.js)."""


def specialist_link(consult_id: str) -> str:
    return f"/specialist.html?consult={consult_id}"


def push_messages(consult: Consult, notice: Notice) -> list[tuple[list[int], PushMessage]]:
    """The push texts of a notice, by recipient group.

    Lock-screen privacy: a push may show on a locked phone, so it names the specialty and the
    kind of notice only — never the patient, the reason or the booking institution; the page it
    opens shows the details after login.
    """
    zh, en = SPECIALTY_NAMES[consult.specialty]
    cid = consult.id
    if notice.kind in (NoticeKind.NOTIFY, NoticeKind.NEXT_ON_DUTY):
        waiting = notice.kind is NoticeKind.NEXT_ON_DUTY
        return [
            (
                list(notice.recipients),
                PushMessage(
                    kind=notice.kind.value,
                    consult_id=cid,
                    url=specialist_link(cid),
                    title=f"{'会诊请求待接受' if waiting else '新的会诊请求'} · {zh}",
                    body="点按查看并接受",
                    title_en=f"{'Consult request waiting' if waiting else 'New consult request'}"
                    f" · {en}",
                    body_en="Tap to view and accept",
                ),
            )
        ]
    if notice.kind is NoticeKind.SUPERVISORS:
        return [
            (
                list(notice.recipients),
                PushMessage(
                    kind=notice.kind.value,
                    consult_id=cid,
                    url=f"/supervisor.html?consult={cid}",
                    title=f"会诊请求无人接受 · {zh}",
                    body="值班专家均未接受, 请协调",
                    title_en=f"Consult request not accepted · {en}",
                    body_en="Nobody on duty has accepted it; please follow up",
                ),
            )
        ]
    # The reminder: each side to the page it works in; invited specialists (everyone reminded
    # but the assigned specialist and the booking doctor) to the specialist page, like the
    # assigned specialist.
    sides = (consult.specialist_id, consult.requesting_doctor_id)
    invitees = [r for r in notice.recipients if r not in sides]
    messages = []
    for who, url in (
        ([consult.specialist_id], specialist_link(cid)),
        ([consult.requesting_doctor_id], f"/exam-room.html?consult={cid}"),
        (invitees, specialist_link(cid)),
    ):
        people = [r for r in who if r is not None and r in notice.recipients]
        if people:
            messages.append(
                (
                    people,
                    PushMessage(
                        kind=notice.kind.value,
                        consult_id=cid,
                        url=url,
                        title=f"会诊即将开始 · {zh}",
                        body="预约时间",
                        title_en=f"Consult starts soon · {en}",
                        body_en="Scheduled for",
                        scheduled_at=consult.scheduled_at.isoformat(),
                    ),
                )
            )
    return messages


def invited_push(consult: Consult) -> PushMessage:
    """The invitee's notification: the specialty only, no patient data (a locked screen)."""
    zh, en = SPECIALTY_NAMES[consult.specialty]
    return PushMessage(
        kind="invited",
        consult_id=consult.id,
        url=specialist_link(consult.id),
        title=f"邀请您参加多学科会诊 · {zh}",
        body="点按查看并加入",
        title_en=f"You are invited to a multi-disciplinary consult · {en}",
        body_en="Tap to view and join",
    )


class InvitationPushes:
    """Tells an invited specialist's phones of the invitation."""

    def __init__(self, pusher: WebPushSender) -> None:
        self.pusher = pusher

    async def invited(self, consult: Consult, specialist_id: int) -> int:
        """Push to every browser the specialist registered; how many push services took it."""
        return await self.pusher.send([specialist_id], invited_push(consult))


class DutyDispatcher:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        hub: ConsultHub,
        escalation: EscalationService,
        pusher: WebPushSender | None,
        tick: timedelta,
        expiry: ExpiryService | None = None,
    ) -> None:
        self.sio = sio
        self.expiry = expiry
        self.hub = hub
        self.escalation = escalation
        self.pusher = pusher
        self.tick_interval = tick.total_seconds()
        self._task: asyncio.Task[None] | None = None
        self._pushes: set[asyncio.Task[int]] = set()

    async def booked(self, consult: Consult) -> ConsultOut:
        """Send step 0 of a request just booked (live, then push in the background).

        Returns the client view it sent, for the booking request to answer with.
        """
        claimed = await self.escalation.booked(consult)
        targets = [r for c in claimed if c.notice.step == 0 for r in c.notice.recipients]
        view = await self.hub.consult_requested(consult, targets)
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
        if self.expiry is None:
            return []
        expired = await self.expiry.expire_due()
        for consult in expired:
            await self.hub.status_changed(consult)
        return expired

    async def send(self, claimed: Claimed) -> None:
        consult, notice = claimed.consult, claimed.notice
        if notice.kind is NoticeKind.REMINDER:
            await self.sio.emit(
                "consult-reminder",
                {
                    "consult_id": consult.id,
                    "scheduled_at": consult.scheduled_at.isoformat(),
                },
                to=[user_channel(r) for r in notice.recipients],
            )
        else:
            if notice.kind is not NoticeKind.SUPERVISORS and notice.recipients:
                view = await Directory(self.hub.store).consult_out(consult)
                await self.hub.offer_request(view, list(notice.recipients))
            await self._escalated(claimed)
        self._push(claimed)

    async def _escalated(self, claimed: Claimed) -> None:
        """Tell the booking side (and supervisors reached) who was notified at this step."""
        consult, notice = claimed.consult, claimed.notice
        directory = Directory(self.hub.store)
        payload = {
            "consult_id": consult.id,
            "kind": notice.kind.value,
            "step": notice.step,
            "at": self.escalation.clock().isoformat(),
            "recipients": [
                (await directory.person(r)).model_dump(mode="json") for r in notice.recipients
            ],
            "fallback": notice.fallback,
        }
        rooms = [
            institution_channel(consult.requesting_institution_id),
            user_channel(consult.requesting_doctor_id),
        ]
        if notice.kind is NoticeKind.SUPERVISORS:
            rooms += [user_channel(r) for r in notice.recipients]
        await self.sio.emit("consult-escalated", payload, to=rooms)

    def _push(self, claimed: Claimed) -> None:
        if self.pusher is None:
            return
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
