"""Wires settings, storage, domain and edge into one running application."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

import web_client
from media.attachments import LocalAttachmentFiles
from media.broadcast.registry import Broadcasts
from media.broadcast.studio import TrainingStudio
from media.cluster.remote import RemoteMediaNodes
from media.event_loop import new_loop
from media.files import StoredRecordingFiles
from media.network import announce_only, use_port_range
from media.node import LocalMediaNode
from media.recovery import recover_dead_writers
from media.relay import RelayConfig
from media.storage import LocalRecordingStorage, RecordingStorage
from media.writer_folders import WriterFolder, claim
from notify.duty import DutyDispatcher
from notify.invitations import InvitationPushes
from notify.push import WebPushSender
from rooms.calls.quality_service import QualityService
from rooms.calls.recording_service import RecordingService
from rooms.consults.expiry import ExpiryService
from rooms.consults.invitations import InvitationService
from rooms.consults.service import Clock, ConsultService, utc_now
from rooms.duty.escalation import EscalationConfig
from rooms.duty.services import EscalationService, PushSubscriptions, RosterService
from rooms.records.attachments import AttachmentService
from rooms.records.notes import NoteService
from rooms.reporting.export_service import ExportService
from rooms.reporting.quality_timeline import CallQualityService
from rooms.reporting.review import ReviewService
from rooms.reporting.statistics_service import StatisticsService
from rooms.training.question_service import QuestionService
from rooms.training.service import TrainingService
from rooms.training.stage import StageService
from signaling.app import create_app, realtime
from signaling.auth import PlaybackTokens, TokenIssuer
from signaling.cluster import RoomCluster
from signaling.context import Signaling
from signaling.fanout import RedisFanOut
from signaling.fanout_outbox import Missed
from signaling.http import (
    attachments,
    broadcast,
    consults,
    duty,
    fhir,
    intake,
    invitations,
    login,
    notes,
    quality,
    recordings,
    review,
    serving,
    statistics,
    training,
)
from signaling.http.api import Edge
from signaling.known_users import USERS_CHANGED_FILE, KnownUsers
from signaling.metrics import SignalingMetrics
from signaling.passwords import PasswordChecks
from signaling.ratelimit import RateLimiter
from signaling.schemas import ConsultOut
from signaling.viewer_urls import ViewerUrls
from storage.sql.engine import sqlite_file
from storage.sql.repositories import SqlRepositories
from teleconsult import __version__
from teleconsult.config import Settings, fhir_identity, resolved_jwt_secret, vapid_key_in
from teleconsult.heap import settled_heap
from teleconsult.metrics import add_media_node, metrics_handler, new_registry

if TYPE_CHECKING:
    from media.object_storage import RecordingUploads

log = logging.getLogger("teleconsult")

WEB_ROOT = Path(web_client.__file__).resolve().parent


def build_repositories(settings: Settings) -> SqlRepositories:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqlRepositories.open(
        settings.database_url,
        statement_timeout=settings.database_statement_timeout,
        connect_timeout=settings.database_connect_timeout,
    )


def database_dir(database_url: str) -> Path | None:
    """The directory of the SQLite database file (its disk is watched); None for PostgreSQL."""
    found = sqlite_file(database_url)
    return found.parent if found else None


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


def build_recording_storage(
    settings: Settings,
) -> tuple[RecordingStorage, RecordingUploads | None]:
    """Local disk by default; an S3-compatible bucket with RECORDINGS_S3_* (partial files stay
    local in both cases), with its uploads. The S3 client is loaded only then."""
    if settings.recordings_s3 is None:
        return LocalRecordingStorage(settings.recordings_dir), None
    from media.object_storage import Bucket, S3RecordingStorage

    storage = S3RecordingStorage(settings.recordings_dir, Bucket(settings.recordings_s3))
    return storage, storage.uploads


def writer_id(settings: Settings, role: str) -> str:
    """This process's name as a recording writer (and media node): MEDIA_NODE_ID, or one made
    of its role, host and pid (a new one each start; a dead one's files are recovered by
    whichever process starts next)."""
    if settings.media_node_id:
        return settings.media_node_id
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:30] or "host"
    return f"{role}-{host}-{os.getpid()}"


def apply_media_network(settings: Settings) -> None:
    """MEDIA_ADDRESS and MEDIA_PORT_MIN/MAX for every relay of this process."""
    if settings.media_address:
        announce_only([settings.media_address])
    if settings.media_port_min is not None and settings.media_port_max is not None:
        use_port_range(settings.media_port_min, settings.media_port_max)


DUTY: web.AppKey[DutyDispatcher[ConsultOut]] = web.AppKey("duty")
"""The duty scheduler of a running app (tests step it by hand)."""

BROADCASTS: web.AppKey[Broadcasts] = web.AppKey("broadcasts")
"""The trainings' broadcasts of a running app."""


