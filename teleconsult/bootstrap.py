"""Wires settings, storage, domain and edge into one running application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import socketio
from aiohttp import web

import web_client
from media.network import announce_only
from rooms.service import ConsultService
from rooms.sql.store import SqlConsultStore, create_engine
from signaling.app import create_app
from signaling.auth import TokenIssuer
from signaling.context import Signaling
from teleconsult import __version__
from teleconsult.config import Settings, resolved_jwt_secret

log = logging.getLogger("teleconsult")

WEB_ROOT = Path(web_client.__file__).resolve().parent


def build_store(settings: Settings) -> SqlConsultStore:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqlConsultStore(create_engine(settings.database_url))


def build_tokens(settings: Settings) -> TokenIssuer:
    return TokenIssuer(resolved_jwt_secret(settings), settings.jwt_audience, settings.token_ttl)


def build_app(settings: Settings) -> web.Application:
    store = build_store(settings)
    ctx = Signaling(
        service=ConsultService(store),
        tokens=build_tokens(settings),
        limits=settings.limits,
        ice=settings.ice,
    )
    manager = socketio.AsyncRedisManager(settings.redis_url) if settings.redis_url else None
    if settings.media_address:
        announce_only([settings.media_address])
    app = create_app(ctx, WEB_ROOT, __version__, client_manager=manager)

    async def close_store(_app: web.Application) -> AsyncIterator[None]:
        yield
        await store.close()

    app.cleanup_ctx.append(close_store)
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
