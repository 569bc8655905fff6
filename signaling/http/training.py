"""REST of trainings (`rooms.training`): schedule, list, show, start/end/cancel, and admission
of a trainee (checked against the training's audience; a refusal is audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, model_validator

from rooms.consults.people import Specialty
from rooms.training.attendance import BEAT_EVERY
from rooms.training.service import TrainingPlan, TrainingService
from rooms.training.training import (
    MAX_LECTURERS,
    MAX_NAMED_INSTITUTIONS,
    MAX_TITLE,
    Audience,
    AudienceKind,
    Training,
    TrainingEvent,
    TrainingStatus,
)
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, json_response, parse_body, query_of
from signaling.ice import IceConfig, ice_servers_for
from signaling.schemas import (
    Id,
    InstitutionRef,
    Mid,
    OfferDescription,
    PersonRef,
    Strict,
    WireTime,
)
from signaling.sdp import SdpProblem, SdpTooLarge, check_sdp
from signaling.viewer_urls import ViewerUrls
from signaling.views import Directory

TrainingId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class AudienceIn(Strict):
    kind: Literal["subtree", "named"]
    """`subtree`: the one institution named and everything below it; `named`: exactly those."""
    institution_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_NAMED_INSTITUTIONS)]


class TrainingIn(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]
    lecturer_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_LECTURERS)]
    starts_at: WireTime
    ends_at: WireTime
    audience: AudienceIn
    specialties: Annotated[list[Specialty], Field(max_length=len(Specialty))] = []


class AudienceOut(BaseModel):
    kind: Literal["subtree", "named"]
    institutions: list[InstitutionRef]


class TrainingOut(BaseModel):
    id: str
    version: int
    title: str
    status: TrainingStatus
    organiser: InstitutionRef
    lecturers: list[PersonRef]
    starts_at: datetime
    ends_at: datetime
    audience: AudienceOut
    specialties: list[Specialty]


class BroadcastIn(Strict):
    """The lecturer's publish offer, ICE candidates included (gathered before sending)."""

    description: OfferDescription
    sources: Annotated[dict[Mid, Literal["camera", "microphone", "second"]], Field(max_length=3)]
    """mid → what it sends: `camera`, `microphone`, `second` (the shared screen)."""

    @model_validator(mode="after")
    def _each_source_once(self) -> BroadcastIn:
        named = list(self.sources.values())
        if len(set(named)) != len(named):
            raise ValueError("each source is sent on one m-section only")
        return self


class AnswerDescription(BaseModel):
    type: Literal["answer"] = "answer"
    sdp: str


class BroadcastOut(BaseModel):
    description: AnswerDescription


class IceServersOut(BaseModel):
    ice_servers: list[dict[str, Any]]
    """For the lecturer's `RTCPeerConnection` (TURN credentials for this user, if any)."""


class AttendeeOut(BaseModel):
    person: PersonRef
    institution: InstitutionRef
    first_seen: datetime
    last_seen: datetime
    minutes: float
    """Attended time, from the player's heartbeats (docs/training.md, "Attendance")."""


class AttendanceOut(BaseModel):
    attendees: list[AttendeeOut]
    people: int
    hours: float


class BeatOut(BaseModel):
    live: bool
    """False: the training is not live (not yet, or over); nothing was counted, stop beating."""
    next_beat_s: int
    """When the player should beat again."""


class TrainingListOut(BaseModel):
    trainings: list[TrainingOut]


class TrainingQuery(Strict):
    """`GET /api/trainings` query parameters."""

    status: Annotated[list[TrainingStatus], Field(max_length=len(TrainingStatus))] = []
    """Only trainings in these statuses (repeat the parameter); none given: every status."""


class AdmissionOut(BaseModel):
    training: TrainingOut
    viewer_url: str
    """The signed URL prefix of the broadcast, `/hls/{training}/{expires}/{signature}/`: add
    `camera/` or `screen/` and `live.m3u8` while scheduled or live (404 until the lecturer's
    first segment), `vod.m3u8` (the replay) once ended (`playlist`)."""
    playlist: Literal["live.m3u8", "vod.m3u8"]
    expires_at: datetime
    """The URL (and every file under it) is refused after this; ask again to go on."""


async def training_out(directory: Directory, training: Training) -> TrainingOut:
    return TrainingOut(
        id=training.id,
        version=training.version,
        title=training.title,
        status=training.status,
        organiser=InstitutionRef(
            id=training.organiser_institution_id,
            name=await directory.institution_name(training.organiser_institution_id),
        ),
        lecturers=[await directory.person(i) for i in sorted(training.lecturer_ids)],
        starts_at=training.starts_at,
        ends_at=training.ends_at,
        audience=AudienceOut(
            kind=training.audience.kind.value,
            institutions=[
                InstitutionRef(id=i, name=await directory.institution_name(i))
                for i in sorted(training.audience.institution_ids)
            ],
        ),
        specialties=sorted(training.specialties),
    )


def training_id_of(request: web.Request) -> str:
    found = request.match_info["training_id"]
    if len(found) != 32 or any(c not in "0123456789abcdef" for c in found):
        raise ApiError(errors.NOT_FOUND, f"no training {found[:40]}", 404)
    return found


