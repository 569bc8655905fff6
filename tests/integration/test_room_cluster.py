"""`signaling.cluster.RoomCluster` against a real redis-server: room leases, events routed to a
room's owner in order, and what happens when the owner dies or hangs. (The whole path through
two `teleconsult serve` processes and haproxy: test_signaling_anywhere.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis import asyncio as aioredis

from rooms.consults.people import Role, Specialty, User
from signaling.cluster import (
    Forwarded,
    OwnerGone,
    RoomCluster,
    user_in,
    user_out,
)
from tests.support.peer import eventually
from tests.support.redis import RedisServer

SPECIALIST = User(7, "obstetrician", "产科专家", Role.SPECIALIST, 1, Specialty.OBSTETRICS)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


class Node:
    """One process's cluster part, with a handler that records what reached it."""

    def __init__(self, url: str, lease: float = 2.5) -> None:
        self.cluster = RoomCluster(url, lease_seconds=lease, timeout=1.0)
        self.rooms: set[str] = set()
        self.handled: list[Forwarded] = []
        self.rooms_lost: list[tuple[str, str]] = []
        self.guests_lost: list[str] = []

    async def start(self) -> Node:
        await self.cluster.start(self.held, self.handle, self.room_lost, self.guest_lost)
        return self

    def held(self) -> set[str]:
        return set(self.rooms)

    async def handle(self, forwarded: Forwarded) -> dict[str, Any]:
        self.handled.append(forwarded)
        if forwarded.event == "slow":
            await asyncio.sleep(0.05)
        return {"ok": True, "n": forwarded.data["n"], "by": self.cluster.node}

    async def room_lost(self, sid: str, consult_id: str) -> None:
        self.rooms_lost.append((sid, consult_id))

    async def guest_lost(self, sid: str, _consult_id: str) -> None:
        self.guests_lost.append(sid)


