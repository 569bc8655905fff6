"""The REST API under /api: thin handlers that parse, call the consult service, and answer.

Each handler is declared with `@api.route(...)`, which also records it for the OpenAPI
document, so the document cannot drift from the routes that exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from rooms.calls.registry import ConsultRooms
from rooms.consults.consult import Consult, MediaMode, PatientSummary
from rooms.consults.errors import DomainError
from rooms.consults.lifecycle import FINISHED
from rooms.consults.people import Role, Specialty, User
from rooms.consults.service import Booking, ConsultService
from rooms.reporting.review import SEARCH_ROLES, ConsultFilter
from signaling import errors
from signaling.auth import bearer_token
from signaling.context import Signaling
from signaling.duty import DutyDispatcher
from signaling.errors import ApiError
from signaling.hub import ConsultHub
from signaling.passwords import verify_password
from signaling.schemas import (
    AuditEntryOut,
    AuditTrailOut,
    BookConsultRequest,
    ConsultListOut,
    ConsultOut,
    ConsultSearchQuery,
    EmptyRequest,
    EndConsultRequest,
    HealthOut,
    LoginOut,
    LoginRequest,
    ReasonRequest,
    SpecialistListOut,
    SpecialistOut,
    UserOut,
)
from signaling.views import Directory

log = logging.getLogger(__name__)

SIGNALING = web.AppKey("signaling", Signaling)
HUB = web.AppKey("hub", ConsultHub)
ROOMS = web.AppKey("rooms", ConsultRooms)
DUTY = web.AppKey("duty", DutyDispatcher)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    authenticated: bool
    errors: tuple[str, ...]
    upload_field: str | None = None
    """The body is `multipart/form-data` with one file in this field (instead of JSON)."""
    binary_response: tuple[str, ...] = ()
    """The success response is raw bytes of one of these media types (instead of JSON)."""


class Api:
    """A route table that remembers each endpoint's schemas for the OpenAPI document."""

    def __init__(self) -> None:
        self.routes = web.RouteTableDef()
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        authenticated: bool = True,
        errors: tuple[str, ...] = (),
        upload_field: str | None = None,
        binary_response: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    summary,
                    body,
                    response,
                    status,
                    authenticated,
                    errors,
                    upload_field,
                    binary_response,
                )
            )
            self.routes.route(method, path)(handler)
            return handler

        return register


