"""Fan-out across signaling processes through Redis (`REDIS_URL`), made to fail soft.

python-socketio's `AsyncPubSubManager` delivers every emit to this process's own clients, then
hands it to `_publish` for the others, and reads the others' messages from `_listen`. Its own
`AsyncRedisManager` waits on Redis inside every emit (with no time limit: a hung Redis would
stall every signal and ack of every consult, even between two people on this process), logs an
ERROR line per emit while Redis is down, and waits up to a minute after Redis is back before it
listens again. `RedisFanOut` keeps the same wire format (one JSON message per emit on the
`socketio` channel) and instead:

- never makes an emit wait for Redis: messages for the other processes go through a queue
  bounded in bytes (`FANOUT_BACKLOG_BYTES`, `signaling.fanout_outbox.Outbox`) that one task
  publishes in order (everything waiting, up to `PUBLISH_BATCH_BYTES`, in one pipelined round
  trip), each round trip within `timeout` seconds;
- if the queue is full all the same (Redis answers, but too slowly), drops what does not fit,
  logs it once, remembers what was missed (`signaling.fanout_outbox.Missed`) and, once the
  queue has drained, calls `on_missed` with it: the app sends the current state of every
  consult whose news was dropped to everyone taking part (from the store);
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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from socketio.async_pubsub_manager import AsyncPubSubManager

from signaling.fanout_outbox import Missed, Outbox

log = logging.getLogger(__name__)

RedisState = Literal["ok", "unreachable"]

CHECK_EVERY_SECONDS = 1.0
"""How often the fan-out pings Redis (and how long a reader waits for a message between looks
at the link's state)."""

BACKLOG_BYTES = 8 * 1024 * 1024
"""`FANOUT_BACKLOG_BYTES`: how much may wait to be published to the other processes; beyond it
(Redis answers but too slowly) what does not fit is dropped, and made good once the queue has
drained (`on_missed`). Until 2026-12 the bound was 1 000 messages and 256 went per round trip:
the 2 000-client benchmark filled it once (bench/signaling.py reports the high-water mark).
8 MiB holds every burst of joins measured (a few hundred KiB) and about 1.6 s of the
benchmark's flood (1 000 signals of 5 KB a second) behind a stalled process; more would only
deliver older signals later, and Redis cuts a subscriber that falls 8 MB behind for a minute
(or 32 MB at once) by default anyway (`client-output-buffer-limit pubsub`)."""

PUBLISH_BATCH_BYTES = 1024 * 1024
"""At most this much of what waits is published in one round trip (a pipeline): everything
waiting, as a rule (a burst of joins is a few hundred KiB); the cap keeps one round trip well
inside `REDIS_TIMEOUT_SECONDS` on a busy machine."""

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
        backlog_bytes: int = BACKLOG_BYTES,
        channel: str = "socketio",
    ) -> None:
        super().__init__(channel=channel)
        self.url = url
        self.timeout = timeout
        self.check_every = check_every
        self.link = RedisLink()
        self.outbox = Outbox(backlog_bytes)
        self._waiting = asyncio.Event()
        """Set while something waits in `outbox` (the publisher waits on it)."""
        self.missed = Missed()
        """What the other processes missed since the outbox last drained after being full."""
        self.full_drops = 0
        """Messages dropped because the outbox was full (since the start)."""
        self.dropped_total = 0
        """Messages dropped, the outbox full or Redis unreachable (since the start)."""
        self.consults_resent = 0
        """Consults whose state was sent again after the outbox drained (since the start)."""
        self._behind = False
        self._making_good: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._checked = asyncio.Event()
        self._own_tail = json.dumps({"host_id": self.host_id})[1:].encode()
        """How every message this process publishes but a callback ends (`"host_id": …}`)."""
        self.on_notice: Callable[[dict[str, Any]], None] | None = None
        """Called with every notice of another process (`notice`), in order with its emits."""
        self.on_missed: Callable[[Missed], Awaitable[None]] | None = None
        """Called once the outbox has drained after being full, with what was dropped meanwhile
        (the app sends the consults' current state again, `ConsultHub.state_resent`)."""

    def notice(self, data: dict[str, Any]) -> None:
        """Tell the other processes `data`, in order with this process's emits (dropped like
        them while Redis is unreachable or the queue is full)."""
        self._queue({"method": NOTICE, "host_id": self.host_id, "data": data})

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
        tasks = [*self._tasks, *self._making_good]
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
        self._queue(data)

    def _drop(self, count: int) -> None:
        self.link.dropped += count
        self.dropped_total += count

    def _queue(self, message: dict[str, Any]) -> None:
        if not self.link.up:
            self._drop(1)  # the outage's rule: dropped, nothing stale afterwards
            return
        if self.outbox.put(self.json.dumps(message).encode()):
            self._waiting.set()
            return
        self._drop(1)
        self.full_drops += 1
        self.missed.note(message)
        if not self._behind:
            self._behind = True
            log.warning(
                "redis fan-out falls behind (%d messages, %d bytes waiting); messages to other "
                "signaling processes are dropped until it catches up, then the state of the "
                "consults concerned is sent again",
                len(self.outbox),
                self.outbox.waiting_bytes,
            )

    def _drop_waiting(self) -> None:
        self._drop(self.outbox.clear())
        self._waiting.clear()

    def _caught_up(self) -> None:
        """The outbox has drained after being full: log it and make good what was missed."""
        self._behind = False
        missed = self.missed.take()
        log.info(
            "redis fan-out caught up (high-water mark %d messages, %d bytes); dropped meanwhile: "
            "%s; the state of %d consult(s) is sent again; %d live room(s) missed room "
            "events: %s",
            self.outbox.high_water_messages,
            self.outbox.high_water_bytes,
            ", ".join(f"{n} {kind}" for kind, n in sorted(missed.by_kind.items())) or "nothing",
            len(missed.consults),
            len(missed.rooms),
            ", ".join(sorted(missed.rooms)[:5]) + (" …" if len(missed.rooms) > 5 else ""),
        )
        self.consults_resent += len(missed.consults)
        if self.on_missed is not None and missed:
            # Its own task: reading the consults from the store must not hold up publishing.
            task = asyncio.create_task(self._make_good(self.on_missed, missed))
            self._making_good.add(task)
            task.add_done_callback(self._making_good.discard)

    @staticmethod
    async def _make_good(on_missed: Callable[[Missed], Awaitable[None]], missed: Missed) -> None:
        try:
            await on_missed(missed)
        except Exception:
            log.exception("what the other processes missed could not be made good")

    async def _publishing(self) -> None:
        client = self._client()
        try:
            while True:
                # What waits is published in one round trip (a pipeline, in order): one message
                # per round trip held two processes at about 100 messages a second on a busy
                # machine (bench/signaling.py --servers cluster); at most 256 per round trip let
                # a burst of 2 000 clients fill a 1 000-message queue.
                await self._waiting.wait()
                batch = self.outbox.take(PUBLISH_BATCH_BYTES)
                if not self.outbox:
                    self._waiting.clear()
                if not batch:
                    continue
                if not self.link.up:
                    self._drop(len(batch))
                    continue
                try:
                    async with asyncio.timeout(self.timeout):
                        pipe = client.pipeline(transaction=False)
                        for raw in batch:
                            pipe.publish(self.channel, raw)
                        await pipe.execute()
                except _LINK_ERRORS as exc:
                    self.link.failed(_describe(exc))
                    self._drop(len(batch))
                    self._drop_waiting()
                    await self._discard(client)
                    client = self._client()
                if self._behind and not self.outbox and self.link.up:
                    self._caught_up()  # (after an outage: at the first publish that works)
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
                    if self._behind and not self.outbox:
                        self._caught_up()  # drained by an outage that is over now
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
