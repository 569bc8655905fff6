"""A `signal` between participants on two signaling processes (`REDIS_URL`), checked where its
sender is and delivered straight to the room's owner (`signaling.cluster`, "Signals straight to
the owner"): the cluster refuses what one process refuses, with the same codes; signals arrive
in the order sent, both ways; a signal to the owner costs one Redis publish, not a forward and
an ack.

Two real `teleconsult serve` processes on one data directory and a real redis-server, shared
by the module (~10 s to start); every test books its own consult."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from redis import asyncio as aioredis

from tests.support.peer import eventually
from tests.support.redis import RedisServer
from tests.support.server import RunningServer

SIGNALS_PER_SECOND = 100
MAX_SDP_BYTES = 32 * 1024


@dataclass
class Processes:
    owner: RunningServer
    other: RunningServer
    redis: RedisServer


@pytest.fixture(scope="module")
def processes() -> Iterator[Processes]:
    with RedisServer() as redis:
        env = {"REDIS_URL": redis.url, "SIGNALS_PER_SECOND": str(SIGNALS_PER_SECOND)}
        owner = RunningServer(env_overrides=env)
        owner.start()
        other = RunningServer(env_overrides=env, data_dir=owner.data_dir)
        try:
            other.launch()
            yield Processes(owner, other, redis)
        finally:
            other.stop()
            owner.stop()
            owner.cleanup()


@dataclass
class Client:
    """A raw socket.io client that records what it is sent."""

    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    signals: list[dict[str, Any]] = field(default_factory=list)
    left: list[dict[str, Any]] = field(default_factory=list)
    peer_id: str = ""

    async def connect(self, server: RunningServer, username: str) -> Client:
        async def on_signal(data: dict[str, Any]) -> None:
            self.signals.append(data)

        async def on_left(data: dict[str, Any]) -> None:
            self.left.append(data)

        self.sio.on("signal", on_signal)
        self.sio.on("peer-left", on_left)
        await self.sio.connect(
            server.url,
            auth={"token": server.token(username)},
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, payload, timeout=10)
        return reply

    async def join(self, consult_id: str) -> None:
        reply = await self.call("join", {"consult_id": consult_id})
        assert reply["ok"], reply
        self.peer_id = reply["peer_id"]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@contextlib.asynccontextmanager
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    try:
        yield made
    finally:
        for client in made:
            await client.close()


async def client(made: list[Client], server: RunningServer, username: str) -> Client:
    c = await Client().connect(server, username)
    made.append(c)
    return c


async def joined_across(
    made: list[Client], processes: Processes, consult_id: str
) -> tuple[Client, Client]:
    """The exam room on the room's owner and the specialist on the other process, both in."""
    a = await client(made, processes.owner, "doctor.a")
    await a.join(consult_id)
    b = await client(made, processes.other, "obstetrician")
    await b.join(consult_id)
    return a, b


