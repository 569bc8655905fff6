"""Fan-out across signaling processes through Redis (`REDIS_URL`), made to fail soft.

python-socketio's `AsyncPubSubManager` delivers every emit to this process's own clients, then
hands it to `_publish` for the others, and reads the others' messages from `_listen`. Its own
`AsyncRedisManager` waits on Redis inside every emit (with no time limit: a hung Redis would
stall every signal and ack of every consult, even between two people on this process), logs an
ERROR line per emit while Redis is down, and waits up to a minute after Redis is back before it
listens again. `RedisFanOut` keeps the same wire format (one JSON message per emit on the
`socketio` channel) and instead:

- never makes an emit wait for Redis: messages for the other processes go through a bounded
  queue that one task publishes in order (what waits goes in one pipelined round trip), each
  round trip within `timeout` seconds;
- watches Redis (a PING every `CHECK_EVERY_SECONDS`, each within `timeout`); while it is
  unreachable, messages for the other processes are dropped (counted), not queued, so nothing
  stale arrives after the outage; what this process's own clients send each other is unaffected;
- logs each outage once (WARNING) when it starts and once (INFO) when it ends (`RedisLink`), and
  `/healthz` answers 503 `redis: unreachable` meanwhile;
- subscribes again within about a second of Redis answering again (after any outage, so a
  subscription that outlived a hung Redis is replaced by a fresh one);
- carries the cluster's own **notices** (`notice()`: a room's roster, `signaling.cluster`) in
  order with the emits, so that a process has taken in who is in a room before it passes on the
  `peer-joined` or `peer-left` that the room's owner emitted after the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from socketio.async_pubsub_manager import AsyncPubSubManager

log = logging.getLogger(__name__)

RedisState = Literal["ok", "unreachable"]

CHECK_EVERY_SECONDS = 1.0
"""How often the fan-out pings Redis (and how long a reader waits for a message between looks
at the link's state)."""

BACKLOG = 1000
"""Messages for the other processes that may wait to be published; beyond it (Redis answers but
too slowly) further messages are dropped until the queue empties."""

PUBLISH_BATCH = 256
"""At most this many waiting messages are published in one round trip (a pipeline)."""

_LINK_ERRORS = (RedisError, OSError, TimeoutError)
"""What an unreachable, refusing or hung Redis raises (a time limit is `TimeoutError`)."""

NOTICE = "teleconsult-notice"
"""The `method` of a cluster notice on the fan-out channel (python-socketio ignores methods it
does not know; this process reads them before python-socketio does)."""
_NOTICE_PREFIX = json.dumps({"method": NOTICE})[:-1].encode()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class RedisLink:
    """Whether Redis answered when last asked. An outage is logged once when it starts (WARNING)
    and once when Redis answers again (INFO, with the number of messages dropped meanwhile)."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.reason = ""
        self.outages = 0
        """Outages since the start; a reader subscribed before the last one subscribes again."""
        self.dropped = 0
        """Messages for the other processes dropped during the current (or last) outage."""

    @property
    def up(self) -> bool:
        return self.down_since is None

    @property
    def state(self) -> RedisState:
        return "ok" if self.up else "unreachable"

    def failed(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.reason = reason
            self.outages += 1
            self.dropped = 0
            log.warning(
                "redis unreachable (%s); messages to other signaling processes are dropped "
                "until it answers again (this process's own consults go on)",
                reason,
            )

    def answered(self) -> None:
        if self.down_since is not None:
            log.info(
                "redis answers again after %.1f s unreachable; %d message(s) to other "
                "signaling processes were dropped",
                time.monotonic() - self.down_since,
                self.dropped,
            )
            self.down_since = None
            self.reason = ""


class RedisFanOut(AsyncPubSubManager):  # type: ignore[misc]
    """python-socketio's client manager over Redis pub/sub that never lets Redis stall an emit
    (see the module's text). `timeout` (`REDIS_TIMEOUT_SECONDS`) bounds every Redis command;
    `start()` and `close()` run the publisher and the watcher with the app."""

    name = "redis-fanout"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        check_every: float = CHECK_EVERY_SECONDS,
        backlog: int = BACKLOG,
        channel: str = "socketio",
    ) -> None:
        super().__init__(channel=channel)
        self.url = url
        self.timeout = timeout
        self.check_every = check_every
        self.link = RedisLink()
        self._outbox: asyncio.Queue[Any] = asyncio.Queue(backlog)
        self._behind = False
        self._tasks: list[asyncio.Task[None]] = []
        self._checked = asyncio.Event()
        self._own_tail = json.dumps({"host_id": self.host_id})[1:].encode()
        """How every message this process publishes but a callback ends (`"host_id": …}`)."""
        self.on_notice: Callable[[dict[str, Any]], None] | None = None
        """Called with every notice of another process (`notice`), in order with its emits."""

    def notice(self, data: dict[str, Any]) -> None:
        """Tell the other processes `data`, in order with this process's emits (dropped like
        them while Redis is unreachable or the queue is full)."""
        message = {"method": NOTICE, "host_id": self.host_id, "data": data}
        if not self.link.up:
            self.link.dropped += 1
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.link.dropped += 1

    def _noticed(self, raw: bytes | str) -> bool:
        """Take in `raw` if it is a notice (of another process), or pass over this process's
        own emits (python-socketio decodes and then ignores them: a 5 KB `signal` to another
        process's connection cost the sender a JSON decode); False: python-socketio's."""
        if isinstance(raw, str):
            raw = raw.encode()
        if raw.endswith(self._own_tail):  # an emit, enter/leave or disconnect of this process
            return True  # (a callback names the process it goes to, never last: not skipped)
        if not raw.startswith(_NOTICE_PREFIX):
            return False
        try:
            message = json.loads(raw)
        except ValueError:
            return True
        if message.get("host_id") != self.host_id and self.on_notice is not None:
            try:
                self.on_notice(message["data"])
            except Exception:
                log.exception("a cluster notice could not be taken in")
        return True

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )

    async def _discard(self, client: aioredis.Redis) -> None:
        """Close `client`'s connections (a connection whose answer timed out is out of step)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await client.aclose()

    # ---- running with the app ----------------------------------------------------------------

    async def start(self) -> None:
        """Start publishing and watching, and wait (at most `timeout` and a second) for the first
        look at Redis, so `/healthz` is right from the first request."""
        self._start_tasks()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout + 1):
                await self._checked.wait()

    def _start_tasks(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._publishing(), name="redis fan-out: publish"),
                asyncio.create_task(self._watching(), name="redis fan-out: watch"),
            ]

    def initialize(self) -> None:
        # python-socketio calls this at the first connection; it starts the reader (`_listen`).
        super().initialize()
        self._start_tasks()

    async def close(self) -> None:
        tasks = list(self._tasks)
        reader = getattr(self, "thread", None)
        if isinstance(reader, asyncio.Future):
            tasks.append(reader)  # type: ignore[arg-type]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    # ---- to the other processes --------------------------------------------------------------

    async def _publish(self, data: Any) -> None:
        """Queue `data` for the other processes without waiting on Redis; while Redis is
        unreachable, or the queue is full, drop it."""
        if not self.link.up:
            self.link.dropped += 1
            return
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:
            self.link.dropped += 1
            if not self._behind:
                self._behind = True
                log.warning(
                    "redis fan-out falls behind (%d messages waiting); messages to other "
                    "signaling processes are dropped until it catches up",
                    self._outbox.qsize(),
                )

    def _drop_waiting(self) -> None:
        while not self._outbox.empty():
            self._outbox.get_nowait()
            self.link.dropped += 1

    async def _publishing(self) -> None:
        client = self._client()
        try:
            while True:
                # What waits is published in one round trip (a pipeline, in order): one message
                # per round trip held two processes at about 100 messages a second on a busy
                # machine (bench/signaling.py --servers cluster).
                batch = [await self._outbox.get()]
                while not self._outbox.empty() and len(batch) < PUBLISH_BATCH:
                    batch.append(self._outbox.get_nowait())
                if not self.link.up:
                    self.link.dropped += len(batch)
                    continue
                try:
                    async with asyncio.timeout(self.timeout):
                        pipe = client.pipeline(transaction=False)
                        for data in batch:
                            pipe.publish(self.channel, self.json.dumps(data))
                        await pipe.execute()
                except _LINK_ERRORS as exc:
                    self.link.failed(_describe(exc))
                    self.link.dropped += len(batch)
                    self._drop_waiting()
                    await self._discard(client)
                    client = self._client()
                if self._behind and self._outbox.empty():
                    self._behind = False
                    log.info("redis fan-out caught up")
        finally:
            await self._discard(client)

    async def _watching(self) -> None:
        client = self._client()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.timeout):
                        await client.ping()
                except _LINK_ERRORS as exc:
                    self.link.failed(_describe(exc))
                    await self._discard(client)
                    client = self._client()
                else:
                    self.link.answered()
                self._checked.set()
                await asyncio.sleep(self.check_every)
        finally:
            await self._discard(client)

    # ---- from the other processes ------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[Any]:
        while True:
            try:
                async for data in self._subscription():
                    yield data
            except _LINK_ERRORS as exc:
                self.link.failed(_describe(exc))
            await asyncio.sleep(self.check_every)

    async def _subscription(self) -> AsyncIterator[Any]:
        """The messages of one subscription, until it fails or an outage has come and gone since
        it was made (then the caller subscribes afresh)."""
        client = self._client()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(self.timeout):
                await pubsub.subscribe(self.channel)
            outages = self.link.outages
            while not (self.link.up and self.link.outages != outages):
                message = await pubsub.get_message(timeout=self.check_every)
                if (
                    message is not None
                    and message.get("type") == "message"
                    and not self._noticed(message["data"])
                ):
                    yield message["data"]
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await pubsub.aclose()
            await self._discard(client)
