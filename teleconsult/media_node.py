"""`teleconsult media-node`: the relay and the recorder in a process of their own.

It opens the same database and recording directory as the signaling processes (recording rows
are written where the files are written, so a recording survives the signaling process that
asked for it), takes its writer folder (`MEDIA_NODE_ID`), recovers what a previous run of the
same id left there and what any dead writer left, then answers requests over Redis
(`media.cluster.service`) until SIGTERM or SIGINT: then it withdraws its lease, finalizes every
recording and closes every relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from media.cluster.service import MediaNodeService
from media.event_loop import new_loop
from media.node import LocalMediaNode
from media.recovery import recover_dead_writers
from media.writer_folders import claim
from rooms.calls.recording_service import RecordingService
from rooms.consults.service import utc_now
from teleconsult.bootstrap import (
    apply_media_network,
    build_recording_storage,
    build_repositories,
    relay_config,
    writer_id,
)
from teleconsult.config import Settings
from teleconsult.metrics import add_media_node, new_registry, serve_metrics


async def run(settings: Settings, stop: asyncio.Event) -> None:
    assert settings.redis_url, "checked by the command"
    node_id = writer_id(settings, "media")
    repos = build_repositories(settings)
    ledger = RecordingService(repos.consults, repos.recordings, utc_now)
    storage, uploads = build_recording_storage(settings)
    apply_media_network(settings)
    try:
        writer = await asyncio.to_thread(claim, storage.partial_dir, node_id)
    except BaseException:
        await repos.close()
        raise
    try:
        recovered = await recover_dead_writers(
            storage.partial_dir, storage, ledger, own=writer.path
        )
        if recovered:
            print(f"recovered {len(recovered)} unfinished recording(s)", flush=True)
        node = LocalMediaNode(relay_config(settings), storage, ledger, writer.path)
        service = MediaNodeService(
            node,
            node_id,
            settings.redis_url,
            address=settings.media_address or "127.0.0.1",
            port_min=settings.media_port_min,
            port_max=settings.media_port_max,
            timeout=settings.redis_timeout,
            lease_seconds=settings.media_node_lease,
        )
        await service.start()
        background: list[asyncio.Task[None]] = []
        if uploads is not None:
            from media.object_storage import keep_uploading

            background.append(
                asyncio.create_task(keep_uploading(uploads, uploads.bucket.config.retry_seconds))
            )
        metrics = None
        if settings.metrics_port:
            registry = new_registry()
            add_media_node(registry, node, uploads, node_id)
            metrics = await serve_metrics(
                registry, settings.host, settings.metrics_port, settings.metrics_token
            )
            print(f"media node metrics on http://{settings.host}:{settings.metrics_port}/metrics")
        ports = (
            f"{settings.media_port_min}-{settings.media_port_max}"
            if settings.media_port_min is not None
            else "any"
        )
        print(
            f"media node {node_id} ready: address {settings.media_address}, UDP ports {ports}",
            flush=True,
        )
        await stop.wait()
        await service.close()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if metrics is not None:
            await metrics.cleanup()
    finally:
        writer.release()
        await repos.close()


def serve_media_node(settings: Settings) -> int:
    loop = new_loop(settings.event_loop)
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(run(settings, stop))
    finally:
        loop.close()
    return 0
