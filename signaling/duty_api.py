"""REST of the duty roster, the notices sent about a consult, and Web Push subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from rooms.consults.people import Specialty
from rooms.duty.escalation import STEPS
from rooms.duty.roster import Shift
from rooms.duty.services import EscalationService, PushSubscriptions, RosterService
from signaling import errors
from signaling.context import Signaling, built_with
from signaling.errors import ApiError
from signaling.rest import SIGNALING, api, consult_id_of, current_user, json_response, parse_body
from signaling.schemas import (
    NoticeListOut,
    NoticeOut,
    PushSubscriptionIn,
    PushUnsubscribeIn,
    ShiftIn,
    ShiftListOut,
    ShiftOut,
    SubscribedOut,
    VapidKeyOut,
)
from signaling.views import Directory

DEFAULT_ROSTER_WINDOW = timedelta(days=7)
"""What `GET /api/roster/shifts` lists without `from`/`to`: from now, a week ahead."""


def _roster(ctx: Signaling) -> RosterService:
    return built_with(ctx.roster, "a duty roster")


def _escalation(ctx: Signaling) -> EscalationService:
    return built_with(ctx.escalation, "escalation")


def _push(ctx: Signaling) -> PushSubscriptions:
    built_with(ctx.pusher, "Web Push")  # subscriptions are of no use without a sender
    return built_with(ctx.push, "Web Push")


async def _shift_out(directory: Directory, shift: Shift) -> ShiftOut:
    return ShiftOut(
        id=shift.id,
        specialist=await directory.person(shift.specialist_id),
        specialty=shift.specialty,
        start=shift.start,
        end=shift.end,
        tier=shift.tier,
    )


def _query_time(request: web.Request, name: str, default: datetime) -> datetime:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(errors.INVALID_PAYLOAD, f"{name} is not an ISO 8601 time", 422) from None
    if value.tzinfo is None:
        raise ApiError(errors.INVALID_PAYLOAD, f"{name} needs a time zone", 422)
    return value.astimezone(UTC)


@api.route(
    "GET",
    "/api/roster/shifts",
    "Duty shifts overlapping `?from=&to=` (ISO 8601; default the coming week), "
    "optionally of one `?specialty=` (admins, supervisors)",
    response=ShiftListOut,
    errors=("forbidden", "invalid_shift", errors.INVALID_PAYLOAD),
)
async def list_shifts(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    roster = _roster(ctx)
    start = _query_time(request, "from", roster.clock())
    end = _query_time(request, "to", start + DEFAULT_ROSTER_WINDOW)
    raw = request.query.get("specialty")
    try:
        specialty = Specialty(raw) if raw else None
    except ValueError:
        raise ApiError(errors.INVALID_PAYLOAD, f"unknown specialty {raw!r}", 422) from None
    shifts = await roster.list(user, start, end, specialty)
    directory = Directory(ctx.service.store)
    return json_response(ShiftListOut(shifts=[await _shift_out(directory, s) for s in shifts]))


@api.route(
    "POST",
    "/api/roster/shifts",
    "Put a specialist on duty for their specialty over [start, end) (admins)",
    body=ShiftIn,
    response=ShiftOut,
    status=201,
    errors=("forbidden", "invalid_shift", errors.INVALID_PAYLOAD),
)
async def add_shift(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    body = await parse_body(request, ShiftIn)
    shift = await _roster(ctx).add(
        user,
        body.specialist_id,
        body.specialty,
        body.start.astimezone(UTC),
        body.end.astimezone(UTC),
        body.tier,
    )
    return json_response(await _shift_out(Directory(ctx.service.store), shift), 201)


@api.route(
    "DELETE",
    "/api/roster/shifts/{shift_id}",
    "Remove a duty shift (admins)",
    response=ShiftOut,
    errors=("forbidden", "not_found"),
)
async def remove_shift(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    shift = await _roster(ctx).remove(user, request.match_info["shift_id"])
    return json_response(await _shift_out(Directory(ctx.service.store), shift))


@api.route(
    "GET",
    "/api/consults/{consult_id}/notices",
    "Who was notified about a consult, step by step, and reminders (those who may view it)",
    response=NoticeListOut,
    errors=("not_found", "forbidden"),
)
async def list_notices(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    sent = await _escalation(ctx).history(user, consult_id_of(request))
    directory = Directory(ctx.service.store)
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


@api.route(
    "GET",
    "/api/push/vapid-public-key",
    "The server's VAPID public key (the browser's applicationServerKey)",
    response=VapidKeyOut,
)
async def vapid_public_key(request: web.Request) -> web.Response:
    await current_user(request)
    ctx = request.app[SIGNALING]
    _push(ctx)
    assert ctx.pusher is not None
    return json_response(VapidKeyOut(public_key=ctx.pusher.public_key))


@api.route(
    "POST",
    "/api/push/subscriptions",
    "Register this browser for Web Push notifications (its PushSubscription.toJSON())",
    body=PushSubscriptionIn,
    response=SubscribedOut,
    status=201,
    errors=("invalid_subscription", errors.INVALID_PAYLOAD),
)
async def subscribe(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse_body(request, PushSubscriptionIn)
    await _push(request.app[SIGNALING]).subscribe(
        user, body.endpoint, body.keys.p256dh, body.keys.auth
    )
    return json_response(SubscribedOut(endpoint=body.endpoint), 201)


@api.route(
    "DELETE",
    "/api/push/subscriptions",
    "Stop Web Push notifications to this browser",
    body=PushUnsubscribeIn,
    response=SubscribedOut,
    errors=("not_found", errors.INVALID_PAYLOAD),
)
async def unsubscribe(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse_body(request, PushUnsubscribeIn)
    if not await _push(request.app[SIGNALING]).unsubscribe(user, body.endpoint):
        raise ApiError("not_found", "no such subscription of yours", 404)
    return json_response(SubscribedOut(endpoint=body.endpoint))
