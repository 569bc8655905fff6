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

from aiohttp import web

from rooms.consults.consult import Consult
from rooms.consults.invitations import InvitationService
from signaling import errors
from signaling.context import Signaling, built_with
from signaling.duty import SPECIALTY_NAMES, specialist_link
from signaling.events import ConsultEvents
from signaling.push import PushMessage
from signaling.rest import (
    HUB,
    SIGNALING,
    api,
    consult_id_of,
    current_user,
    json_response,
    parse_body,
)
from signaling.schemas import ConsultOut, InviteRequest

log = logging.getLogger(__name__)

EVENTS = web.AppKey("events", ConsultEvents)
"""The socket.io namespace, to take a former invitee out of the consult room."""


def invitation_service(ctx: Signaling) -> InvitationService:
    return built_with(ctx.invitations, "invitations")


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


@api.route(
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
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    body = await parse_body(request, InviteRequest)
    consult = await invitation_service(ctx).invite(user, consult_id_of(request), body.specialist_id)
    view = await request.app[HUB].specialist_invited(consult, body.specialist_id)
    if ctx.pusher is not None:
        try:
            await ctx.pusher.send([body.specialist_id], invited_push(consult))
        except Exception:  # the invitation stands; the live event and the list still show it
            log.exception("push of invitation into consult %s failed", consult.id)
    return json_response(view, 201)


@api.route(
    "DELETE",
    "/api/consults/{consult_id}/invitations/{user_id:\\d+}",
    "Withdraw an invitation (the assigned specialist) or decline one's own (the invitee)",
    response=ConsultOut,
    errors=("not_found", "forbidden", "illegal_transition", "conflict"),
)
async def remove_invitation(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    specialist_id = int(request.match_info["user_id"])
    consult = await invitation_service(ctx).remove(user, consult_id_of(request), specialist_id)
    reason = "declined" if specialist_id == user.id else "withdrawn"
    events = request.app.get(EVENTS)
    if events is not None:
        await events.remove_from_consult(consult.id, specialist_id, f"invitation_{reason}")
        # Leaving may have moved the consult (e.g. back to accepted): answer with it as it is.
        consult = await ctx.service.store.get_consult(consult.id) or consult
    view = await request.app[HUB].invitation_closed(consult, specialist_id, reason)
    return json_response(view)
