"""REST for recordings: list a consult's recordings, grant a playback link, serve the bytes.

Playback goes in two steps because a `<video>` element cannot send an `Authorization` header:
`POST /api/recordings/{id}/playback` (bearer token, permission checked, audited) answers a
short-lived link; `GET /api/recordings/{id}/media?access=…` serves byte ranges of the file to
whoever holds that link, checks the permission again and audits every request.
"""

from __future__ import annotations

from aiohttp import web

from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording
from signaling import errors
from signaling.context import Signaling
from signaling.errors import ApiError
from signaling.ranges import UnsatisfiableRange, parse_range
from signaling.rest import SIGNALING, api, consult_id_of, current_user, hex_id_of, json_response
from signaling.schemas import PlaybackOut, RecordingListOut, RecordingOut
from signaling.views import Directory

MEDIA_TYPES = {
    ("webm", "video"): "video/webm",
    ("webm", "audio"): "audio/webm",
    ("matroska", "video"): "video/x-matroska",
    ("matroska", "audio"): "audio/x-matroska",
}


def _recordings(ctx: Signaling) -> RecordingService:
    if ctx.recordings is None:
        raise ApiError(errors.RELAY_UNAVAILABLE, "this server does not record", 503)
    return ctx.recordings


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


@api.route(
    "GET",
    "/api/consults/{consult_id}/recordings",
    "The finished recordings of a consult, one per recorded track",
    response=RecordingListOut,
    errors=("not_found", "forbidden"),
)
async def list_recordings(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    found = await _recordings(ctx).list_recordings(user, consult_id_of(request))
    directory = Directory(ctx.service.store)
    return json_response(
        RecordingListOut(recordings=[await recording_out(directory, r) for r in found])
    )


@api.route(
    "POST",
    "/api/recordings/{recording_id}/playback",
    "A short-lived playback link for one recording (audited)",
    response=PlaybackOut,
    errors=("not_found", "forbidden"),
)
async def grant_playback(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    recording = await _recordings(ctx).grant_playback(user, hex_id_of(request, "recording"))
    assert ctx.playback is not None
    token, expires = ctx.playback.issue(user, recording.id)
    url = f"/api/recordings/{recording.id}/media?access={token}"
    return json_response(PlaybackOut(url=url, expires_at=expires))


@api.route(
    "GET",
    "/api/recordings/{recording_id}/media",
    "The recording's bytes, with HTTP Range support (link from /playback; audited)",
    authenticated=False,
    errors=("token_missing", "token_invalid", "token_expired", "not_found", "forbidden"),
)
async def recording_media(request: web.Request) -> web.StreamResponse:
    ctx = request.app[SIGNALING]
    recordings = _recordings(ctx)
    if ctx.playback is None or ctx.recording_files is None:
        raise ApiError(errors.RELAY_UNAVAILABLE, "this server does not serve recordings", 503)
    recording_id = hex_id_of(request, "recording")
    user_id = ctx.playback.verify(request.query.get("access"), recording_id)
    user = await ctx.service.store.get_user(user_id)
    if user is None or not user.active:
        raise ApiError(errors.TOKEN_INVALID, "the link's user no longer exists or is disabled", 401)
    # The permission is checked on every request: a link outlives nobody's rights.
    recording = await recordings.viewable(user, recording_id)
    files = ctx.recording_files
    size = files.size(recording.storage_key)
    media_type = MEDIA_TYPES.get((recording.container, recording.kind), "application/octet-stream")
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
