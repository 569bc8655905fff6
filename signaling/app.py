"""Builds the aiohttp application: REST API, socket.io, OpenAPI document and the web client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import socketio
from aiohttp import web

import signaling.intake_api  # (registers the intake form endpoints)
import signaling.notes_api  # (registers the notes endpoint)
import signaling.review_api  # noqa: F401  (registers the supervisor review endpoints)
from rooms.calls.registry import ConsultRooms
from rooms.calls.room import RoomParts, RoomSettings
from signaling import (  # noqa: F401  (register their endpoints)
    attachments_api,
    duty_api,
    fhir_api,
    invitations_api,
    recordings_api,
    statistics_api,
)
from signaling.context import Signaling
from signaling.duty import DutyDispatcher
from signaling.errors import ApiError
from signaling.events import ConsultEvents
from signaling.hub import ConsultHub
from signaling.openapi import build_openapi
from signaling.rest import DUTY, HUB, ROOMS, SIGNALING, api, error_middleware
from signaling.room_notifier import SocketRoomNotifier
from signaling.sessions import LiveSessions


def create_app(
    ctx: Signaling,
    web_root: Path | None,
    version: str,
    client_manager: socketio.AsyncManager | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware], client_max_size=ctx.limits.max_request_bytes
    )
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=client_manager,
        max_http_buffer_size=ctx.limits.transport_max_bytes,
    )
    hub = ConsultHub(sio, ctx.service.store)
    live = ConsultRooms(
        RoomParts(
            consults=ctx.service,
            recordings=ctx.recordings,
            node=ctx.media if ctx.recordings is not None else None,
            notifier=SocketRoomNotifier(sio, hub),
            settings=RoomSettings(
                max_people=ctx.limits.max_participants_per_consult,
                p2p_check_timeout=float(ctx.limits.p2p_check_seconds),
            ),
        )
    )
    app[ROOMS] = live
    sessions = LiveSessions(
        sio, ctx.service.store, timedelta(seconds=ctx.limits.socket_recheck_seconds)
    )

    async def live_consults(_app: web.Application) -> AsyncIterator[None]:
        sessions.start()
        yield
        await sessions.stop()

    async def drain_rooms(_app: web.Application) -> None:
        await live.close()

    app.cleanup_ctx.append(live_consults)
    app.on_shutdown.append(drain_rooms)
    if ctx.escalation is not None:
        dispatcher = DutyDispatcher(
            sio, hub, ctx.escalation, ctx.pusher, ctx.duty_tick, expiry=ctx.expiry
        )
        app[DUTY] = dispatcher

        async def duty_scheduler(_app: web.Application) -> AsyncIterator[None]:
            dispatcher.start()
            yield
            await dispatcher.stop()
            if ctx.pusher is not None:
                await ctx.pusher.close()

        app.cleanup_ctx.append(duty_scheduler)
    events = ConsultEvents(ctx, hub, live, sessions)
    sio.register_namespace(events)
    app[invitations_api.EVENTS] = events
    sio.attach(app)
    app[SIGNALING] = ctx
    app[HUB] = hub
    app.router.add_routes(api.routes)
    document = build_openapi(api.endpoints, version)

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