api = Api()


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request body as `model`; `ApiError` naming the first problem otherwise."""
    raw = await request.read()
    if not raw:
        raw = b"{}"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(errors.INVALID_PAYLOAD, f"request body is not JSON: {exc}", 400) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.from_validation(exc, "request body") from None


async def current_user(request: web.Request) -> User:
    return await request.app[SIGNALING].authenticate(
        bearer_token(request.headers.get("Authorization"))
    )


def consult_id_of(request: web.Request) -> str:
    return request.match_info["consult_id"]


def hex_id_of(request: web.Request, kind: str) -> str:
    """The 32-hex-digit id in the path parameter `<kind>_id`; `not_found` for anything else."""
    found = request.match_info[f"{kind}_id"]
    if len(found) != 32 or any(c not in "0123456789abcdef" for c in found):
        raise ApiError("not_found", f"no {kind} {found[:40]}", 404)
    return found


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as `{code, message}` with the status that fits it."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except DomainError as exc:
        mapped = errors.from_domain(exc)
        return web.json_response(mapped.body(), status=mapped.status)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SIGNALING].limits.max_request_bytes
        return web.json_response(
            {
                "code": errors.PAYLOAD_TOO_LARGE,
                "message": f"request body is larger than {limit} bytes",
            },
            status=413,
        )
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api"):
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return web.json_response({"code": code, "message": exc.reason}, status=exc.status)
    except ConnectionResetError:
        raise  # the client went away (e.g. a socket.io long-poll); nothing to answer
    except Exception:
        if not request.path.startswith(("/api", "/healthz")):
            raise
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            {"code": errors.INTERNAL, "message": "internal error; it has been logged"}, status=500
        )


# ---- endpoints ------------------------------------------------------------------------------


@api.route(
    "GET", "/healthz", "Liveness and database check", response=HealthOut, authenticated=False
)
async def healthz(request: web.Request) -> web.Response:
    await request.app[SIGNALING].service.store.ping()
    return json_response(HealthOut(status="ok", database="ok"))


@api.route(
    "POST",
    "/api/auth/login",
    "Exchange username and password for a JWT",
    body=LoginRequest,
    response=LoginOut,
    authenticated=False,
    errors=(errors.BAD_CREDENTIALS, errors.RATE_LIMITED, errors.INVALID_PAYLOAD),
)
async def login(request: web.Request) -> web.Response:
    ctx = request.app[SIGNALING]
    body = await parse_body(request, LoginRequest)
    if ctx.login_limiter.exhausted(body.username):
        raise ApiError(errors.RATE_LIMITED, "too many failed logins; wait a minute", 429)
    found = await ctx.service.store.credentials(body.username)
    user, password_hash = found if found else (None, None)
    if user is None or not verify_password(password_hash, body.password) or not user.active:
        ctx.login_limiter.hit(body.username)
        raise ApiError(errors.BAD_CREDENTIALS, "wrong username or password", 401)
    token, expires = ctx.tokens.issue(user)
    return json_response(
        LoginOut(
            token=token, expires_at=expires, user=await Directory(ctx.service.store).user_out(user)
        )
    )


@api.route("GET", "/api/me", "The logged-in user", response=UserOut)
async def me(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await Directory(request.app[SIGNALING].service.store).user_out(user))


@api.route(
    "GET",
    "/api/specialists",
    "Active specialists, optionally of one specialty (`?specialty=`)",
    response=SpecialistListOut,
)
async def specialists(request: web.Request) -> web.Response:
    await current_user(request)
    store = request.app[SIGNALING].service.store
    raw = request.query.get("specialty")
    try:
        specialty = Specialty(raw) if raw else None
    except ValueError:
        raise ApiError(errors.INVALID_PAYLOAD, f"unknown specialty {raw!r}", 422) from None
    directory = Directory(store)
    people = [u for u in await store.list_users(Role.SPECIALIST, specialty) if u.active]
    return json_response(
        SpecialistListOut(
            specialists=[
                SpecialistOut(
                    id=u.id,
                    display_name=u.display_name,
                    specialty=u.specialty,
                    institution_name=await directory.institution_name(u.institution_id),
                )
                for u in people
            ]
        )
    )


REPEATABLE_QUERY = frozenset({"status", "specialty"})
"""Query parameters of `GET /api/consults` that may be given more than once."""


def search_query(request: web.Request) -> ConsultSearchQuery:
    """The consult list's query, validated; `invalid_payload` naming the first bad one."""
    raw: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if key in REPEATABLE_QUERY:
            raw[key] = values
        elif len(values) > 1:
            raise ApiError(errors.INVALID_PAYLOAD, f"query parameter {key} is given twice", 422)
        else:
            raw[key] = values[0]
    try:
        return ConsultSearchQuery.model_validate(raw)
    except ValidationError as exc:
        raise errors.from_validation(exc, "query") from None


def consult_filter(query: ConsultSearchQuery) -> ConsultFilter:
    return ConsultFilter(
        institution_id=query.institution,
        specialties=frozenset(query.specialty),
        statuses=frozenset(query.status),
        scheduled_from=query.scheduled_from.astimezone(UTC) if query.scheduled_from else None,
        scheduled_before=query.scheduled_to.astimezone(UTC) if query.scheduled_to else None,
        recorded=None if query.recorded is None else query.recorded == "yes",
        limit=query.limit,
        offset=query.offset,
    )


@api.route(
    "GET",
    "/api/consults",
    "Consults I work with (`?status=` repeatable); supervisors and admins also filter by "
    "`institution`, `specialty` (repeatable), `from`/`to` (scheduled, ISO 8601 with offset, "
    "[from, to)), `recorded=yes|no`, and page with `limit`/`offset`",
    response=ConsultListOut,
    errors=(errors.INVALID_PAYLOAD, "forbidden"),
)
async def list_consults(request: web.Request) -> web.Response:
    user = await current_user(request)
    query = search_query(request)
    ctx = request.app[SIGNALING]
    directory = Directory(ctx.service.store)
    if user.role in SEARCH_ROLES and ctx.review is not None:
        page = await ctx.review.search(user, consult_filter(query))
        return json_response(
            ConsultListOut(
                consults=[await directory.consult_out(c) for c in page.consults],
                next_offset=page.next_offset,
            )
        )
    if query.model_fields_set - {"status"}:
        raise ApiError(
            "forbidden", "only supervisors and admins filter consults beyond status", 403
        )
    found = await ctx.service.list_for(user, query.status)
    return json_response(ConsultListOut(consults=[await directory.consult_out(c) for c in found]))


