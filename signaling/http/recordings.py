"""REST for recordings: list a consult's recordings, grant a playback link, serve the bytes.

Playback goes in two steps because a `<video>` element cannot send an `Authorization` header:
`POST /api/recordings/{id}/playback` (bearer token, permission checked, audited) answers a
short-lived link; `GET /api/recordings/{id}/media?access=…` serves byte ranges of the file to
whoever holds that link, checks the permission again and audits every request.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.calls.media_port import RecordingFiles
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording, TrackSource
from signaling import errors
from signaling.auth import PlaybackTokens
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, consult_id_of, hex_id_of, json_response
from signaling.http.ranges import UnsatisfiableRange, parse_range
from signaling.schemas import PersonRef
from signaling.views import Directory

# ---- wire schemas --------------------------------------------------------------------------


class RecordingOut(BaseModel):
    id: str
    consult_id: str
    participant: PersonRef
    source: TrackSource
    kind: str
    codec: str
    container: str
    started_offset_s: float
    duration_s: float
    bytes: int
    sha256: str
    recovered: bool
    created_at: datetime


class RecordingListOut(BaseModel):
    recordings: list[RecordingOut]


class PlaybackOut(BaseModel):
    url: str = Field(
        description="a path on this server, `/api/recordings/{id}/media?access=…` (no scheme or "
        "host): resolve it against the URL the API was called at"
    )
    expires_at: datetime


MEDIA_TYPES = {
    ("webm", "video"): "video/webm",
    ("webm", "audio"): "audio/webm",
    ("matroska", "video"): "video/x-matroska",
    ("matroska", "audio"): "audio/x-matroska",
}


class MediaQuery(BaseModel):
    """`GET /api/recordings/{recording_id}/media` query: the link `/playback` answered."""

    access: str = Field(description="the playback token of the link from /playback")


async def recording_out(directory: Directory, rec: Recording) -> RecordingOut:
    return RecordingOut(
        id=rec.id,
        consult_id=rec.consult_id,
        participant=await directory.person(rec.participant_id),
        source=rec.source,
        kind=rec.kind,
        codec=rec.codec,
        container=rec.container,
        started_offset_s=rec.started_offset_s,
        duration_s=rec.duration_s,
        bytes=rec.bytes,
        sha256=rec.sha256,
        recovered=rec.recovered,
        created_at=rec.started_at,
    )


# ---- routes --------------------------------------------------------------------------------


def routes(
    edge: Edge,
    *,
    recordings: RecordingService,
    playback: PlaybackTokens,
    files: RecordingFiles,
) -> Feature:
    feature = Feature("recordings")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/recordings",
        "The finished recordings of a consult, one per recorded track",
        response=RecordingListOut,
        errors=("not_found", "forbidden"),
    )
    async def list_recordings(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        found = await recordings.list_recordings(user, consult_id_of(request))
        directory = edge.directory()
        return json_response(
            RecordingListOut(recordings=[await recording_out(directory, r) for r in found])
        )

    @feature.route(
        "POST",
        "/api/recordings/{recording_id}/playback",
        "A short-lived playback link for one recording (audited)",
        response=PlaybackOut,
        errors=("not_found", "forbidden"),
    )
    async def grant_playback(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        recording = await recordings.grant_playback(user, hex_id_of(request, "recording"))
        token, expires = playback.issue(user, recording.id)
        url = f"/api/recordings/{recording.id}/media?access={token}"
        return json_response(PlaybackOut(url=url, expires_at=expires))

    @feature.route(
        "GET",
        "/api/recordings/{recording_id}/media",
        "The recording's bytes, with HTTP Range support (link from /playback; audited)",
        writes=True,  # the audit entry
        authenticated=False,
        query=MediaQuery,
        ranges=True,
        binary_response=(*sorted(set(MEDIA_TYPES.values())), "application/octet-stream"),
        errors=(
            "token_missing",
            "token_invalid",
            "token_expired",
            "not_found",
            "forbidden",
            "recording_storage_unavailable",
        ),
    )
    async def recording_media(request: web.Request) -> web.StreamResponse:
        recording_id = hex_id_of(request, "recording")
        if "access" not in request.query and "Authorization" in request.headers:
            raise ApiError(
                errors.TOKEN_MISSING,
                "no playback link token (access=…): this URL reads no Authorization header; "
                "ask POST /api/recordings/{id}/playback for a link",
                401,
            )
        user_id = playback.verify(request.query.get("access"), recording_id)
        user = await edge.store.get_user(user_id)
        if user is None or not user.active:
            raise ApiError(
                errors.TOKEN_INVALID, "the link's user no longer exists or is disabled", 401
            )
        # The permission is checked on every request: a link outlives nobody's rights.
        recording = await recordings.viewable(user, recording_id)
        size = await files.size(recording.storage_key)
        media_type = MEDIA_TYPES.get(
            (recording.container, recording.kind), "application/octet-stream"
        )
        try:
            wanted = parse_range(request.headers.get("Range"), size)
        except UnsatisfiableRange as exc:
            return web.json_response(
                {"code": errors.RANGE_NOT_SATISFIABLE, "message": str(exc)},
                status=416,
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        await recordings.record_access(user, recording, wanted.first, wanted.last)
        response = web.StreamResponse(
            status=206 if wanted.partial else 200,
            headers={
                "Content-Type": media_type,
                "Accept-Ranges": "bytes",
                "Content-Length": str(wanted.length),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
        if wanted.partial:
            response.headers["Content-Range"] = f"bytes {wanted.first}-{wanted.last}/{size}"
        await response.prepare(request)
        async for chunk in files.chunks(recording.storage_key, wanted.first, wanted.last):
            await response.write(chunk)
        await response.write_eof()
        return response

    return feature