def routes(
    edge: Edge,
    *,
    trainings: TrainingService,
    viewer_urls: ViewerUrls,
    max_sdp_bytes: int,
    ice: IceConfig,
) -> Feature:
    feature = Feature("trainings")

    @feature.route(
        "POST",
        "/api/trainings",
        "Schedule a training for institutions of one's subtree (admins, supervisors)",
        body=TrainingIn,
        response=TrainingOut,
        status=201,
        errors=("forbidden", "invalid_training", errors.INVALID_PAYLOAD),
    )
    async def schedule(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, TrainingIn)
        training = await trainings.schedule(
            user,
            TrainingPlan(
                title=body.title,
                lecturer_ids=frozenset(body.lecturer_ids),
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                audience=Audience(
                    AudienceKind(body.audience.kind), frozenset(body.audience.institution_ids)
                ),
                specialties=frozenset(body.specialties),
            ),
        )
        return json_response(await training_out(edge.directory(), training), 201)

    @feature.route(
        "GET",
        "/api/trainings",
        "The trainings the caller may see (open to their institution, lectured or organised "
        "by them), the latest start first; `?status=` (repeatable) filters",
        response=TrainingListOut,
        query=TrainingQuery,
        errors=(errors.INVALID_PAYLOAD,),
    )
    async def list_trainings(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        query = query_of(request, TrainingQuery)
        found = await trainings.visible(user, frozenset(query.status) if query.status else None)
        directory = edge.directory()
        return json_response(
            TrainingListOut(trainings=[await training_out(directory, t) for t in found])
        )

    @feature.route(
        "GET",
        "/api/trainings/{training_id}",
        "One training (those it is open to, its lecturers and organisers)",
        response=TrainingOut,
        errors=("not_found",),
    )
    async def show(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        training = await trainings.get(user, training_id_of(request))
        return json_response(await training_out(edge.directory(), training))

    def mover(event: TrainingEvent, who: str) -> None:
        @feature.route(
            "POST",
            f"/api/trainings/{{training_id}}/{event.value}",
            f"{event.value.capitalize()} the training ({who})",
            response=TrainingOut,
            errors=("not_found", "forbidden", "illegal_transition", "conflict"),
        )
        async def move(request: web.Request) -> web.Response:
            user = await edge.caller(request)
            training = await trainings.move(user, training_id_of(request), event)
            return json_response(await training_out(edge.directory(), training))

    mover(TrainingEvent.START, "its lecturers, admins and supervisors of its organiser")
    mover(TrainingEvent.END, "its lecturers, admins and supervisors of its organiser")
    mover(TrainingEvent.CANCEL, "admins and supervisors of its organiser")

    @feature.route(
        "POST",
        "/api/trainings/{training_id}/admission",
        "Admit the caller to watch the training (its audience and organisers); audited, and "
        "a refusal is audited too",
        response=AdmissionOut,
        errors=("not_found", "forbidden"),
    )
    async def admission(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        training = await trainings.admit(user, training_id_of(request))
        url = viewer_urls.issue(training.id, trainings.clock())
        playlist = "vod.m3u8" if training.status is TrainingStatus.ENDED else "live.m3u8"
        return json_response(
            AdmissionOut(
                training=await training_out(edge.directory(), training),
                viewer_url=url.prefix,
                playlist=playlist,
                expires_at=url.expires_at,
            )
        )

    @feature.route(
        "GET",
        "/api/trainings/{training_id}/ice-servers",
        "The ICE servers for the lecturer's publish connection (those who may see the training)",
        response=IceServersOut,
        errors=("not_found",),
    )
    async def ice_servers(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        await trainings.get(user, training_id_of(request))
        return json_response(IceServersOut(ice_servers=ice_servers_for(ice, user.id)))

    @feature.route(
        "POST",
        "/api/trainings/{training_id}/broadcast",
        "The lecturer publishes camera, microphone and shared screen over WebRTC (an offer with "
        "its candidates; the answer back): the training goes live (its lecturers only)",
        body=BroadcastIn,
        response=BroadcastOut,
        errors=(
            "not_found",
            "forbidden",
            "illegal_transition",
            "media_refused",
            errors.INVALID_SDP,
            errors.SDP_TOO_LARGE,
            errors.INVALID_PAYLOAD,
            errors.RELAY_UNAVAILABLE,
        ),
    )
    async def broadcast(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, BroadcastIn)
        try:
            check_sdp(body.description.sdp, max_sdp_bytes)
        except SdpProblem as exc:
            code = errors.SDP_TOO_LARGE if isinstance(exc, SdpTooLarge) else errors.INVALID_SDP
            raise ApiError(code, str(exc), 413 if code == errors.SDP_TOO_LARGE else 400) from None
        answer = await trainings.present(
            user, training_id_of(request), body.description.sdp, dict(body.sources)
        )
        return json_response(BroadcastOut(description=AnswerDescription(sdp=answer)))

    @feature.route(
        "POST",
        "/api/trainings/{training_id}/heartbeat",
        "The caller's player is playing the live training (every 30 s; attendance)",
        response=BeatOut,
        errors=("not_found", "forbidden"),
    )
    async def heartbeat(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        live = await trainings.heartbeat(user, training_id_of(request))
        return json_response(BeatOut(live=live, next_beat_s=int(BEAT_EVERY.total_seconds())))

    @feature.route(
        "GET",
        "/api/trainings/{training_id}/attendance",
        "Who attended the training, from which institution, for how long (organisers, lecturers)",
        response=AttendanceOut,
        errors=("not_found", "forbidden"),
    )
    async def attendance(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        found = await trainings.attendance(user, training_id_of(request))
        directory = edge.directory()
        return json_response(
            AttendanceOut(
                attendees=[
                    AttendeeOut(
                        person=await directory.person(a.user_id),
                        institution=InstitutionRef(
                            id=a.institution_id,
                            name=await directory.institution_name(a.institution_id),
                        ),
                        first_seen=a.first_seen,
                        last_seen=a.last_seen,
                        minutes=round(a.seconds / 60, 2),
                    )
                    for a in found
                ],
                people=len(found),
                hours=round(sum(a.seconds for a in found) / 3600, 3),
            )
        )

    return feature
