"""Builds the aiohttp application: socket.io, the REST features, OpenAPI and the web client.

Two steps, so that the composition root can hand the socket.io side to the features that need
it (and to `notify`'s scheduler): `realtime(ctx)` makes the socket.io server, its fan-out hub
and the consult rooms' events and media; `create_app(ctx, live, features, …)` mounts them and
every REST feature (`signaling.http`) the server is built with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import socketio
from aiohttp import web

from signaling.consult_media import ConsultMedia
from signaling.context import Signaling
from signaling.errors import ApiError
from signaling.events import ConsultEvents
from signaling.http.api import Endpoint, Feature, error_middleware
from signaling.http.openapi import build_openapi
from signaling.hub import ConsultHub
from signaling.presence import PresenceRegistry


@dataclass(frozen=True)
class Realtime:
    """The socket.io side of this process: the server, its fan-out channels, the consult rooms'
    events and, on a server with a relay, their media."""

    sio: socketio.AsyncServer
    hub: ConsultHub
    events: ConsultEvents
    media: ConsultMedia | None
    presence: PresenceRegistry

    async def consult_finished(self, consult_id: str) -> None:
        """A consult ended, was declined or cancelled: its live side goes."""
        if self.media is not None:
            # Stop recording and drop the relay before the room empties.
            await self.media.consult_finished(consult_id)
        self.presence.clear(consult_id)
        await self.hub.consult_closed(consult_id)


def realtime(ctx: Signaling, client_manager: socketio.AsyncManager | None = None) -> Realtime:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=client_manager,
        max_http_buffer_size=ctx.limits.transport_max_bytes,
    )
    hub = ConsultHub(sio, ctx.service.store)
    media = None
    if ctx.media is not None and ctx.recordings is not None:
        media = ConsultMedia(sio, ctx.presence, hub, ctx.recordings, ctx.media)
    events = ConsultEvents(ctx, hub, media)
    sio.register_namespace(events)
    return Realtime(sio, hub, events, media, ctx.presence)


def create_app(
    ctx: Signaling,
    live: Realtime,
    features: Iterable[Feature],
    web_root: Path | None,
    version: str,
) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(ctx.limits.max_request_bytes)],
        client_max_size=ctx.limits.max_request_bytes,
    )
    media = live.media
    if media is not None:

        async def drain_media(_app: web.Application) -> None:
            await media.drain()

        app.on_shutdown.append(drain_media)
    live.sio.attach(app)
    endpoints: list[Endpoint] = []
    for feature in features:
        app.router.add_routes(feature.routes)
        endpoints.extend(feature.endpoints)
    document = build_openapi(endpoints, version)

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/api/openapi.json", openapi)

    async def unknown_api(request: web.Request) -> web.Response:
        raise ApiError("not_found", f"no API endpoint {request.method} {request.path}", 404)

    app.router.add_route("*", "/api/{tail:.*}", unknown_api)
    if web_root is not None:

        async def index(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(web_root / "index.html")

        app.router.add_get("/", index)
        app.router.add_static("/", web_root, show_index=False, follow_symlinks=False)
    return app
