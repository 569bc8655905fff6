"""Telling the running servers that the CLI changed a user, so none keeps it (`KnownUsers`)."""

from __future__ import annotations

import sys

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from signaling.known_users import USERS_CHANNEL, mark_users_changed
from teleconsult.config import Settings


async def tell_servers_user_changed(settings: Settings, user_id: int) -> None:
    """The servers on this machine through the stamp in DATA_DIR; with REDIS_URL, every
    signaling process through `USERS_CHANNEL`. A Redis that does not answer is reported on
    stderr (the change is saved; servers on other machines see it when their entry expires,
    within TOKEN_TTL_SECONDS, and their open connections at the next sweep)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    mark_users_changed(settings.data_dir)
    if not settings.redis_url:
        return
    redis = aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    try:
        await redis.publish(USERS_CHANNEL, str(user_id))
    except (RedisError, OSError, TimeoutError) as exc:
        print(
            f"warning: could not tell the other signaling processes through redis ({exc}); "
            "they see the change within TOKEN_TTL_SECONDS",
            file=sys.stderr,
        )
    finally:
        await redis.aclose()
