"""Supervisor review REST: a consult's review (audited), its comments, the institutions to filter.

The filtered consult list itself is `GET /api/consults` (`signaling.rest`); the audit trail is
`GET /api/consults/{id}/audit`; playback links come from `signaling.recordings_api`.
"""

from __future__ import annotations

from aiohttp import web

from rooms.consults.institutions import InstitutionTree
from rooms.reporting.review import Comment, ReviewService, Timeline
from signaling import errors
from signaling.context import Signaling, built_with
from signaling.notes_api import notes_out
from signaling.recordings_api import recording_out
from signaling.rest import SIGNALING, api, consult_id_of, current_user, json_response, parse_body
from signaling.schemas import (
    CommentListOut,
    CommentOut,
    CommentRequest,
    InstitutionListOut,
    InstitutionOut,
    ReviewOut,
    TimelineMarkerOut,
    TimelineOut,
    TimelineSessionOut,
    TimelineTrackOut,
)
from signaling.views import Directory


def review_service(ctx: Signaling) -> ReviewService:
    return built_with(ctx.review, "supervisor review")


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


@api.route(
    "GET",
    "/api/consults/{consult_id}/review",
    "A consult for review: the record and one timeline of its recordings and notes "
    "(supervisors, admins; audited as consult.reviewed)",
    response=ReviewOut,
    errors=("not_found", "forbidden"),
)
async def open_review(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    review = await review_service(ctx).open(user, consult_id_of(request))
    directory = Directory(ctx.service.store)
    return json_response(
        ReviewOut(
            consult=await directory.consult_out(review.consult),
            timeline=await timeline_out(directory, review.timeline),
        )
    )


@api.route(
    "GET",
    "/api/consults/{consult_id}/comments",
    "The supervisors' review comments on a consult, oldest first",
    response=CommentListOut,
    errors=("not_found", "forbidden"),
)
async def list_comments(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    found = await review_service(ctx).comments(user, consult_id_of(request))
    directory = Directory(ctx.service.store)
    return json_response(CommentListOut(comments=await comments_out(directory, found)))


@api.route(
    "POST",
    "/api/consults/{consult_id}/comments",
    "Add a review comment, optionally pinned to a point of the review timeline (audited)",
    body=CommentRequest,
    response=CommentOut,
    status=201,
    errors=("not_found", "forbidden", errors.INVALID_PAYLOAD),
)
async def add_comment(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    body = await parse_body(request, CommentRequest)
    comment = await review_service(ctx).add_comment(
        user, consult_id_of(request), body.text, body.timeline_s
    )
    directory = Directory(ctx.service.store)
    return json_response((await comments_out(directory, [comment]))[0], 201)


@api.route(
    "GET",
    "/api/institutions",
    "The institutions of my subtree (my institution and those below it), for filters",
    response=InstitutionListOut,
)
async def list_institutions(request: web.Request) -> web.Response:
    user = await current_user(request)
    everything = await request.app[SIGNALING].service.store.institutions()
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
