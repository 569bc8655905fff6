"""REST of the consult itself: book, list and search, read, move through its lifecycle, audit.

Also the picker of specialists (`GET /api/specialists`). A finished consult (ended, declined,
cancelled) leaves the live side through one call, `finished(consult_id)`, which the composition
root hands in (`signaling.app.Realtime.consult_finished`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from aiohttp import web
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError

from rooms.consults.consult import Consult, MediaMode, PatientSummary
from rooms.consults.lifecycle import FINISHED, ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.service import Booking, ConsultService
from rooms.reporting.review import MAX_OFFSET, MAX_PAGE, SEARCH_ROLES, ConsultFilter, ConsultPage
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
from signaling.hub import ConsultHub
from signaling.schemas import (
    ConsultOut,
    Id,
    LongText,
    PatientIn,
    PersonRef,
    Strict,
    WireTime,
    plain_text,
)

# ---- wire schemas --------------------------------------------------------------------------


class BookConsultRequest(Strict):
    patient: PatientIn
    specialty: Specialty
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        AfterValidator(plain_text),
    ]
    scheduled_at: WireTime
    """Also within `rooms.consults.service.PLAUSIBLE_SCHEDULE` of now (`invalid_booking`)."""
    intake: dict[str, Any] = Field(default_factory=dict)
    specialist_id: Id | None = None
    media_mode: Literal[MediaMode.P2P] = MediaMode.P2P


class EmptyRequest(Strict):
    """A body with nothing in it: `{}` (or no body at all)."""


class ReasonRequest(Strict):
    reason: LongText = ""


class EndConsultRequest(Strict):
    conclusion: LongText = ""
    """The specialist's conclusion. Left empty by anyone else (the exam room), the
    specialist's saved draft becomes the conclusion."""
    skip_conclusion: bool = False
    """The assigned specialist ends without a conclusion on purpose (else
    `conclusion_required` when `conclusion` is empty)."""


class ConclusionDraftRequest(Strict):
    text: LongText
    """The conclusion as typed so far (at most 4 000 characters; may be empty)."""


class ConclusionDraftOut(BaseModel):
    text: str
    saved_at: datetime | None
    """When it was last saved; None while nothing was."""


class ConsultSearchQuery(Strict):
    """`GET /api/consults` query parameters; all but `status` are for supervisors and admins."""

    status: list[ConsultStatus] = Field(default_factory=list, max_length=len(ConsultStatus))
    specialty: list[Specialty] = Field(default_factory=list, max_length=len(Specialty))
    institution: Id | None = None
    scheduled_from: WireTime | None = Field(default=None, alias="from")
    scheduled_to: WireTime | None = Field(default=None, alias="to")
    recorded: Literal["yes", "no"] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = MAX_PAGE
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class SpecialistsQuery(Strict):
    """`GET /api/specialists` query parameters."""

    specialty: Specialty | None = None


class ConsultListOut(BaseModel):
    consults: list[ConsultOut]
    next_offset: int | None = None
    """Supervisor searches: the `offset` of the next page; None when this was the last."""


class SpecialistOut(BaseModel):
    id: int
    display_name: str
    specialty: Specialty | None
    institution_name: str


class SpecialistListOut(BaseModel):
    specialists: list[SpecialistOut]


class AuditEntryOut(BaseModel):
    id: int | None
    at: datetime
    actor_id: int | None
    actor: PersonRef | None = None
    """The actor's name; None for the system itself."""
    action: str
    detail: dict[str, Any]


class AuditTrailOut(BaseModel):
    entries: list[AuditEntryOut]


# ---- query parsing -------------------------------------------------------------------------

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


# ---- routes --------------------------------------------------------------------------------


class ConsultSearch(Protocol):
    """The supervisors' search (`rooms.reporting.review.ReviewService`)."""

    async def search(self, user: User, wanted: ConsultFilter) -> ConsultPage: ...


AnnounceBooking = Callable[[Consult], Awaitable[ConsultOut]]
"""Tells those who should hear of a request just booked; the view it sent."""

ConsultFinished = Callable[[str], Awaitable[None]]
"""Ends the live side of a consult that just finished: recording, relay, the consult room."""

Transition = Callable[[User, str, Any], Awaitable[Consult]]
"""A lifecycle move of the consult service: (user, consult id, parsed body) -> the consult."""