@pytest.fixture
async def nodes(redis: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    a, b = await Node(redis.url).start(), await Node(redis.url).start()
    yield a, b
    await a.cluster.close()
    await b.cluster.close()


def test_a_user_crosses_the_processes_unchanged() -> None:
    assert user_in(user_out(SPECIALIST)) == SPECIALIST


async def test_the_first_join_claims_the_room_and_the_others_find_its_owner(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    assert await a.cluster.owner("c1", claim=True) == a.cluster.node
    a.rooms.add("c1")
    assert await b.cluster.owner("c1", claim=True) == a.cluster.node
    assert await b.cluster.owner("c1", claim=False) == a.cluster.node
    assert await b.cluster.owner("nobody-here", claim=False) is None


async def test_events_routed_to_the_owner_are_handled_in_the_order_sent_and_acked(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    owner = a.cluster.node
    acks = await asyncio.gather(
        *(b.cluster.forward(owner, "slow", "sid-1", SPECIALIST, {"n": n}) for n in range(30))
    )
    assert [ack["n"] for ack in acks] == list(range(30))
    assert {ack["by"] for ack in acks} == {a.cluster.node}
    assert [f.data["n"] for f in a.handled] == list(range(30))
    assert {(f.sid, f.node, f.user) for f in a.handled} == {("sid-1", b.cluster.node, SPECIALIST)}


async def test_an_owner_that_died_is_known_at_once_and_its_room_taken_over(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    await a.cluster.owner("c1", claim=True)
    a.rooms.add("c1")
    b.cluster.elsewhere["sid-b"] = ("c1", a.cluster.node)
    dead = a.cluster.node
    # The way a SIGKILL ends it: its tasks (and the inbox subscription) stop, nothing released.
    for task in list(a.cluster._tasks):
        task.cancel()
    await asyncio.gather(*a.cluster._tasks, return_exceptions=True)
    await a.cluster._redis.aclose()

    with pytest.raises(OwnerGone):
        await b.cluster.forward(dead, "join", "sid-b", SPECIALIST, {"n": 1})
    # Its connection on the surviving process is told to join again.
    await eventually(lambda: b.rooms_lost == [("sid-b", "c1")], within=5)
    assert await b.cluster.owner("c1", claim=True) == dead  # its lease is still running
    assert await b.cluster.owner("c1", claim=True, dead=dead) == b.cluster.node


async def test_an_owner_whose_subscription_redis_cut_is_not_taken_for_dead(
    nodes: tuple[Node, Node], redis: RedisServer
) -> None:
    a, b = nodes
    await a.cluster.owner("c1", claim=True)
    a.rooms.add("c1")
    b.cluster.elsewhere["sid-b"] = ("c1", a.cluster.node)
    # What Redis does to a subscriber that falls behind (client-output-buffer-limit pubsub):
    # it closes that connection; the process lives on and subscribes again half a second later.
    admin = aioredis.Redis.from_url(redis.url)
    try:
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        assert (await admin.pubsub_numsub(a.cluster.inbox))[0][1] == 0  # nobody reads it now
        await b.cluster.watch_once()
        assert b.rooms_lost == [], "a live process was taken for dead"
        with pytest.raises(TimeoutError):  # the caller answers `busy`: retry, not OwnerGone
            await b.cluster.forward(a.cluster.node, "join", "sid-b", SPECIALIST, {"n": 1})
    finally:
        await admin.aclose()
    acks: list[Any] = []

    async def routed_again() -> None:
        while True:
            try:
                acks.append(
                    await b.cluster.forward(a.cluster.node, "join", "sid-b", SPECIALIST, {"n": 2})
                )
                return
            except TimeoutError:
                await asyncio.sleep(0.05)  # its inbox is being subscribed again

    async with asyncio.timeout(10):
        await routed_again()
    assert acks[0]["by"] == a.cluster.node
    assert b.cluster.elsewhere["sid-b"] == ("c1", a.cluster.node)


async def test_a_hung_owner_loses_its_room_when_the_lease_runs_out(redis: RedisServer) -> None:
    hung = await Node(redis.url, lease=0.5).start()
    other = await Node(redis.url).start()
    try:
        assert await hung.cluster.owner("c1", claim=True) == hung.cluster.node
        hung.rooms.add("c1")
        # It stops renewing, as a process that hangs without dying (its inbox still read).
        for task in list(hung.cluster._tasks):
            if task.get_name() == "room cluster: leases":
                task.cancel()
        assert await other.cluster.owner("c1", claim=True) == hung.cluster.node
        client = aioredis.Redis.from_url(redis.url)
        try:
            deadline = asyncio.get_running_loop().time() + 3
            while await client.get("teleconsult:room:c1") is not None:
                assert asyncio.get_running_loop().time() < deadline, "the lease never expired"
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        assert await other.cluster.owner("c1", claim=True) == other.cluster.node
    finally:
        await other.cluster.close()
        await hung.cluster.close()


async def test_a_held_room_keeps_its_lease_and_a_closed_one_gives_it_back(
    redis: RedisServer,
) -> None:
    a = await Node(redis.url, lease=0.6).start()
    b = await Node(redis.url).start()
    try:
        await a.cluster.owner("c1", claim=True)
        a.rooms.add("c1")
        await asyncio.sleep(1.5)  # more than two leases: renewed meanwhile
        assert await b.cluster.owner("c1", claim=True) == a.cluster.node
        a.rooms.discard("c1")  # the room closed
        client = aioredis.Redis.from_url(redis.url)
        try:
            deadline = asyncio.get_running_loop().time() + 2
            while await client.get("teleconsult:room:c1") is not None:
                assert asyncio.get_running_loop().time() < deadline, "the lease was kept"
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
    finally:
        await a.cluster.close()
        await b.cluster.close()


async def test_the_owner_lets_go_of_the_guests_of_a_process_that_died(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    a.cluster.guests["sid-b"] = (b.cluster.node, SPECIALIST)
    for task in list(b.cluster._tasks):
        task.cancel()
    await asyncio.gather(*b.cluster._tasks, return_exceptions=True)
    await b.cluster._redis.aclose()
    await eventually(lambda: a.guests_lost == ["sid-b"], within=5)
    assert "sid-b" not in a.cluster.guests


async def test_a_connection_that_disconnects_while_its_dead_owner_is_buried_is_no_keyerror(
    nodes: tuple[Node, Node], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overloaded two-process benchmark logged "Task exception was never retrieved" with a
    `KeyError` of a socket id: telling one connection that its room died yields to the loop,
    and a connection that disconnected meanwhile (`on_disconnect` takes it out of `elsewhere`)
    was then deleted again. The watch task died of it, and never looked again."""
    a, b = nodes
    dead = a.cluster.node
    b.cluster.elsewhere["sid-1"] = ("c1", dead)
    b.cluster.elsewhere["sid-2"] = ("c1", dead)

    async def room_lost(sid: str, consult_id: str) -> None:
        b.rooms_lost.append((sid, consult_id))
        await asyncio.sleep(0)  # telling the page goes through the loop (an emit)
        other = "sid-2" if sid == "sid-1" else "sid-1"
        b.cluster.elsewhere.pop(other, None)  # ... while the other one disconnects

    b.cluster._room_lost = room_lost
    for task in list(a.cluster._tasks):
        task.cancel()
    await asyncio.gather(*a.cluster._tasks, return_exceptions=True)
    await a.cluster._redis.aclose()

    looks: list[None] = []
    look = b.cluster.watch_once

    async def counted_look() -> None:
        looks.append(None)
        await look()

    monkeypatch.setattr(b.cluster, "watch_once", counted_look)
    await eventually(lambda: len(b.rooms_lost) == 1, within=5)
    seen = len(looks)
    await eventually(lambda: len(looks) >= seen + 3, within=10)  # three more looks of the watch
    assert b.rooms_lost in ([("sid-1", "c1")], [("sid-2", "c1")])
    assert b.cluster.elsewhere == {}
    names = {task.get_name() for task in b.cluster._tasks}
    assert "room cluster: watch" in names, "the watch task died"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


async def script_calls(admin: aioredis.Redis) -> int:
    stats = await admin.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


async def test_one_round_renews_every_held_lease_in_a_few_commands(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """1 200 rooms held: one renewal round is three script calls (500 rooms each), not 1 200
    commands and tasks; every lease is renewed (or claimed again if it lapsed), and a room whose
    lease another process holds is said once."""
    a = await Node(redis.url, lease=30).start()
    admin = aioredis.Redis.from_url(redis.url, decode_responses=True)
    try:
        rooms = [f"c{n}" for n in range(1200)]
        a.rooms.update(rooms)
        pipe = admin.pipeline(transaction=False)
        for room in rooms[:-2]:
            pipe.set(f"teleconsult:room:{room}", a.cluster.node, px=1000)
        pipe.set("teleconsult:room:c1199", "another-node", px=60_000)  # c1198: lapsed
        await pipe.execute()
        evals_before = await script_calls(admin)

        await a.cluster.renew_once()

        assert await script_calls(admin) - evals_before == 3
        pipe = admin.pipeline(transaction=False)
        for room in rooms:
            pipe.pttl(f"teleconsult:room:{room}")
        ttls = await pipe.execute()
        assert min(ttls[:-1]) > 20_000, "a lease was not renewed for ROOM_LEASE_SECONDS"
        assert await admin.get("teleconsult:room:c1198") == a.cluster.node
        assert await admin.get("teleconsult:room:c1199") == "another-node"
        said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(said) == 1 and "c1199" in said[0], said
    finally:
        await admin.aclose()
        await a.cluster.close()
