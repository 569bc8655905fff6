"""Wires settings, storage, domain and edge into one running application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import socketio
from aiohttp import web

import web_client
from media.attachments import LocalAttachmentFiles
from media.files import StoredRecordingFiles
from media.network import announce_only, use_port_range
from media.node import LocalMediaNode
from media.recovery import recover_recordings
from media.relay import RelayConfig
from media.storage import LocalRecordingStorage
from rooms.calls.recording_service import RecordingService
from rooms.consults.expiry import ExpiryService
from rooms.consults.invitations import InvitationService
from rooms.consults.service import Clock, ConsultService, utc_now
from rooms.duty.escalation import EscalationConfig
from rooms.duty.services import EscalationService, PushSubscriptions, RosterService
from rooms.records.attachments import AttachmentService
from rooms.records.notes import NoteService
from rooms.reporting.review import ReviewService
from signaling.app import create_app
from signaling.auth import PlaybackTokens, TokenIssuer
from signaling.context import Signaling
from signaling.push import WebPushSender
from signaling.rest import ROOMS
from storage.sql.repositories import SqlRepositories
from teleconsult import __version__
from teleconsult.config import Settings, resolved_jwt_secret, vapid_key_in

log = logging.getLogger("teleconsult")

WEB_ROOT = Path(web_client.__file__).resolve().parent


def build_repositories(settings: Settings) -> SqlRepositories:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqlRepositories.open(settings.database_url)


def build_tokens(settings: Settings) -> TokenIssuer:
    return TokenIssuer(resolved_jwt_secret(settings), settings.jwt_audience, settings.token_ttl)


def relay_config(settings: Settings) -> RelayConfig:
    return RelayConfig(
        address=settings.media_address,
        port_min=settings.media_port_min,
        port_max=settings.media_port_max,
        ice_servers=[],
        video_codec=settings.relay_video_codec,
    )


def build_app(settings: Settings, clock: Clock = utc_now) -> web.Application:
    """The whole server. `clock` is the one time source of the consult and duty use cases
    (tests pass a controllable one to step through escalation)."""
    repos = build_repositories(settings)
    push = PushSubscriptions(
        repos.duty, settings.push_allow_http_loopback, clock, settings.push_service_hosts
    )
    recordings = RecordingService(repos.consults, repos.recordings, clock)
    storage = LocalRecordingStorage(settings.recordings_dir)
    partial_dir = storage.partial_dir
    if settings.media_address:
        announce_only([settings.media_address])
    if settings.media_port_min is not None and settings.media_port_max is not None:
        use_port_range(settings.media_port_min, settings.media_port_max)
    node = LocalMediaNode(relay_config(settings), storage, recordings, partial_dir)
    secret = resolved_jwt_secret(settings)
    consults = ConsultService(repos.consults, clock)
    ctx = Signaling(
        service=consults,
        tokens=build_tokens(settings),
        limits=settings.limits,
        ice=settings.ice,
        media=node,
        recordings=recordings,
        recording_files=StoredRecordingFiles(storage),
        playback=PlaybackTokens(secret, settings.jwt_audience, settings.playback_ttl),
        notes=NoteService(repos.consults, repos.notes, clock),
        report_timezone=settings.report_timezone,
        public_url=settings.public_url,
        review=ReviewService(repos.consults, repos.recordings, repos.notes, repos.comments, clock),
        attachments=AttachmentService(
            repos.consults,
            repos.attachments,
            LocalAttachmentFiles(settings.recordings_dir),
            settings.attachments,
            clock,
        ),
        roster=RosterService(repos.consults, repos.duty, clock),
        escalation=EscalationService(
            repos.consults,
            repos.duty,
            EscalationConfig(settings.escalate_after, settings.reminder_before),
            clock,
        ),
        push=push,
        pusher=WebPushSender(
            vapid_key_in(settings.data_dir),
            settings.vapid_subject,
            push,
            settings.push_timeout,
            settings.push_ttl,
        ),
        expiry=ExpiryService(consults, repos.consults, settings.expiry),
        duty_tick=settings.duty_tick,
        invitations=InvitationService(repos.consults, clock, settings.invited_specialists),
    )
    manager = socketio.AsyncRedisManager(settings.redis_url) if settings.redis_url else None
    app = create_app(ctx, WEB_ROOT, __version__, client_manager=manager)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        # Recordings the previous process left unfinished (a crash) are finalized first.
        recovered = await recover_recordings(partial_dir, storage, recordings)
        if recovered:
            print(f"recovered {len(recovered)} unfinished recording(s)", flush=True)
            # Their sessions were cut off: the rooms say so when people come back.
            app[ROOMS].mark_interrupted({r.consult_id for r in recovered})
        yield
        await node.close()
        await repos.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def serve(settings: Settings) -> None:
    app = build_app(settings)
    url = settings.base_url
    print(
        f"teleconsult {__version__} listening on http://{settings.host}:{settings.port}", flush=True
    )
    print(f"Open {url}/ in a browser (Ctrl-C stops the server).", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
