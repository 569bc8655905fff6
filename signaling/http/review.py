"""Supervisor review REST: a consult's review (audited), its comments, the institutions to filter.

The filtered consult list itself is `GET /api/consults` (`signaling.http.consults`); the audit
trail is `GET /api/consults/{id}/audit`; playback links come from `signaling.http.recordings`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from rooms.consults.institutions import InstitutionTree
from rooms.reporting.review import MAX_COMMENT_CHARS, Comment, ReviewService, Timeline
from signaling import errors
from signaling.http.api import Edge, Feature, consult_id_of, json_response, parse_body
from signaling.http.notes import NoteOut, notes_out
from signaling.http.recordings import RecordingOut, recording_out
from signaling.schemas import ConsultOut, PersonRef, Strict, plain_text
from signaling.views import Directory

# ---- wire schemas --------------------------------------------------------------------------

CommentText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMENT_CHARS),
    AfterValidator(plain_text),
]
"""At most `rooms.reporting.review.MAX_COMMENT_CHARS` characters after trimming; no control
characters but tab and line breaks."""


class CommentRequest(Strict):
    text: CommentText
    timeline_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class CommentOut(BaseModel):
    id: str
    author: PersonRef
    text: str
    at: datetime
    timeline_s: float | None


class CommentListOut(BaseModel):
    comments: list[CommentOut]


class TimelineSessionOut(BaseModel):
    index: int
    started_at: datetime
    start_s: float
    duration_s: float


class TimelineTrackOut(BaseModel):
    recording: RecordingOut
    session: int
    start_s: float
    end_s: float


class TimelineMarkerOut(BaseModel):
    note: NoteOut
    session: int | None
    at_s: float | None


class TimelineOut(BaseModel):
    duration_s: float
    sessions: list[TimelineSessionOut]
    tracks: list[TimelineTrackOut]
    markers: list[TimelineMarkerOut]


class ReviewOut(BaseModel):
    consult: ConsultOut
    timeline: TimelineOut


class PlaybackOut(BaseModel):
    timeline: TimelineOut


class InstitutionOut(BaseModel):
    id: int
    name: str
    level: str
    parent_id: int | None


class InstitutionListOut(BaseModel):
    institutions: list[InstitutionOut]


async def timeline_out(directory: Directory, timeline: Timeline) -> TimelineOut:
    notes = await notes_out(directory, [m.note for m in timeline.markers])
    return TimelineOut(
        duration_s=round(timeline.duration_s, 3),
        sessions=[
            TimelineSessionOut(
                index=s.index, started_at=s.started_at, start_s=s.start_s, duration_s=s.duration_s
            )
            for s in timeline.sessions
        ],
        tracks=[
            TimelineTrackOut(
                recording=await recording_out(directory, t.recording),
                session=t.session,
                start_s=t.start_s,
                end_s=t.end_s,
            )
            for t in timeline.tracks
        ],
        markers=[
            TimelineMarkerOut(note=note, session=m.session, at_s=m.at_s)
            for m, note in zip(timeline.markers, notes, strict=True)
        ],
    )


async def comments_out(directory: Directory, comments: list[Comment]) -> list[CommentOut]:
    return [
        CommentOut(
            id=c.id,
            author=await directory.person(c.author_id),
            text=c.text,
            at=c.at,
            timeline_s=c.timeline_s,
        )
        for c in comments
    ]


# ---- routes --------------------------------------------------------------------------------


def routes(edge: Edge, *, service: ReviewService) -> Feature:
    feature = Feature("review")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/playback",
        "One timeline of a consult's recordings and notes for the synced player, for anyone "
        "who may play its recordings (not written to the audit log itself; each track's "
        "playback link and reads are)",
        response=PlaybackOut,
        errors=("not_found", "forbidden"),
    )
    async def playback_timeline(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        timeline = await service.playback_timeline(user, consult_id_of(request))
        return json_response(PlaybackOut(timeline=await timeline_out(edge.directory(), timeline)))

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/review",
        "A consult for review: the record and one timeline of its recordings and notes "
        "(supervisors, admins; audited as consult.reviewed)",
        writes=True,  # the audit entry
        response=ReviewOut,
        errors=("not_found", "forbidden"),
    )
    async def open_review(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        review = await service.open(user, consult_id_of(request))
        directory = edge.directory()
        return json_response(
            ReviewOut(
                consult=await directory.consult_out(review.consult),
                timeline=await timeline_out(directory, review.timeline),
            )
        )

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/comments",
        "The supervisors' review comments on a consult, oldest first",
        response=CommentListOut,
        errors=("not_found", "forbidden"),
    )
    async def list_comments(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        found = await service.comments(user, consult_id_of(request))
        directory = edge.directory()
        return json_response(CommentListOut(comments=await comments_out(directory, found)))

    @feature.route(
        "POST",
        "/api/consults/{consult_id}/comments",
        "Add a review comment, optionally pinned to a point of the review timeline (audited)",
        body=CommentRequest,
        response=CommentOut,
        status=201,
        errors=("not_found", "forbidden", errors.INVALID_PAYLOAD),
    )
    async def add_comment(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        body = await parse_body(request, CommentRequest)
        comment = await service.add_comment(
            user, consult_id_of(request), body.text, body.timeline_s
        )
        directory = edge.directory()
        return json_response((await comments_out(directory, [comment]))[0], 201)

    @feature.route(
        "GET",
        "/api/institutions",
        "The institutions of my subtree (my institution and those below it), for filters",
        response=InstitutionListOut,
    )
    async def list_institutions(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        everything = await edge.store.institutions()
        mine = InstitutionTree(everything).subtree(user.institution_id)
        return json_response(
            InstitutionListOut(
                institutions=[
                    InstitutionOut(id=i.id, name=i.name, level=i.level.value, parent_id=i.parent_id)
                    for i in sorted(everything, key=lambda i: i.id)
                    if i.id in mine
                ]
            )
        )

    return feature
