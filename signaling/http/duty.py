"""REST of the duty roster, the notices sent about a consult, and Web Push subscriptions.

Three features, each mounted on its own: `roster_routes` (the on-duty shifts), `notice_routes`
(who was told of a consult, step by step) and `push_routes` (this browser's Web Push
subscription; only on a server that sends pushes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from rooms.consults.people import Specialty
from rooms.duty.escalation import STEPS
from rooms.duty.roster import Shift
from rooms.duty.services import EscalationService, PushSubscriptions, RosterService
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import (
    Edge,
    Feature,
    consult_id_of,
    json_response,
    parse_body,
    query_of,
)
from signaling.schemas import Id, PersonRef, Strict, WireTime
from signaling.views import Directory

# ---- wire schemas --------------------------------------------------------------------------

Base64Url = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+=*$")
]


class ShiftIn(Strict):
    specialist_id: Id
    specialty: Specialty
    start: WireTime
    end: WireTime
    tier: Annotated[int, Field(ge=0, le=3)] = 0


class ShiftOut(BaseModel):
    id: str
    specialist: PersonRef
    specialty: Specialty
    start: datetime
    end: datetime
    tier: int


class ShiftListOut(BaseModel):
    shifts: list[ShiftOut]


class NoticeOut(BaseModel):
    kind: Literal["notify", "next_on_duty", "supervisors", "reminder"]
    step: int | None
    at: datetime
    recipients: list[PersonRef]
    fallback: bool = False


class NoticeListOut(BaseModel):
    notices: list[NoticeOut]


class PushKeysIn(Strict):
    p256dh: Base64Url
    auth: Annotated[
        str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_\-]+=*$")
    ]


class PushSubscriptionIn(Strict):
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    keys: PushKeysIn
    expirationTime: int | None = None


class PushUnsubscribeIn(Strict):
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=1000)]


class VapidKeyOut(BaseModel):
    public_key: str
    """The server's VAPID public key, base64url (uncompressed P-256 point): the browser's
    `applicationServerKey`."""


class SubscribedOut(BaseModel):
    endpoint: str


# ---- routes --------------------------------------------------------------------------------

DEFAULT_ROSTER_WINDOW = timedelta(days=7)


class RosterQuery(Strict):
    """`GET /api/roster/shifts` query parameters (an empty one counts as absent)."""

    from_: WireTime | None = Field(default=None, alias="from")
    """Start of the period (ISO 8601 with offset); default now."""
    to: WireTime | None = None
    """End of the period; default a week after `from`."""
    specialty: Specialty | None = None


"""What `GET /api/roster/shifts` lists without `from`/`to`: from now, a week ahead."""


async def _shift_out(directory: Directory, shift: Shift) -> ShiftOut:
    return ShiftOut(
        id=shift.id,
        specialist=await directory.person(shift.specialist_id),
        specialty=shift.specialty,
        start=shift.start,
        end=shift.end,
        tier=shift.tier,
    )


def roster_routes(edge: Edge, *, roster: RosterService) -> Feature:
    feature = Feature("roster")

    @feature.route(
        "GET",
        "/api/roster/shifts",
        "Duty shifts overlapping `?from=&to=` (ISO 8601; default the coming week), "
        "optionally of one `?specialty=` (admins, supervisors)",
        response=ShiftListOut,
        query=RosterQuery,
        errors=("forbidden", "invalid_shift", errors.INVALID_PAYLOAD),
    )
    async def list_shifts(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        query = query_of(request, RosterQuery)
        start = query.from_ or roster.clock()
        end = query.to or start + DEFAULT_ROSTER_WINDOW
        shifts = await roster.list(user, start, end, query.specialty)
        directory = edge.directory()
        return json_response(ShiftListOut(shifts=[await _shift_out(directory, s) for s in shifts]))

    @feature.route(
        "POST",
        "/api/roster/shifts",
        "Put a specialist on duty for their specialty over [start, end) (admins)",
        body=ShiftIn,
        response=ShiftOut,
        status=201,
        errors=("forbidden", "invalid_shift", errors.INVALID_PAYLOAD),
    )
    async def add_shift(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, ShiftIn)
        shift = await roster.add(
            user,
            body.specialist_id,
            body.specialty,
            body.start.astimezone(UTC),
            body.end.astimezone(UTC),
            body.tier,
        )
        return json_response(await _shift_out(edge.directory(), shift), 201)

    @feature.route(
        "DELETE",
        "/api/roster/shifts/{shift_id}",
        "Remove a duty shift (admins)",
        response=ShiftOut,
        errors=("forbidden", "not_found"),
    )
    async def remove_shift(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        shift = await roster.remove(user, request.match_info["shift_id"])
        return json_response(await _shift_out(edge.directory(), shift))

    return feature


def notice_routes(edge: Edge, *, escalation: EscalationService) -> Feature:
    feature = Feature("notices")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/notices",
        "Who was notified about a consult, step by step, and reminders (those who may view it)",
        response=NoticeListOut,
        errors=("not_found", "forbidden"),
    )
    async def list_notices(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        sent = await escalation.history(user, consult_id_of(request))
        directory = edge.directory()
        return json_response(
            NoticeListOut(
                notices=[
                    NoticeOut(
                        kind=s.kind.value,
                        step=STEPS.index(s.kind) if s.kind in STEPS else None,
                        at=s.at,
                        recipients=[await directory.person(r) for r in s.recipients],
                        fallback=s.fallback,
                    )
                    for s in sent
                ]
            )
        )

    return feature


def push_routes(edge: Edge, *, subscriptions: PushSubscriptions, vapid_public_key: str) -> Feature:
    """`vapid_public_key`: the key the server signs its pushes with (base64url)."""
    feature = Feature("push")

    @feature.route(
        "GET",
        "/api/push/vapid-public-key",
        "The server's VAPID public key (the browser's applicationServerKey)",
        response=VapidKeyOut,
    )
    async def vapid_key(request: web.Request) -> web.Response:
        await edge.caller(request)
        return json_response(VapidKeyOut(public_key=vapid_public_key))

    @feature.route(
        "POST",
        "/api/push/subscriptions",
        "Register this browser for Web Push notifications (its PushSubscription.toJSON())",
        body=PushSubscriptionIn,
        response=SubscribedOut,
        status=201,
        errors=("invalid_subscription", errors.INVALID_PAYLOAD),
    )
    async def subscribe(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, PushSubscriptionIn)
        await subscriptions.subscribe(user, body.endpoint, body.keys.p256dh, body.keys.auth)
        return json_response(SubscribedOut(endpoint=body.endpoint), 201)

    @feature.route(
        "DELETE",
        "/api/push/subscriptions",
        "Stop Web Push notifications to this browser",
        body=PushUnsubscribeIn,
        response=SubscribedOut,
        errors=("not_found", errors.INVALID_PAYLOAD),
    )
    async def unsubscribe(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, PushUnsubscribeIn)
        if not await subscriptions.unsubscribe(user, body.endpoint):
            raise ApiError("not_found", "no such subscription of yours", 404)
        return json_response(SubscribedOut(endpoint=body.endpoint))

    return feature
