"""`/metrics`: the process's Prometheus registry, served on the signaling app or on a port of
its own (a media node process: `serve_metrics`).

Protection (docs/deployment.md): with `METRICS_TOKEN` set, a scrape must send
`Authorization: Bearer <METRICS_TOKEN>`; without it, only loopback clients are answered (a
Prometheus on the same machine, or an exporter sidecar). Refusals are `{code, message}`.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from media.metrics import MediaNodeCollector

if TYPE_CHECKING:
    from media.node import LocalMediaNode
    from media.object_storage import RecordingUploads

METRICS_PATH = "/metrics"


def new_registry() -> CollectorRegistry:
    """A registry of this process's own (not prometheus_client's global one), with the
    process figures (CPU seconds, resident memory, open files: the node's load), Python's
    version and its garbage collections."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def add_media_node(
    registry: CollectorRegistry,
    node: LocalMediaNode,
    uploads: RecordingUploads | None = None,
    node_name: str = "",
) -> None:
    """Show a media node's figures (relay, recorder, uploads) in `registry`, labelled
    `node=<node_name>`: what the embedded server does, and what a media node process does before
    `serve_metrics`. Its upload outcomes are counted too."""
    if uploads is not None:
        uploads.listeners.append(node.recording_counts.upload)
    registry.register(MediaNodeCollector(node, uploads, node_name))


def _refusal(code: str, message: str, status: int) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


def _loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def metrics_handler(registry: CollectorRegistry, token: str) -> web.RouteDef:
    """`GET /metrics` of `registry`, guarded by `token` (empty: loopback clients only)."""

    async def metrics(request: web.Request) -> web.Response:
        if token:
            sent = request.headers.get("Authorization", "")
            if not sent:
                return _refusal("token_missing", "send Authorization: Bearer <METRICS_TOKEN>", 401)
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return _refusal("token_invalid", "not the METRICS_TOKEN", 401)
        elif not _loopback(request.remote):
            return _refusal(
                "forbidden",
                "/metrics answers loopback clients only; set METRICS_TOKEN to scrape it "
                "from elsewhere",
                403,
            )
        # Collected on the event loop: the collectors read live state (rooms, relays) that
        # only the loop changes. A scrape reads sums; it costs well under a millisecond.
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return web.get(METRICS_PATH, metrics)


async def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, token: str = ""
) -> web.AppRunner:
    """Serve `/metrics` alone on `host:port` (a media node, or any process without the
    signaling app); stop it with `await runner.cleanup()`."""
    app = web.Application()
    app.router.add_routes([metrics_handler(registry, token)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