def routes(
    edge: Edge,
    *,
    service: ConsultService,
    search: ConsultSearch,
    hub: ConsultHub,
    announce_booking: AnnounceBooking,
    finished: ConsultFinished,
    max_intake_bytes: int,
) -> Feature:
    feature = Feature("consults")

    @feature.route(
        "GET",
        "/api/specialists",
        "Active specialists, optionally of one specialty (`?specialty=`)",
        response=SpecialistListOut,
        query=SpecialistsQuery,
        errors=(errors.INVALID_PAYLOAD,),
    )
    async def specialists(request: web.Request) -> web.Response:
        await edge.caller(request)
        specialty = query_of(request, SpecialistsQuery).specialty
        directory = edge.directory()
        people = [u for u in await edge.store.list_users(Role.SPECIALIST, specialty) if u.active]
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

    @feature.route(
        "GET",
        "/api/consults",
        "Consults I work with (`?status=` repeatable); supervisors and admins also filter by "
        "`institution`, `specialty` (repeatable), `from`/`to` (scheduled, ISO 8601 with offset, "
        "[from, to)), `recorded=yes|no`, and page with `limit`/`offset`",
        response=ConsultListOut,
        query=ConsultSearchQuery,
        errors=(errors.INVALID_PAYLOAD, "forbidden"),
    )
    async def list_consults(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        query = search_query(request)
        directory = edge.directory()
        if user.role in SEARCH_ROLES:
            page = await search.search(user, consult_filter(query))
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
        found = await service.list_for(user, query.status)
        return json_response(
            ConsultListOut(consults=[await directory.consult_out(c) for c in found])
        )

    @feature.route(
        "POST",
        "/api/consults",
        "Book a consult (exam-room doctors)",
        body=BookConsultRequest,
        response=ConsultOut,
        status=201,
        errors=("forbidden", "invalid_booking", "invalid_intake", errors.INVALID_PAYLOAD),
    )
    async def book_consult(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, BookConsultRequest)
        if len(json.dumps(body.intake)) > max_intake_bytes:
            raise ApiError(
                errors.PAYLOAD_TOO_LARGE,
                f"intake form is larger than {max_intake_bytes} bytes",
                413,
            )
        consult = await service.book(
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
        return json_response(await announce_booking(consult), 201)

    @feature.route(
        "GET",
        "/api/consults/{consult_id}",
        "One consult",
        response=ConsultOut,
        errors=("not_found", "forbidden"),
    )
    async def get_consult(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        consult = await service.get(user, consult_id_of(request))
        return json_response(await edge.directory().consult_out(consult))

    def transition(
        verb: str, summary: str, body: type[BaseModel], act: Transition, *more_errors: str
    ) -> None:
        @feature.route(
            "POST",
            f"/api/consults/{{consult_id}}/{verb}",
            summary,
            body=body,
            response=ConsultOut,
            errors=("not_found", "forbidden", "illegal_transition", "conflict", *more_errors),
        )
        async def handler(request: web.Request) -> web.Response:
            user = await edge.caller(request)
            consult = await act(user, consult_id_of(request), await parse_body(request, body))
            view = await hub.status_changed(consult)
            if consult.status in FINISHED:
                await finished(consult.id)
            return json_response(view)

        handler.__name__ = f"{verb}_consult"

    transition(
        "accept",
        "Accept a requested consult (specialists)",
        EmptyRequest,
        lambda user, consult_id, _body: service.accept(user, consult_id),
    )
    transition(
        "decline",
        "Decline a requested consult (specialists)",
        ReasonRequest,
        lambda user, consult_id, body: service.decline(user, consult_id, body.reason),
    )
    transition(
        "cancel",
        "Cancel a consult before it goes live",
        ReasonRequest,
        lambda user, consult_id, body: service.cancel(user, consult_id, body.reason),
    )
    transition(
        "end",
        "End a consult for everybody; the conclusion (given by the specialist, or the "
        "specialist's draft when the exam room ends it) becomes part of the record",
        EndConsultRequest,
        lambda user, consult_id, body: service.end(
            user, consult_id, body.conclusion, skip_conclusion=body.skip_conclusion
        ),
        "conclusion_required",
    )

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/conclusion-draft",
        "The assigned specialist's conclusion draft (empty if none was saved)",
        response=ConclusionDraftOut,
        errors=("not_found", "forbidden"),
    )
    async def get_conclusion_draft(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        draft = await service.conclusion_draft(user, consult_id_of(request))
        return json_response(
            ConclusionDraftOut(
                text=draft.text if draft else "", saved_at=draft.saved_at if draft else None
            )
        )

    @feature.route(
        "PUT",
        "/api/consults/{consult_id}/conclusion-draft",
        "Keep the assigned specialist's conclusion as typed so far, while the consult runs",
        body=ConclusionDraftRequest,
        response=ConclusionDraftOut,
        errors=("not_found", "forbidden", "illegal_transition", errors.INVALID_PAYLOAD),
    )
    async def put_conclusion_draft(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, ConclusionDraftRequest)
        draft = await service.save_conclusion_draft(user, consult_id_of(request), body.text)
        return json_response(ConclusionDraftOut(text=draft.text, saved_at=draft.saved_at))

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/audit",
        "The audit trail of one consult (supervisors, admins)",
        response=AuditTrailOut,
        errors=("not_found", "forbidden"),
    )
    async def consult_audit(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        entries = await service.audit_trail(user, consult_id_of(request))
        directory = edge.directory()
        return json_response(
            AuditTrailOut(
                entries=[
                    AuditEntryOut(
                        id=e.id,
                        at=e.at,
                        actor_id=e.actor_id,
                        actor=await directory.person(e.actor_id)
                        if e.actor_id is not None
                        else None,
                        action=e.action,
                        detail=e.detail,
                    )
                    for e in entries
                ]
            )
        )

    return feature