class InboxSpy:
    """What crosses Redis: every message to a process's inbox, by kind (and event)."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.kinds: Counter[str] = Counter()
        self.rosters = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InboxSpy:
        await self.pubsub.psubscribe("teleconsult:node:*")
        await self.pubsub.subscribe("socketio")
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message.get("type") not in ("message", "pmessage"):
                continue
            data = json.loads(message["data"])
            if message.get("channel") == "socketio":
                notice = data.get("data") if data.get("method") == "teleconsult-notice" else None
                self.rosters += 1 if notice and notice.get("kind") == "roster" else 0
                continue
            kind = data.get("kind", "?")
            self.kinds[f"{kind} {data['event']}" if kind == "event" else kind] += 1

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.pubsub.aclose()
        await self.redis.aclose()


def candidate(consult_id: str, to: str, n: int) -> dict[str, Any]:
    line = f"candidate:{n} 1 udp 2122260223 127.0.0.1 {40000 + n} typ host"
    return {"consult_id": consult_id, "to": to, "candidate": {"candidate": line, "sdpMid": "0"}}


def offer(consult_id: str, to: str, sdp: str) -> dict[str, Any]:
    return {"consult_id": consult_id, "to": to, "description": {"type": "offer", "sdp": sdp}}


SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


def refusal_codes(replies: list[dict[str, Any]]) -> list[str]:
    return [r["error"]["code"] if not r.get("ok") else "ok" for r in replies]


async def bad_signals(sender: Client, stranger: Client, consult_id: str, to: str) -> list[str]:
    """The refusals one sender meets for each kind of bad signal to `to`."""
    replies = [
        await stranger.call("signal", candidate(consult_id, to, 1)),  # not in the consult
        await sender.call("signal", candidate(consult_id, "nobody", 1)),
        await sender.call("signal", candidate(consult_id, sender.peer_id, 1)),  # to itself
        await sender.call("signal", offer(consult_id, to, SDP + "a=x:" + "y" * MAX_SDP_BYTES)),
        await sender.call("signal", {**candidate(consult_id, to, 1), "pad": "z" * 70_000}),
        await sender.call("signal", offer(consult_id, to, "hello")),
        await sender.call(
            "signal", {**candidate(consult_id, to, 1), "end_of_candidates": True}
        ),  # two of description | candidate | end_of_candidates
        await sender.call("signal", {**candidate(consult_id, to, 1), "to": 7}),
    ]
    return refusal_codes(replies)


EXPECTED = [
    "not_in_consult",
    "unknown_peer",
    "unknown_peer",
    "sdp_too_large",
    "message_too_large",
    "invalid_sdp",
    "invalid_payload",
    "invalid_payload",
]


async def test_the_cluster_refuses_the_signals_one_process_refuses_with_the_same_codes(
    processes: Processes,
) -> None:
    owner, other = processes.owner, processes.other
    across, alone = owner.book()["id"], owner.book()["id"]
    async with clients() as made:
        a = await client(made, owner, "doctor.a")
        await a.join(across)
        b = await client(made, other, "obstetrician")  # on the other process
        await b.join(across)
        stranger_there = await client(made, other, "obstetrician")  # not joined
        a1 = await client(made, owner, "doctor.a")
        await a1.join(alone)
        b1 = await client(made, owner, "obstetrician")  # both on one process
        await b1.join(alone)
        stranger_here = await client(made, owner, "obstetrician")

        assert await b.call("signal", candidate(across, a.peer_id, 0)) == {"ok": True}
        one_process = await bad_signals(b1, stranger_here, alone, a1.peer_id)
        two_processes = await bad_signals(b, stranger_there, across, a.peer_id)
        assert one_process == EXPECTED
        assert two_processes == one_process
        # ... and from the owner's side to the other process.
        assert await bad_signals(a, stranger_here, across, b.peer_id) == EXPECTED
        await eventually(lambda: len(a.signals) == 1, within=10)
        assert b.signals == [] and a1.signals == [] and b1.signals == []


async def test_signals_across_processes_arrive_in_the_order_sent_and_cost_one_publish(
    processes: Processes,
) -> None:
    owner = processes.owner
    consult_id = owner.book()["id"]
    sent = 60
    async with InboxSpy(processes.redis.url) as spy, clients() as made:
        a, b = await joined_across(made, processes, consult_id)
        await eventually(lambda: spy.rosters >= 1, within=10)  # who is in the room
        assert await b.call("signal", candidate(consult_id, a.peer_id, 0)) == {"ok": True}
        await eventually(lambda: len(a.signals) == 1, within=10)
        before = Counter(spy.kinds)

        acks = await asyncio.gather(
            *(b.call("signal", candidate(consult_id, a.peer_id, n)) for n in range(1, sent + 1)),
            *(a.call("signal", candidate(consult_id, b.peer_id, n)) for n in range(1, sent + 1)),
        )
        assert all(ack == {"ok": True} for ack in acks), [a for a in acks if not a.get("ok")]
        await eventually(lambda: len(a.signals) == sent + 1 and len(b.signals) == sent, 10)
        # Counted now: leaving the block disconnects B, whose `disconnect` (and its ack) crosses
        # Redis to the owner too, and is not part of what a signal costs.
        crossed = spy.kinds - before

    def numbers(signals: list[dict[str, Any]]) -> list[int]:
        return [int(s["candidate"]["candidate"].split()[0].split(":")[1]) for s in signals]

    assert numbers(a.signals) == list(range(sent + 1))
    assert numbers(b.signals) == list(range(1, sent + 1))
    assert {s["from"] for s in a.signals} == {b.peer_id}
    assert {s["from"] for s in b.signals} == {a.peer_id}
    # B → A: one delivery each, no forwarded `signal` event and no ack back through Redis.
    assert crossed["deliver"] == sent, crossed
    assert crossed["event signal"] == 0 and crossed["ack"] == 0, crossed


async def test_after_a_peer_left_the_other_process_refuses_signals_to_it(
    processes: Processes,
) -> None:
    owner = processes.owner
    consult_id = owner.book()["id"]
    async with clients() as made:
        a, b = await joined_across(made, processes, consult_id)
        assert await b.call("signal", candidate(consult_id, a.peer_id, 1)) == {"ok": True}
        assert await a.call("leave", {"consult_id": consult_id}) == {"ok": True}
        await eventually(lambda: len(b.left) == 1, within=10)
        refused = await b.call("signal", candidate(consult_id, a.peer_id, 2))
        assert refusal_codes([refused]) == ["unknown_peer"]
        assert await b.call("leave", {"consult_id": consult_id}) == {"ok": True}
        refused = await b.call("signal", candidate(consult_id, a.peer_id, 3))
        assert refusal_codes([refused]) == ["not_in_consult"]
        assert len(a.signals) == 1


async def test_the_rate_limit_holds_on_the_senders_process(processes: Processes) -> None:
    owner = processes.owner
    consult_id = owner.book()["id"]
    async with clients() as made:
        a, b = await joined_across(made, processes, consult_id)
        burst = SIGNALS_PER_SECOND + 40
        acks = await asyncio.gather(
            *(b.call("signal", candidate(consult_id, a.peer_id, n)) for n in range(burst))
        )
        codes = Counter(refusal_codes(acks))
        assert set(codes) == {"ok", "rate_limited"}, codes
        assert codes["ok"] <= SIGNALS_PER_SECOND, codes
        await eventually(lambda: len(a.signals) == codes["ok"], within=10)


async def test_a_signal_that_redis_does_not_carry_in_time_is_answered_busy(
    processes: Processes,
) -> None:
    """Redis hung: the delivery to the owner is not confirmed within REDIS_TIMEOUT_SECONDS, and
    the sender is told `busy` (retry), as a forwarded event is, not `internal`. (Last in the
    module: it stops the shared redis-server for a moment.)"""
    owner = processes.owner
    consult_id = owner.book()["id"]
    async with InboxSpy(processes.redis.url) as spy, clients() as made:
        a, b = await joined_across(made, processes, consult_id)
        await eventually(lambda: spy.rosters >= 1, within=10)
        assert await b.call("signal", candidate(consult_id, a.peer_id, 1)) == {"ok": True}
        await eventually(lambda: len(a.signals) == 1, within=10)
        processes.redis.hang()
        try:
            refused = await b.call("signal", candidate(consult_id, a.peer_id, 2))
        finally:
            processes.redis.resume()
        assert refusal_codes([refused]) == ["busy"], refused
