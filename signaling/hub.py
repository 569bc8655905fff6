"""Fans consult changes out over socket.io to everyone who should see them at once.

Channels: `user:<id>` (every connection of a user), `institution:<id>` (exam-room doctors of an
institution) and `consult:<id>` (participants in the consult room). With `REDIS_URL` set,
python-socketio's Redis manager carries these emits across signaling processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import socketio

from rooms.consults.consult import Consult
from rooms.consults.lifecycle import FINISHED, ConsultStatus
from rooms.consults.people import Role, User
from rooms.consults.ports import ConsultStore
from rooms.duty.escalation import Notice, NoticeKind
from signaling.schemas import ConsultOut
from signaling.views import Directory


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def institution_channel(institution_id: int) -> str:
    return f"institution:{institution_id}"


def consult_channel(consult_id: str) -> str:
    return f"consult:{consult_id}"


def party_channels(consult: Consult) -> list[str]:
    """The channels of everyone taking part in a consult: its room, the booking institution,
    the requesting doctor, the specialist (once assigned) and the invited specialists."""
    rooms = [
        consult_channel(consult.id),
        institution_channel(consult.requesting_institution_id),
        user_channel(consult.requesting_doctor_id),
    ]
    if consult.specialist_id is not None:
        rooms.append(user_channel(consult.specialist_id))
    rooms.extend(user_channel(i) for i in sorted(consult.invited_ids))
    return rooms


def left_the_open_queue(consult: Consult) -> bool:
    """Whether the change that led to `consult` just took it out of `requested`.

    Only accept leads from `requested` to `accepted`; a consult that finished without ever being
    accepted (declined, cancelled, expired) was an open request until now.
    """
    return consult.status is ConsultStatus.ACCEPTED or (
        consult.status in FINISHED and consult.accepted_at is None
    )


class ConsultHub:
    """Also `notify.duty.Announcer`: what the duty scheduler tells the people online."""

    def __init__(self, sio: socketio.AsyncServer, store: ConsultStore) -> None:
        self.sio = sio
        self.store = store

    async def consult_changed(self, consult: Consult, known: Sequence[User] = ()) -> ConsultOut:
        """Tell the consult room, the booking institution and the specialist of a new status.

        Returns the client view it sent, for the caller to answer with as well. `known`: people
        whose names are at hand (those in the consult room), not looked up again.
        """
        view = await Directory(self.store, known).consult_out(consult)
        payload = {"consult": view.model_dump(mode="json")}
        await self.sio.emit("consult-state", payload, to=party_channels(consult))
        return view

    async def specialist_invited(self, consult: Consult, specialist_id: int) -> ConsultOut:
        """Tell everyone of the consult's new invitee list, and the invitee that they are
        invited (`consult-invited`, with the consult as they may now see it)."""
        view = await self.consult_changed(consult)
        await self.sio.emit(
            "consult-invited",
            {"consult": view.model_dump(mode="json")},
            to=user_channel(specialist_id),
        )
        return view

    async def invitation_closed(
        self, consult: Consult, specialist_id: int, reason: str
    ) -> ConsultOut:
        """Tell everyone of the shorter invitee list, and the former invitee (who may no longer
        see the consult: only its id) that the invitation is gone (`invitation-closed`)."""
        view = await self.consult_changed(consult)
        await self.sio.emit(
            "invitation-closed",
            {"consult_id": consult.id, "reason": reason},
            to=user_channel(specialist_id),
        )
        return view

    async def consult_requested(
        self, consult: Consult, targets: list[int] | None = None
    ) -> ConsultOut:
        """Reach the specialists who could take a new request: `targets` when the roster chose
        them (`notify.duty`), else the named specialist, or the whole specialty.

        Returns the client view it sent, for the caller to answer with as well.
        """
        view = await Directory(self.store).consult_out(consult)
        payload = {"consult": view.model_dump(mode="json")}
        if targets is not None:
            pass
        elif consult.specialist_id is not None:
            targets = [consult.specialist_id]
        else:
            specialists = await self.store.list_users(Role.SPECIALIST, consult.specialty)
            targets = [s.id for s in specialists if s.active]
        await self.offer_request(view, targets)
        await self.sio.emit(
            "consult-state", payload, to=[institution_channel(consult.requesting_institution_id)]
        )
        return view

    async def attachment_added(self, consult: Consult, payload: dict[str, object]) -> None:
        """Tell everyone who may see the consult's attachments of a new one: the consult room,
        the booking institution, and the specialist (or, while the request is open, every
        specialist of the specialty, who saw it in `consult-requested`)."""
        rooms = party_channels(consult)
        if consult.specialist_id is None:
            specialists = await self.store.list_users(Role.SPECIALIST, consult.specialty)
            rooms.extend(user_channel(s.id) for s in specialists if s.active)
        await self.sio.emit("attachment-added", payload, to=rooms)

    async def offer_request(self, view: ConsultOut, targets: list[int]) -> None:
        """Show an open request to these specialists (`consult-requested`)."""
        if targets:
            await self.sio.emit(
                "consult-requested",
                {"consult": view.model_dump(mode="json")},
                to=[user_channel(t) for t in targets],
            )

    async def request_offered(self, consult: Consult, specialist_ids: list[int]) -> None:
        """Show an open request to more specialists (an escalation step)."""
        view = await Directory(self.store).consult_out(consult)
        await self.offer_request(view, specialist_ids)

    async def escalated(self, consult: Consult, notice: Notice, at: datetime) -> None:
        """Tell the booking side (and supervisors reached) who was notified at this step
        (`consult-escalated`)."""
        directory = Directory(self.store)
        payload = {
            "consult_id": consult.id,
            "kind": notice.kind.value,
            "step": notice.step,
            "at": at.isoformat(),
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

    async def reminded(self, consult: Consult, user_ids: list[int]) -> None:
        """Remind these people that the consult starts soon (`consult-reminder`)."""
        await self.sio.emit(
            "consult-reminder",
            {"consult_id": consult.id, "scheduled_at": consult.scheduled_at.isoformat()},
            to=[user_channel(r) for r in user_ids],
        )

    async def status_changed(self, consult: Consult) -> ConsultOut:
        """Announce a consult's new status: `consult-state` to its parties and, if it just left
        the open queue, `request-closed` to the colleagues who had it listed. Returns the view.
        """
        view = await self.consult_changed(consult)
        if left_the_open_queue(consult):
            await self.request_closed(consult)
        return view

    async def request_closed(self, consult: Consult) -> None:
        """Tell every specialist who saw an open request that it left the queue.

        Only the id and new status go out: once taken by a colleague, the consult is no longer
        theirs to see (the permission table), so its details must not reach them.
        """
        specialists = await self.store.list_users(Role.SPECIALIST, consult.specialty)
        targets = [user_channel(s.id) for s in specialists if s.id != consult.specialist_id]
        if targets:
            await self.sio.emit(
                "request-closed",
                {"consult_id": consult.id, "status": consult.status.value},
                to=targets,
            )

    async def state_resent(self, consult_ids: Iterable[str]) -> None:
        """Send the current state of these consults (from the store) to everyone taking part
        again: their news was dropped on its way to another signaling process
        (`signaling.fanout`, when its queue was full). A page keeps the newer of two states."""
        for consult_id in sorted(consult_ids):
            consult = await self.store.get_consult(consult_id)
            if consult is not None:
                await self.consult_changed(consult)

    async def consult_closed(self, consult_id: str) -> None:
        """Take every connection out of a finished consult's channel."""
        await self.sio.close_room(consult_channel(consult_id))
