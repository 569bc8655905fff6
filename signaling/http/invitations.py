"""Multi-disciplinary consults over REST: invite a specialist, withdraw or decline.

The assigned specialist invites (`POST /api/consults/{id}/invitations`) and withdraws
(`DELETE …/invitations/{user_id}`); the invitee declines with the same DELETE on their own id.
The invitee is told live (`consult-invited` on their user channel, and a Web Push when they
subscribed); everyone else sees the new invitee list in `consult-state`. Ending an invitation
takes the former invitee out of the consult room if they are in it. The picker of colleagues
is `GET /api/specialists` (active specialists of every specialty).
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web

from rooms.consults.consult import Consult
from rooms.consults.invitations import InvitationService
from signaling import errors
from signaling.http.api import (
    Edge,
    Feature,
    consult_id_of,
    int_id_of,
    json_response,
    parse_body,
)
from signaling.hub import ConsultHub
from signaling.schemas import ConsultOut, Id, Strict

log = logging.getLogger(__name__)

# ---- wire schemas --------------------------------------------------------------------------


class InviteRequest(Strict):
    specialist_id: Id


# ---- routes --------------------------------------------------------------------------------


class InviteeNotice(Protocol):
    """Tells an invited specialist's phones of the invitation (`notify`'s Web Push)."""

    async def invited(self, consult: Consult, specialist_id: int) -> object: ...


class ConsultRoomExit(Protocol):
    """Takes every connection of a person out of a consult room (`signaling.events`)."""

    async def remove_from_consult(self, consult_id: str, user_id: int, reason: str) -> None: ...


def routes(
    edge: Edge,
    *,
    invitations: InvitationService,
    hub: ConsultHub,
    rooms: ConsultRoomExit,
    notice: InviteeNotice,
) -> Feature:
    feature = Feature("invitations")

    @feature.route(
        "POST",
        "/api/consults/{consult_id}/invitations",
        "Invite another specialist into the consult (its assigned specialist)",
        body=InviteRequest,
        response=ConsultOut,
        status=201,
        errors=(
            "not_found",
            "forbidden",
            "illegal_transition",
            "invalid_invitation",
            "already_invited",
            "too_many_invitations",
            "conflict",
            errors.INVALID_PAYLOAD,
        ),
    )
    async def invite(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, InviteRequest)
        consult = await invitations.invite(user, consult_id_of(request), body.specialist_id)
        view = await hub.specialist_invited(consult, body.specialist_id)
        try:
            await notice.invited(consult, body.specialist_id)
        except Exception:  # the invitation stands; the live event and the list still show it
            log.exception("push of invitation into consult %s failed", consult.id)
        return json_response(view, 201)

    @feature.route(
        "DELETE",
        "/api/consults/{consult_id}/invitations/{user_id}",
        "Withdraw an invitation (the assigned specialist) or decline one's own (the invitee)",
        response=ConsultOut,
        errors=("not_found", "forbidden", "illegal_transition", "conflict"),
    )
    async def remove_invitation(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        specialist_id = int_id_of(request, "user_id")
        consult = await invitations.remove(user, consult_id_of(request), specialist_id)
        reason = "declined" if specialist_id == user.id else "withdrawn"
        await rooms.remove_from_consult(consult.id, specialist_id, f"invitation_{reason}")
        # Leaving may have moved the consult (e.g. back to accepted): answer with it as it is.
        consult = await edge.store.get_consult(consult.id) or consult
        view = await hub.invitation_closed(consult, specialist_id, reason)
        return json_response(view)

    return feature