@api.route(
    "POST",
    "/api/consults",
    "Book a consult (exam-room doctors)",
    body=BookConsultRequest,
    response=ConsultOut,
    status=201,
    errors=("forbidden", "invalid_booking", "invalid_intake", errors.INVALID_PAYLOAD),
)
async def book_consult(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    body = await parse_body(request, BookConsultRequest)
    if len(json.dumps(body.intake)) > ctx.limits.max_intake_bytes:
        raise ApiError(
            errors.PAYLOAD_TOO_LARGE,
            f"intake form is larger than {ctx.limits.max_intake_bytes} bytes",
            413,
        )
    consult = await ctx.service.book(
        user,
        Booking(
            patient=PatientSummary(
                name=body.patient.name,
                sex=body.patient.sex,
                age_years=body.patient.age_years,
                summary=body.patient.summary,
            ),
            specialty=body.specialty,
            reason=body.reason,
            scheduled_at=body.scheduled_at.astimezone(UTC),
            intake=body.intake,
            specialist_id=body.specialist_id,
            media_mode=MediaMode(body.media_mode),
        ),
    )
    dispatcher = request.app.get(DUTY)
    if dispatcher is not None:
        # The roster decides who hears of it first (step 0); see docs/roster-and-escalation.md.
        view = await dispatcher.booked(consult)
    else:
        view = await request.app[HUB].consult_requested(consult)
    return json_response(view, 201)


@api.route(
    "GET",
    "/api/consults/{consult_id}",
    "One consult",
    response=ConsultOut,
    errors=("not_found", "forbidden"),
)
async def get_consult(request: web.Request) -> web.Response:
    user = await current_user(request)
    service = request.app[SIGNALING].service
    consult = await service.get(user, consult_id_of(request))
    return json_response(await Directory(service.store).consult_out(consult))


Transition = Callable[[ConsultService, User, str, Any], Awaitable[Consult]]


def _transition_endpoint(verb: str, summary: str, body: type[BaseModel], act: Transition) -> None:
    @api.route(
        "POST",
        f"/api/consults/{{consult_id}}/{verb}",
        summary,
        body=body,
        response=ConsultOut,
        errors=("not_found", "forbidden", "illegal_transition", "conflict"),
    )
    async def handler(request: web.Request) -> web.Response:
        user = await current_user(request)
        ctx = request.app[SIGNALING]
        consult = await act(
            ctx.service, user, consult_id_of(request), await parse_body(request, body)
        )
        hub = request.app[HUB]
        view = await hub.status_changed(consult)
        if consult.status in FINISHED:
            # The live room stops recording, drops the relay and lets everyone out.
            await request.app[ROOMS].consult_finished(consult.id)
            await hub.consult_closed(consult.id)
        return json_response(view)

    handler.__name__ = f"{verb}_consult"


_transition_endpoint(
    "accept",
    "Accept a requested consult (specialists)",
    EmptyRequest,
    lambda service, user, consult_id, _body: service.accept(user, consult_id),
)
_transition_endpoint(
    "decline",
    "Decline a requested consult (specialists)",
    ReasonRequest,
    lambda service, user, consult_id, body: service.decline(user, consult_id, body.reason),
)
_transition_endpoint(
    "cancel",
    "Cancel a consult before it goes live",
    ReasonRequest,
    lambda service, user, consult_id, body: service.cancel(user, consult_id, body.reason),
)
_transition_endpoint(
    "end",
    "End a consult; the conclusion becomes part of the record",
    EndConsultRequest,
    lambda service, user, consult_id, body: service.end(user, consult_id, body.conclusion),
)


@api.route(
    "GET",
    "/api/consults/{consult_id}/audit",
    "The audit trail of one consult (supervisors, admins)",
    response=AuditTrailOut,
    errors=("not_found", "forbidden"),
)
async def consult_audit(request: web.Request) -> web.Response:
    user = await current_user(request)
    service = request.app[SIGNALING].service
    entries = await service.audit_trail(user, consult_id_of(request))
    directory = Directory(service.store)
    return json_response(
        AuditTrailOut(
            entries=[
                AuditEntryOut(
                    id=e.id,
                    at=e.at,
                    actor_id=e.actor_id,
                    actor=await directory.person(e.actor_id) if e.actor_id is not None else None,
                    action=e.action,
                    detail=e.detail,
                )
                for e in entries
            ]
        )
    )
