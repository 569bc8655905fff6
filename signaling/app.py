"""Builds the aiohttp application: socket.io, the REST features, OpenAPI and the web client.

Two steps, so that the composition root can hand the socket.io side to the features that need
it (and to `notify`'s scheduler): `realtime(ctx)` makes the socket.io server, its fan-out hub,
the live consult rooms and the socket.io events; `create_app(ctx, live, features, …)` mounts
them and every REST feature (`signaling.http`) the server is built with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import socketio
from aiohttp import web

from rooms.calls.registry import ConsultRooms
from rooms.calls.room import RoomParts, RoomSettings
from signaling.asyncapi import build_asyncapi
from signaling.context import Signaling
from signaling.errors import ApiError
from signaling.events import ConsultEvents
from signaling.http.api import Endpoint, Feature, error_middleware
from signaling.http.openapi import build_openapi
from signaling.hub import ConsultHub
from signaling.packets import ProtocolServer
from signaling.room_notifier import SocketRoomNotifier
from signaling.sessions import LiveSessions


@dataclass(frozen=True)
class Realtime:
    """The socket.io side of this process: the server, its fan-out channels, the live consult
    rooms, the live sessions and the socket.io events."""

    sio: socketio.AsyncServer
    hub: ConsultHub
    rooms: ConsultRooms
    sessions: LiveSessions
    events: ConsultEvents

    async def consult_finished(self, consult_id: str) -> None:
        """A consult ended, was declined or cancelled: its live side goes."""
        # The live room stops recording, drops the relay and lets everyone out (in whichever
        # signaling process holds it).
        await self.events.consult_finished(consult_id)
        await self.hub.consult_closed(consult_id)
        quality = self.events.ctx.quality
        if quality is not None:  # its last quality buckets are written at the next flush
            quality.consult_closed(consult_id)


def realtime(ctx: Signaling, client_manager: socketio.AsyncManager | None = None) -> Realtime:
    sio = ProtocolServer(
        ConsultEvents.CLIENT_EVENTS,
        async_mode="aiohttp",
        client_manager=client_manager,
        max_http_buffer_size=ctx.limits.transport_max_bytes,
        max_unread_bytes=ctx.limits.max_unread_bytes,
    )
    hub = ConsultHub(sio, ctx.service.store)
    notifier = SocketRoomNotifier(sio, hub)
    rooms = ConsultRooms(
        RoomParts(
            consults=ctx.service,
            recordings=ctx.recordings,
            node=ctx.media if ctx.recordings is not None else None,
            notifier=notifier,
            settings=RoomSettings(
                max_people=ctx.limits.max_participants_per_consult,
                p2p_check_timeout=float(ctx.limits.p2p_check_seconds),
            ),
        )
    )
    sessions = LiveSessions(
        sio,
        ctx.users or ctx.service.store,
        timedelta(seconds=ctx.limits.socket_recheck_seconds),
    )
    events = ConsultEvents(ctx, hub, rooms, sessions, notifier)
    sio.register_namespace(events)
    return Realtime(sio, hub, rooms, sessions, events)


def create_app(
    ctx: Signaling,
    live: Realtime,
    features: Iterable[Feature],
    web_root: Path | None,
    version: str,
    operator_routes: Iterable[web.RouteDef] = (),
) -> web.Application:
    """The aiohttp app. `operator_routes` are served outside the API (e.g. `/metrics`), before
    the static files."""
    app = web.Application(
        middlewares=[error_middleware(ctx.limits.max_request_bytes, ctx.metrics.http_error)],
        client_max_size=ctx.limits.max_request_bytes,
    )

    async def live_consults(_app: web.Application) -> AsyncIterator[None]:
        live.sessions.start()
        yield
        await live.sessions.stop()

    async def drain_rooms(_app: web.Application) -> None:
        await live.rooms.close()

    flushers: list[asyncio.Task[None]] = []

    async def start_quality(_app: web.Application) -> None:
        if ctx.quality is not None:
            flushers.append(asyncio.create_task(ctx.quality.run(), name="quality-flush"))

    async def stop_quality(_app: web.Application) -> None:
        # On shutdown, after the rooms drained and before the database closes (cleanup).
        for flusher in flushers:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if ctx.quality is not None:
            await ctx.quality.flush(everything=True)

    app.cleanup_ctx.append(live_consults)
    app.on_startup.append(start_quality)
    app.on_shutdown.append(drain_rooms)
    app.on_shutdown.append(stop_quality)
    live.sio.attach(app)
    endpoints: list[Endpoint] = []
    for feature in features:
        app.router.add_routes(feature.routes)
        endpoints.extend(feature.endpoints)
    document = build_openapi(endpoints, version)

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/api/openapi.json", openapi)
    events_document = build_asyncapi(version)

    async def asyncapi(_request: web.Request) -> web.Response:
        return web.json_response(events_document)

    app.router.add_get("/api/asyncapi.json", asyncapi)

    async def unknown_api(request: web.Request) -> web.Response:
        raise ApiError("not_found", f"no API endpoint {request.method} {request.path}", 404)

    app.router.add_route("*", "/api/{tail:.*}", unknown_api)
    app.router.add_routes(list(operator_routes))
    if web_root is not None:

        async def index(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(web_root / "index.html")

        app.router.add_get("/", index)
        app.router.add_get("/dist/{page:[a-z][a-z-]{0,40}}.js", page_bundle(web_root))
        app.router.add_static("/", web_root, show_index=False, follow_symlinks=False)
    return app


def page_bundle(web_root: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`/dist/<page>.js`: the page's bundle (`teleconsult.web_bundle`, built by `make bundle`)
    if it was built, otherwise a one-line module importing the page's own module from `js/`:
    the page works either way, it only starts slower unbundled."""

    async def serve(request: web.Request) -> web.StreamResponse:
        page = request.match_info["page"]
        bundle = web_root / "dist" / f"{page}.js"
        if bundle.is_file():
            return web.FileResponse(bundle)
        if not (web_root / "js" / f"{page}.js").is_file():
            raise web.HTTPNotFound()
        return web.Response(
            text=f"import '../js/{page}.js';\n",
            content_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    return serve
