"""A Redis pub/sub channel to listen on, and publishing with a time limit.

Every Redis command is bounded by `timeout`; a listener whose subscription fails subscribes
again `retry_every` seconds later, for as long as it runs. Nothing here waits on Redis without
a limit, so an unreachable Redis shows up as `RedisUnreachable` (or silence), never as a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LINK_ERRORS = (RedisError, OSError, TimeoutError)


class RedisUnreachable(Exception):
    """Redis did not take a command within the time limit (or refused it)."""


def client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
    )


async def bounded(limit: float, work: Awaitable[Any]) -> Any:
    """`work` within `limit` seconds; `RedisUnreachable` otherwise."""
    try:
        async with asyncio.timeout(limit):
            return await work
    except LINK_ERRORS as exc:
        raise RedisUnreachable(f"{type(exc).__name__}: {exc}") from None


async def discard(redis: aioredis.Redis, limit: float) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(limit):
            await redis.aclose()


async def messages(
    url: str,
    channel: str,
    limit: float,
    retry_every: float = 0.5,
    subscribed: asyncio.Event | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects published on `channel`, for ever (subscribing again after failures);
    `subscribed` is set once the first subscription stands."""
    down = False
    while True:
        redis = client(url, limit)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await bounded(limit, pubsub.subscribe(channel))
            if subscribed is not None:
                subscribed.set()
            if down:
                log.info("subscribed to %s again", channel)
                down = False
            while True:
                message = await pubsub.get_message(timeout=retry_every)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    data = json.loads(message["data"])
                except (TypeError, ValueError):
                    log.warning("ignored a message on %s that is not JSON", channel)
                    continue
                if isinstance(data, dict):
                    yield data
        except (RedisUnreachable, *LINK_ERRORS) as exc:
            if not down:
                log.warning("listening on %s failed (%s); trying again", channel, exc)
                down = True
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(limit):
                    await pubsub.aclose()
            await discard(redis, limit)
        await asyncio.sleep(retry_every)


class Publisher:
    """Publishes JSON objects, each within `timeout` seconds."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._redis = client(url, timeout)

    async def publish(self, channel: str, data: dict[str, Any]) -> int:
        """How many listeners got it; `RedisUnreachable` if Redis did not take it in time."""
        try:
            receivers: int = await bounded(
                self.timeout, self._redis.publish(channel, json.dumps(data))
            )
        except RedisUnreachable:
            # A connection whose answer timed out is out of step: start afresh next time.
            await discard(self._redis, self.timeout)
            self._redis = client(self.url, self.timeout)
            raise
        return receivers

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def close(self) -> None:
        await discard(self._redis, self.timeout)


def spawn_listener(
    url: str,
    channel: str,
    timeout: float,
    handle: Callable[[dict[str, Any]], None],
    subscribed: asyncio.Event | None = None,
) -> asyncio.Task[None]:
    """Run `handle` (in the event loop, must not block) on every message of `channel`."""

    async def listen() -> None:
        async for data in messages(url, channel, timeout, subscribed=subscribed):
            try:
                handle(data)
            except Exception:
                log.exception("handling a message on %s failed", channel)

    return asyncio.create_task(listen(), name=f"listen {channel}")
