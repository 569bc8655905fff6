"""Signaling in any process (`REDIS_URL`): which process owns a live consult's room, and the
events of connections on other processes routed to it (LiveKit's model: a room lives in one
process, signal connections anywhere).

- **Room leases.** The process that opens a consult's room records itself as its owner in Redis
  (`teleconsult:room:<consult id>` → its node id) with a lease of `ROOM_LEASE_SECONDS`, renewed
  every third of it while the room is held (open or closing), and deleted when the room has
  closed. A join looks the owner up and claims the room for its own process if nobody owns it.
- **Routing.** Every process reads its inbox (`teleconsult:node:<node id>`, Redis pub/sub). A
  consult event of a connection whose consult is owned elsewhere (join, leave, disconnect,
  signal, relay signaling, p2p-failed, recording, notes) is parsed, checked and rate-limited
  where the connection is, then sent to the owner's inbox with the connection's user; the owner
  handles it with the same handler, in order per connection, and sends the ack back. What the
  room says reaches the connection through the socket.io fan-out (`signaling.fanout`), which
  crosses processes (emits, entering and leaving the consult's channel, `p2p-check` acks).
- **A dead owner.** PUBLISH answers how many processes read a channel: 0 for the inbox of a
  process that died (its Redis connections close with it), so the first event for its consult
  takes the lease over and the room opens here at once; a process that hangs without dying keeps
  its subscription, and its lease expires after `ROOM_LEASE_SECONDS`. Every process checks the
  inboxes of the processes it routes to (`PUBSUB NUMSUB`, every `WATCH_EVERY_SECONDS`; an inbox
  without reader whose process still has a named Redis connection is a subscription Redis cut,
  not a death: `CLIENT_NAME`): the
  connections whose room died are told `rejoin` (the page joins again, which opens the room
  anew), and the owner takes the connections of a dead process out of its rooms as disconnected.
- **Signals straight to the owner** (the hot path). The owner of a room with connections on
  other processes publishes the room's **roster** (who is in it, and on which process) whenever
  someone comes or goes, through the fan-out just before the `peer-joined` or `peer-left` it
  emits (`RedisFanOut.notice`: in order with it, so a process has taken the change in before
  its connections hear of it). A `signal` of such a connection to someone on the owner is then
  checked where the sender is — schema, SDP, size, rate limit, both ends in the roster —
  acknowledged there, and **delivered** to the owner in one publish: no forward to handle
  again, no ack back. Anything the roster does not vouch for (no roster yet, a sender or
  recipient not in it, a recipient on a third process) takes the forwarding path, so every
  refusal is the owner's, as before. The owner checks both ends against the room itself before
  it passes the signal on (a roster a moment old changes nothing: a signal for someone who has
  just left is dropped, as if it had arrived just before they left). Deliveries of a
  connection are handled in order with its forwarded events (one queue per connection).

Without `REDIS_URL` none of this runs: one process, rooms in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from rooms.consults.people import Role, Specialty, User
from signaling.known_users import USERS_CHANNEL

log = logging.getLogger(__name__)

Ack = dict[str, Any]

ROOM_KEY = "teleconsult:room:{}"
INBOX = "teleconsult:node:{}"
WATCH_EVERY_SECONDS = 0.5
"""How often a process checks that the processes it routes to (owners of its connections'
rooms, connections of its rooms' guests) still read their inbox."""

_LINK_ERRORS = (RedisError, OSError, TimeoutError)

CLIENT_NAME = "teleconsult-signaling-{}"
"""The name every Redis connection of a process carries (`CLIENT SETNAME`): a process whose
inbox has no reader but which still has a connection to Redis is alive (Redis may have cut its
subscription, e.g. at its pubsub output-buffer limit; it subscribes again within a second)."""

# The owner of KEYS[1], claimed for ARGV[1] (lease ARGV[2] ms) if nobody holds it; or, with
# ARGV[3] set, taken over from ARGV[3] (a process found dead).
_CLAIM = """
local owner = redis.call('get', KEYS[1])
if (not owner) or (ARGV[3] ~= '' and owner == ARGV[3]) then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
"""
# Renew ARGV[1]'s lease (ARGV[2] ms) of every room in KEYS; claim one again if it lapsed (Redis
# was unreachable meanwhile, or the room opened while its owner could not be asked); per key, in
# the order of KEYS, 0 if another holds it. One command per renewal round, not one per room:
# with 1 000 rooms held, a command and a task per room every ROOM_LEASE_SECONDS / 3 took 28 % of
# the owner's event loop in the two-process benchmark.
_RENEW_ALL = """
local renewed = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('get', key)
  if owner == ARGV[1] then
    renewed[i] = redis.call('pexpire', key, ARGV[2])
  elseif not owner then
    redis.call('set', key, ARGV[1], 'PX', ARGV[2])
    renewed[i] = 1
  else
    renewed[i] = 0
  end
end
return renewed
"""
RENEWALS_PER_COMMAND = 500
"""Rooms renewed by one script call (a script holds Redis while it runs: a few ms at most)."""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # failures are the link's (logged once per outage)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[Any, ...]
    done: asyncio.Future[Any]


class OwnerGone(Exception):
    """The room's owner does not read its inbox (it died): take the room over."""


def user_out(user: User) -> dict[str, Any]:
    data = asdict(user)
    data["role"] = user.role.value
    data["specialty"] = user.specialty.value if user.specialty else None
    return data


def user_in(data: dict[str, Any]) -> User:
    specialty = data.get("specialty")
    return User(
        **{
            **data,
            "role": Role(data["role"]),
            "specialty": Specialty(specialty) if specialty else None,
        }
    )


@dataclass(frozen=True, slots=True)
class Forwarded:
    """An event of a connection on another process, for a room owned here."""

    event: str
    sid: str
    node: str
    """The process the connection is on."""
    user: User | None
    data: Any


@dataclass(frozen=True, slots=True)
class Roster:
    """Who is in a room owned by another process, as its owner last said: connection id →
    the process it is on."""

    owner: str
    peers: dict[str, str]


Handler = Callable[[Forwarded], Awaitable[Ack]]
Delivery = Callable[[Forwarded], Awaitable[None]]
"""A signal checked where its sender is, to be passed on by the room's owner (no ack)."""
Notice = Callable[[str, str], Awaitable[None]]
"""(connection id, consult id): a connection's room or a guest's process is gone."""


class RoomCluster:
    """This process's part of the cluster: its node id, the leases of the rooms it holds, its
    inbox, the forwarded events it waits for, and the processes it watches."""

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = 2.5,
        timeout: float = 2.0,
        forward_timeout: float = 9.0,
        node: str | None = None,
    ) -> None:
        self.url = url
        self.node = node or secrets.token_hex(6)
        self.lease_ms = int(lease_seconds * 1000)
        self.timeout = timeout
        self.forward_timeout = forward_timeout
        self.inbox = INBOX.format(self.node)
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            client_name=CLIENT_NAME.format(self.node),
        )
        self._waiting: dict[str, asyncio.Future[Ack]] = {}
        self._held: Callable[[], set[str]] = set
        self._claimed: dict[str, float] = {}
        self.elsewhere: dict[str, tuple[str, str]] = {}
        """Connections of this process whose room is owned elsewhere: sid → (consult, owner)."""
        self.guests: dict[str, tuple[str, User | None]] = {}
        """Connections of other processes in rooms owned here: sid → (their process, user)."""
        self.rosters: dict[str, Roster] = {}
        """Rooms owned elsewhere with connections of this process in them: consult → roster."""
        self.delivery: Delivery | None = None
        """What the owner does with a signal delivered to it (`deliver`)."""
        self.deliveries_dropped = 0
        """Delivered signals whose sender or recipient had left the room when they arrived."""
        self._queues: dict[str, asyncio.Queue[tuple[str | None, str, Forwarded]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handler: Handler | None = None
        self._room_lost: Notice | None = None
        self._guest_lost: Notice | None = None
        self._user_changed: Callable[[int], None] | None = None
        self._subscribed = asyncio.Event()
        self._down = False
        self._outbox: asyncio.Queue[Command] = asyncio.Queue()
        """Every Redis command but the inbox subscription, sent in order on one connection,
        pipelined (redis-py's pool would open a connection per concurrent command: 100 joins
        at once ran it out, `Too many connections`)."""

    # ---- running ------------------------------------------------------------------------------

    async def start(
        self,
        held: Callable[[], set[str]],
        handler: Handler,
        room_lost: Notice,
        guest_lost: Notice,
        user_changed: Callable[[int], None] | None = None,
    ) -> None:
        """Read the inbox, renew the leases of the rooms `held()` names, watch the others; waits
        (at most the Redis timeout and a second) until the inbox is read. `user_changed` is
        told the id of every user changed elsewhere (`USERS_CHANNEL`: the CLI)."""
        self._held, self._handler = held, handler
        self._room_lost, self._guest_lost = room_lost, guest_lost
        self._user_changed = user_changed
        for work, name in (
            (self._reading(), "inbox"),
            (self._renewing(), "leases"),
            (self._watching(), "watch"),
            (self._publishing(), "publish"),
        ):
            self._spawn(work, f"room cluster: {name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout + 1):
                await self._subscribed.wait()

    def _spawn(self, work: Awaitable[Any], name: str | None = None) -> None:
        task = asyncio.ensure_future(work)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        """A task of the cluster ended: a failure is logged here with its traceback (not left
        to "Task exception was never retrieved" when the task is collected)."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "room cluster: task %s failed",
                task.get_name(),
                exc_info=task.exception(),
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*_LINK_ERRORS):
            async with asyncio.timeout(self.timeout):
                pipe = self._redis.pipeline(transaction=False)
                for consult_id in self._held() | set(self._claimed):
                    pipe.eval(_RELEASE, 1, ROOM_KEY.format(consult_id), self.node)
                await pipe.execute()
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    # ---- the link to Redis ----------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        """Redis did not answer: logged once per outage, at INFO (the fan-out's WARNING says
        it already, `signaling.fanout.RedisLink`). Meanwhile rooms stay where they are: this
        process's own rooms go on, a room owned elsewhere cannot be reached."""
        if not self._down:
            self._down = True
            log.info(
                "room cluster: redis does not answer (%s); rooms stay where they are",
                _describe(exc),
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.info("room cluster: redis answers; room leases renewed again")

    # ---- owners -------------------------------------------------------------------------------

    async def owner(self, consult_id: str, *, claim: bool, dead: str = "") -> str | None:
        """The node owning the consult's room; with `claim`, this one if nobody owns it (or
        `dead` did). None: nobody, or Redis unreachable (the caller handles it here)."""
        key = ROOM_KEY.format(consult_id)
        try:
            if not claim:
                found = await self._ask("get", key)
                return str(found) if found else None
            owner = str(await self._ask("eval", _CLAIM, 1, key, self.node, self.lease_ms, dead))
        except _LINK_ERRORS as exc:
            self._failed(exc)
            return None
        if owner == self.node:
            self._claimed[consult_id] = time.monotonic()
        return owner

    async def _renewing(self) -> None:
        every = self.lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            await self.renew_once()

    async def renew_once(self) -> None:
        """Renew the lease of every room held here (a few script calls in one round trip),
        and give back the rooms claimed for joins that opened none."""
        every = self.lease_ms / 3000
        held = sorted(self._held())
        now = time.monotonic()
        chunks = [
            held[i : i + RENEWALS_PER_COMMAND] for i in range(0, len(held), RENEWALS_PER_COMMAND)
        ]
        renewals = [
            self._run(
                "eval",
                _RENEW_ALL,
                len(chunk),
                *(ROOM_KEY.format(c) for c in chunk),
                self.node,
                self.lease_ms,
            )
            for chunk in chunks
        ]
        for consult_id, at in list(self._claimed.items()):
            if consult_id not in held and now - at > every:
                # Claimed for a join that opened no room (or a room that has closed).
                del self._claimed[consult_id]
                key = ROOM_KEY.format(consult_id)
                renewals.append(self._run("eval", _RELEASE, 1, key, self.node))
        try:
            async with asyncio.timeout(self.timeout):
                results = await asyncio.gather(*renewals, return_exceptions=True)
        except TimeoutError as exc:
            self._failed(exc)
            return
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._failed(failed[0])
        for chunk, renewed in zip(chunks, results, strict=False):
            if isinstance(renewed, BaseException):
                continue
            for consult_id, answer in zip(chunk, renewed, strict=True):
                if answer == 0:
                    log.error(
                        "the room of consult %s is held here but another process holds its "
                        "lease (this process stalled for longer than ROOM_LEASE_SECONDS?)",
                        consult_id,
                    )

    # ---- forwarding ---------------------------------------------------------------------------

    async def forward(self, owner: str, event: str, sid: str, user: User | None, data: Any) -> Ack:
        """Send the event to the room's owner and wait for its ack; `OwnerGone` if no process
        reads the owner's inbox."""
        request_id = secrets.token_hex(8)
        message = {
            "kind": "event",
            "id": request_id,
            "from": self.node,
            "event": event,
            "sid": sid,
            "user": user_out(user) if user else None,
            "data": data,
        }
        waiting: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiting
        try:
            readers = await self._publish(INBOX.format(owner), message, wait=True)
            if not readers:
                if await self._connected({owner}):
                    raise TimeoutError  # alive, its inbox being subscribed again: retry
                raise OwnerGone(owner)
            async with asyncio.timeout(self.forward_timeout):
                return await waiting
        finally:
            self._waiting.pop(request_id, None)

    async def deliver(self, owner: str, sid: str, data: Any) -> bool:
        """Deliver a signal of connection `sid`, checked here, to the room's owner (no ack);
        False if no process reads the owner's inbox (it died, or Redis cut its subscription:
        the caller takes the forwarding path, which tells the two apart)."""
        message = {"kind": "deliver", "from": self.node, "sid": sid, "data": data}
        return bool(await self._publish(INBOX.format(owner), message, wait=True))

    def roster(self, consult_id: str, peers: dict[str, str]) -> dict[str, Any]:
        """The notice that says who is in `consult_id`'s room, owned here (`noticed`)."""
        return {"kind": "roster", "owner": self.node, "consult": consult_id, "peers": peers}

    def noticed(self, notice: dict[str, Any]) -> None:
        """A notice of another process (through the fan-out, in order with its emits): a
        room's roster is kept while a connection of this process is in it."""
        if notice.get("kind") != "roster":
            return
        peers = notice["peers"]
        if self.node in peers.values():
            self.rosters[notice["consult"]] = Roster(notice["owner"], peers)
        else:
            self.rosters.pop(notice["consult"], None)

    async def _publish(self, channel: str, message: dict[str, Any], *, wait: bool) -> int:
        """Publish in the order of the calls (one connection, so that a connection's offer is
        not overtaken by its candidates); with `wait`, the number of readers of the channel."""
        if not wait:
            self._run("publish", channel, json.dumps(message)).add_done_callback(_ignore_result)
            return 0
        return int(await self._ask("publish", channel, json.dumps(message)))

    def _run(self, command: str, *args: Any) -> asyncio.Future[Any]:
        """Queue one Redis command; the future of its answer (or its error). Nothing waits on
        it but its caller: no task per command (a signal delivered is one command)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait(Command(command, args, done))
        return done

    async def _ask(self, command: str, *args: Any) -> Any:
        """One Redis command's answer within the Redis timeout (`TimeoutError`; a command
        given up on is left out of the next round trip)."""
        async with asyncio.timeout(self.timeout):
            return await self._run(command, *args)

    async def _publishing(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 512:
                batch.append(self._outbox.get_nowait())
            batch = [c for c in batch if not c.done.done()]  # given up on meanwhile
            if not batch:
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    pipe = self._redis.pipeline(transaction=False)
                    for command in batch:
                        getattr(pipe, command.name)(*command.args)
                    answers = await pipe.execute(raise_on_error=False)
                self._answered()
            except _LINK_ERRORS as exc:
                self._failed(exc)
                for command in batch:
                    if not command.done.done():
                        command.done.set_exception(TimeoutError(_describe(exc)))
                continue
            for command, answer in zip(batch, answers, strict=True):
                if command.done.done():
                    continue
                if isinstance(answer, Exception):
                    command.done.set_exception(answer)
                else:
                    command.done.set_result(answer)

    async def _reading(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.timeout):
                    await pubsub.subscribe(self.inbox, USERS_CHANNEL)
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    if message.get("channel") == USERS_CHANNEL:
                        self._user_was_changed(message["data"])
                    else:
                        delivering = self._received(json.loads(message["data"]))
                        if delivering is not None:
                            await delivering
            except _LINK_ERRORS as exc:
                self._failed(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(0.5)

    def _user_was_changed(self, data: str) -> None:
        try:
            user_id = int(data)
        except ValueError:
            log.warning("room cluster: ignored a user change naming no user id: %.40r", data)
            return
        if self._user_changed is not None:
            self._user_changed(user_id)

    def _received(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Take in one message of the inbox; a delivery that nothing of its sender waits
        before is returned to be awaited at once (no task, no queue: the hot path)."""
        kind = message.get("kind")
        if kind == "ack":
            waiting = self._waiting.get(message["id"])
            if waiting is not None and not waiting.done():
                waiting.set_result(message["ack"])
            return None
        user = message.get("user")
        forwarded = Forwarded(
            message.get("event", "signal"),
            message["sid"],
            message["from"],
            user_in(user) if user else None,
            message.get("data"),
        )
        request_id = message["id"] if kind == "event" else None  # a delivery: no ack
        # One queue per connection: its events are handled in the order they were sent.
        queue = self._queues.get(forwarded.sid)
        if queue is None and request_id is None:
            return self._delivered(forwarded)
        if queue is None:
            queue = self._queues[forwarded.sid] = asyncio.Queue()
            self._spawn(self._handling(forwarded.sid, queue))
        queue.put_nowait((request_id, message["from"], forwarded))
        return None

    async def _delivered(self, forwarded: Forwarded) -> None:
        try:
            if self.delivery is not None:
                await self.delivery(forwarded)
        except Exception:
            log.exception("a signal delivered by %s for %s failed", forwarded.node, forwarded.sid)

    async def _handling(
        self, sid: str, queue: asyncio.Queue[tuple[str | None, str, Forwarded]]
    ) -> None:
        assert self._handler is not None
        while not queue.empty():
            request_id, node, forwarded = queue.get_nowait()
            if request_id is None:
                await self._delivered(forwarded)
                continue
            try:
                ack = await self._handler(forwarded)
            except Exception:
                log.exception("forwarded event %s of %s failed", forwarded.event, sid)
                ack = {"ok": False, "error": {"code": "internal", "message": "internal error"}}
            reply = {"kind": "ack", "id": request_id, "ack": ack}
            await self._publish(INBOX.format(node), reply, wait=False)
        del self._queues[sid]

    # ---- watching the others ------------------------------------------------------------------

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_SECONDS)
            try:
                await self.watch_once()
            except Exception:
                # One failed look must not end the watch for good.
                log.exception("room cluster: a look at the other processes failed")

    async def watch_once(self) -> None:
        """One look at the processes this one routes to: those with no reader on their inbox
        and no connection to Redis are dead, and their rooms and connections follow."""
        nodes = {owner for _c, owner in self.elsewhere.values()}
        nodes |= {node for node, _u in self.guests.values()}
        if not nodes:
            return
        order = sorted(nodes)
        try:
            counts = await self._ask("pubsub_numsub", *(INBOX.format(n) for n in order))
        except _LINK_ERRORS as exc:
            self._failed(exc)
            return
        pairs = zip(order, counts, strict=True)
        dead = {node for node, (_channel, readers) in pairs if not readers}
        if dead:
            dead -= await self._connected(dead)
        if dead:
            await self._bury(dead)

    async def _connected(self, nodes: set[str]) -> set[str]:
        """Those of `nodes` that still have a connection to Redis (`CLIENT LIST`): not dead,
        whatever their inbox says. Empty if Redis does not answer or refuses the command (an
        ACL without CLIENT): then an inbox without reader is taken for a dead process."""
        try:
            clients = await self._ask("client_list")
        except _LINK_ERRORS:
            return set()
        names = {str(c.get("name", "")) for c in clients} if isinstance(clients, list) else set()
        return {node for node in nodes if CLIENT_NAME.format(node) in names}

    async def _bury(self, dead: set[str]) -> None:
        log.warning("signaling process(es) %s gone; their rooms and connections follow", dead)
        for consult_id, roster in list(self.rosters.items()):
            if roster.owner in dead:
                del self.rosters[consult_id]
        for sid, (consult_id, owner) in list(self.elsewhere.items()):
            # Telling one connection yields to the loop: another may have disconnected or
            # joined elsewhere meanwhile (it left `elsewhere`, or points to a live owner now).
            if owner in dead and self.elsewhere.get(sid) == (consult_id, owner):
                del self.elsewhere[sid]
                if self._room_lost is not None:
                    await self._room_lost(sid, consult_id)
        for sid, (node, _user) in list(self.guests.items()):
            if node in dead and sid in self.guests and self._guest_lost is not None:
                self.guests.pop(sid, None)
                await self._guest_lost(sid, "")