def build_app(settings: Settings, clock: Clock = utc_now) -> web.Application:
    """The whole server. `clock` is the one time source of the consult and duty use cases
    (tests pass a controllable one to step through escalation)."""
    repos = build_repositories(settings)
    push = PushSubscriptions(
        repos.duty, settings.push_allow_http_loopback, clock, settings.push_service_hosts
    )
    recording_service = RecordingService(repos.consults, repos.recordings, clock)
    registry = new_registry()
    storage, uploads = build_recording_storage(settings)
    partial_root = storage.partial_dir
    writer: WriterFolder | None = None
    node: LocalMediaNode | RemoteMediaNodes
    if settings.media_nodes == "redis":
        assert settings.redis_url is not None, "checked by load_settings"
        node = RemoteMediaNodes(
            settings.redis_url,
            timeout=settings.redis_timeout,
            request_timeout=settings.media_request_timeout,
        )
    else:
        apply_media_network(settings)
        writer = claim(partial_root, writer_id(settings, "serve"))
        node = LocalMediaNode(relay_config(settings), storage, recording_service, writer.path)
    tokens = build_tokens(settings)
    consult_service = ConsultService(repos.consults, clock)
    note_service = NoteService(repos.consults, repos.notes, clock)
    quality_service = QualityService(
        repos.quality, clock, bucket_seconds=settings.quality_bucket_seconds
    )
    quality_service.watch_relay(node)
    review_service = ReviewService(
        repos.consults, repos.recordings, repos.notes, repos.comments, clock
    )
    escalation = EscalationService(
        repos.consults,
        repos.duty,
        EscalationConfig(settings.escalate_after, settings.reminder_before),
        clock,
    )
    pusher = WebPushSender(
        vapid_key_in(settings.data_dir),
        settings.vapid_subject,
        push,
        settings.push_timeout,
        settings.push_ttl,
    )
    known_users = KnownUsers(
        repos.consults, settings.token_ttl, stamp=settings.data_dir / USERS_CHANGED_FILE
    )
    ctx = Signaling(
        service=consult_service,
        tokens=tokens,
        notes=note_service,
        limits=settings.limits,
        ice=settings.ice,
        media=node,
        recordings=recording_service,
        metrics=SignalingMetrics(registry),
        quality=quality_service,
        users=known_users,
    )
    fanout = (
        RedisFanOut(
            settings.redis_url,
            timeout=settings.redis_timeout,
            backlog_bytes=settings.fanout_backlog_bytes,
        )
        if settings.redis_url
        else None
    )
    live = realtime(ctx, client_manager=fanout)
    if fanout is not None:
        hub = live.hub

        async def state_resent(missed: Missed) -> None:
            await hub.state_resent(missed.consults)

        fanout.on_missed = state_resent
        ctx.metrics.watch_fanout(fanout)
    ctx.metrics.watch(
        connections=lambda: live.sessions.count,
        live_consults=lambda: live.rooms.counts()[0],
        people=lambda: live.rooms.counts()[1],
    )
    if isinstance(node, LocalMediaNode):  # remote nodes serve their own /metrics
        add_media_node(registry, node, uploads)
    cluster = (
        RoomCluster(
            settings.redis_url,
            lease_seconds=settings.room_lease_seconds,
            timeout=settings.redis_timeout,
        )
        if settings.redis_url
        else None
    )
    if cluster is not None:
        live.events.join_cluster(cluster)
    duty_dispatcher = DutyDispatcher(
        live.hub,
        escalation,
        pusher,
        settings.duty_tick,
        ExpiryService(consult_service, repos.consults, settings.expiry),
    )
    edge = Edge(tokens, repos.consults, known_users)
    broadcasts = Broadcasts(
        settings.training_dir, clock, segment_s=float(settings.training_segment_seconds)
    )
    studio = TrainingStudio(relay_config(settings), broadcasts)
    trainings = TrainingService(repos.consults, repos.trainings, clock, studio)
    ctx.questions = QuestionService(repos.consults, repos.trainings, repos.trainings, clock)
    ctx.stage = StageService(repos.consults, repos.trainings, studio, clock)
    studio.offer_stage = live.events.offer_stage
    viewer_urls = ViewerUrls(
        resolved_jwt_secret(settings),
        settings.training_viewer_url_ttl,
        settings.training_viewer_url_bucket,
        clock,
    )
    limits = settings.limits
    passwords = PasswordChecks(limits.password_checks_at_once, limits.password_checks_waiting)
    features = [
        login.routes(
            edge,
            failed_logins=RateLimiter(
                limits.login_attempts_per_minute, max_keys=limits.login_tracked_keys
            ),
            failed_logins_by_address=RateLimiter(
                limits.login_attempts_per_address_per_minute, max_keys=limits.login_tracked_keys
            ),
            passwords=passwords,
            storage_dir=settings.recordings_dir,
            database_dir=database_dir(settings.database_url),
            min_free_disk_mb=settings.min_free_disk_mb,
            redis=fanout.link if fanout else None,
        ),
        consults.routes(
            edge,
            service=consult_service,
            search=review_service,
            hub=live.hub,
            announce_booking=duty_dispatcher.booked,
            finished=live.consult_finished,
            max_intake_bytes=limits.max_intake_bytes,
        ),
        intake.routes(edge, forms=consult_service.intake_forms),
        notes.routes(edge, notes=note_service),
        recordings.routes(
            edge,
            recordings=recording_service,
            playback=PlaybackTokens(
                resolved_jwt_secret(settings), settings.jwt_audience, settings.playback_ttl
            ),
            files=StoredRecordingFiles(storage),
        ),
        review.routes(edge, service=review_service),
        attachments.routes(
            edge,
            service=AttachmentService(
                repos.consults,
                repos.attachments,
                LocalAttachmentFiles(settings.recordings_dir),
                settings.attachments,
                clock,
            ),
            hub=live.hub,
        ),
        duty.roster_routes(edge, roster=RosterService(repos.consults, repos.duty, clock)),
        duty.notice_routes(edge, escalation=escalation),
        duty.push_routes(edge, subscriptions=push, vapid_public_key=pusher.public_key),
        fhir.routes(
            edge,
            export=ExportService(
                repos.consults,
                repos.recordings,
                clock,
                notes=repos.notes,
                attachments=repos.attachments,
            ),
            public_url=settings.public_url,
            identity=fhir_identity(settings),
        ),
        invitations.routes(
            edge,
            invitations=InvitationService(repos.consults, clock, settings.invited_specialists),
            hub=live.hub,
            rooms=live.events,
            notice=InvitationPushes(pusher),
        ),
        quality.routes(
            edge,
            service=CallQualityService(
                repos.consults,
                repos.recordings,
                repos.quality,
                bucket_seconds=settings.quality_bucket_seconds,
            ),
        ),
        statistics.routes(
            edge,
            service=StatisticsService(
                repos.consults, clock, quality=repos.quality, trainings=repos.trainings
            ),
            timezone=settings.report_timezone,
            max_months=limits.max_statistics_months,
        ),
        training.routes(
            edge,
            trainings=trainings,
            viewer_urls=viewer_urls,
            max_sdp_bytes=limits.max_sdp_bytes,
            ice=settings.ice,
        ),
        broadcast.routes(broadcasts=broadcasts, viewer_urls=viewer_urls),
    ]
    app = create_app(
        ctx,
        live,
        features,
        WEB_ROOT,
        __version__,
        operator_routes=[metrics_handler(registry, settings.metrics_token)],
    )
    app[DUTY] = duty_dispatcher
    app[BROADCASTS] = broadcasts

    async def duty_scheduler(_app: web.Application) -> AsyncIterator[None]:
        duty_dispatcher.start()
        yield
        await duty_dispatcher.stop()
        await pusher.close()

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        # Recordings the previous process left unfinished (a crash) are finalized first.
        # Only folders whose writer is dead: another live process's files are left alone.
        recovered = await recover_dead_writers(
            partial_root, storage, recording_service, own=writer.path if writer else None
        )
        if recovered:
            print(f"recovered {len(recovered)} unfinished recording(s)", flush=True)
            # Their sessions were cut off: the rooms say so when people come back.
            live.rooms.mark_interrupted({r.consult_id for r in recovered})
        uploading = None
        if uploads is not None and isinstance(node, LocalMediaNode):  # else: the media nodes do
            from media.object_storage import keep_uploading

            uploading = asyncio.create_task(
                keep_uploading(uploads, uploads.bucket.config.retry_seconds)
            )
        if isinstance(node, RemoteMediaNodes):
            await node.start()
        yield
        if uploading is not None:
            uploading.cancel()
            await asyncio.gather(uploading, return_exceptions=True)
        await studio.close()
        await node.close()
        if writer is not None:
            writer.release()
        await repos.close()
        passwords.close()

    async def fan_out(_app: web.Application) -> AsyncIterator[None]:
        if fanout is not None:
            await fanout.start()
        if cluster is not None:
            await cluster.start(
                live.rooms.held,
                live.events.handle_forwarded,
                live.events.room_lost,
                live.events.guest_lost,
                user_changed=known_users.forget,
            )
            print(f"signaling node {cluster.node}", flush=True)
        yield
        if cluster is not None:
            await cluster.close()
        if fanout is not None:
            await fanout.close()

    app.cleanup_ctx.append(fan_out)
    app.cleanup_ctx.append(duty_scheduler)
    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(settled_heap)  # last: after every other start-up step
    return app


def serve(settings: Settings) -> None:
    app = build_app(settings)
    url = settings.base_url
    print(
        f"teleconsult {__version__} listening on http://{settings.host}:{settings.port} "
        f"(event loop: {settings.event_loop})",
        flush=True,
    )
    print(f"Open {url}/ in a browser (Ctrl-C stops the server).", flush=True)
    # aiohttp's run_app, but the HTTP parser's refusals are answered {code, message} too.
    serving.run(
        app,
        loop=new_loop(settings.event_loop),  # EVENT_LOOP: uvloop or asyncio
        host=settings.host,
        port=settings.port,
    )
