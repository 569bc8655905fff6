"""A training's broadcast over plain HTTP: playlists and fMP4 files under a signed URL.

`GET /hls/{training}/{expires}/{signature}/{stream}/{name}`: the signature is checked on every
request without the database (`signaling.viewer_urls`); `stream` is `camera`, `screen` or
`stage` (`rooms.training.broadcast.STREAMS`) and `name` one of the broadcast's own file names
(`FILE_NAME`), or the answer is `not_found`: no path reaches the disk that the server did not
make. Answers carry a strong `ETag` (and honour `If-None-Match`), `Cache-Control` (segments,
parts and the init section are immutable; a live playlist lives one second) and byte ranges, so
that nginx or a CDN can sit in front.

`GET /hls/{training}/{expires}/{signature}/streams.json`: which streams can be played now
(`{"streams": {"camera": "live", "screen": "live"}}`, `replay` after the end), so that a player
asks for nothing that is not there yet; cacheable for a second.

LL-HLS blocking playlist reload: `live.m3u8?_HLS_msn=N[&_HLS_part=P]` is answered once
segment N (its part P) exists, or after three target durations with what there is.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.training.broadcast import (
    TRAINING_ID,
    BroadcastFile,
    BroadcastReader,
    TooFarAhead,
)
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import Feature, query_of
from signaling.http.ranges import UnsatisfiableRange, parse_range
from signaling.schemas import Strict
from signaling.viewer_urls import ViewerUrls

MAX_MSN = 10**9
"""Larger media sequence numbers are refused (a year of 2-second segments is 16 million)."""


class PlaylistQuery(Strict):
    """LL-HLS delivery directives (RFC 8216bis §6.2.5.2)."""

    msn: int | None = Field(default=None, alias="_HLS_msn", ge=0, le=MAX_MSN)
    part: int | None = Field(default=None, alias="_HLS_part", ge=0, le=10_000)


CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
}


def cache_control(found: BroadcastFile) -> str:
    if found.immutable:
        return "public, max-age=31536000, immutable"
    if found.live:
        return "public, max-age=1"
    return "public, max-age=60"


class StreamsOut(BaseModel):
    streams: dict[Literal["camera", "screen", "stage"], Literal["live", "replay"]]


def routes(*, broadcasts: BroadcastReader, viewer_urls: ViewerUrls) -> Feature:
    feature = Feature("broadcast")

    @feature.route(
        "GET",
        "/hls/{training_id}/{expires}/{signature}/streams.json",
        "Which streams of the training's broadcast can be played now (under the signed URL)",
        authenticated=False,
        response=StreamsOut,
        errors=(errors.VIEWER_URL_INVALID, errors.VIEWER_URL_EXPIRED, errors.NOT_FOUND),
    )
    async def broadcast_streams(request: web.Request) -> web.Response:
        training_id = request.match_info["training_id"]
        if not TRAINING_ID.fullmatch(training_id):
            raise ApiError(errors.NOT_FOUND, "no such training", 404)
        viewer_urls.check(
            training_id, request.match_info["expires"], request.match_info["signature"]
        )
        found = StreamsOut.model_validate({"streams": await broadcasts.streams(training_id)})
        return web.json_response(
            found.model_dump(mode="json"),
            headers={"Cache-Control": "public, max-age=1", "Access-Control-Allow-Origin": "*"},
        )

    @feature.route(
        "GET",
        "/hls/{training_id}/{expires}/{signature}/{stream}/{name}",
        "A file of a training's broadcast (playlist, init section, segment, part) under the "
        "signed viewer URL from /api/trainings/{id}/admission; Range and If-None-Match honoured",
        authenticated=False,
        query=PlaylistQuery,
        ranges=True,
        binary_response=tuple(sorted(set(CONTENT_TYPES.values()))),
        errors=(
            errors.VIEWER_URL_INVALID,
            errors.VIEWER_URL_EXPIRED,
            errors.NOT_FOUND,
            errors.INVALID_PAYLOAD,
            errors.RANGE_NOT_SATISFIABLE,
        ),
    )
    async def broadcast_file(request: web.Request) -> web.StreamResponse:
        training_id = request.match_info["training_id"]
        stream = request.match_info["stream"]
        name = request.match_info["name"]
        if not TRAINING_ID.fullmatch(training_id):
            raise ApiError(errors.NOT_FOUND, "no such training", 404)
        viewer_urls.check(
            training_id, request.match_info["expires"], request.match_info["signature"]
        )
        query = query_of(request, PlaylistQuery)
        if query.part is not None and query.msn is None:
            raise ApiError(errors.INVALID_PAYLOAD, "_HLS_part needs _HLS_msn", 400)
        if name == "live.m3u8" and query.msn is not None:
            try:
                await broadcasts.wait_for(training_id, stream, query.msn, query.part)
            except TooFarAhead:
                raise ApiError(
                    errors.INVALID_PAYLOAD, "_HLS_msn lies more than two segments ahead", 400
                ) from None
        found = await broadcasts.read(training_id, stream, name)
        if found is None:
            raise ApiError(errors.NOT_FOUND, f"no {name[:40]} in this broadcast", 404)
        suffix = name[name.rindex(".") :]
        headers = {
            "Content-Type": CONTENT_TYPES[suffix],
            "Cache-Control": cache_control(found),
            "ETag": found.etag,
            "Accept-Ranges": "bytes",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }
        if found.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        size = len(found.data)
        try:
            wanted = parse_range(request.headers.get("Range"), size)
        except UnsatisfiableRange as exc:
            return web.json_response(
                {"code": errors.RANGE_NOT_SATISFIABLE, "message": str(exc)},
                status=416,
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        if wanted.partial:
            headers["Content-Range"] = f"bytes {wanted.first}-{wanted.last}/{size}"
        return web.Response(
            status=206 if wanted.partial else 200,
            body=found.data[wanted.first : wanted.last + 1],
            headers=headers,
        )

    return feature
