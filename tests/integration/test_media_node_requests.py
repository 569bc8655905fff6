"""A media node process answers bad requests with `{code, message}`, and signaling's side of
the wire answers `relay_unavailable` when no node is there or a node stays silent.

Real redis-server, a real `teleconsult media-node` process, requests sent as raw JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import asyncio as aioredis

from media.cluster import leases
from media.cluster.remote import RemoteMediaNodes
from rooms.consults.errors import RelayUnavailable
from tests.support.media_node import RunningMediaNode
from tests.support.redis import RedisServer
from tests.support.server import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture(scope="module")
def node(redis_server: RedisServer) -> Iterator[RunningMediaNode]:
    base = random.randrange(30000, 59000, 100)
    data_dir = Path(tempfile.mkdtemp(prefix="teleconsult-node-"))
    running = RunningMediaNode("wire-node", data_dir, redis_server.url, base, base + 99)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def ask(redis: aioredis.Redis, node_id: str, request: dict[str, Any]) -> dict[str, Any]:
    inbox = f"test-inbox-{uuid.uuid4().hex}"
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(inbox)
    try:
        heard = await redis.publish(
            leases.requests_channel(node_id),
            json.dumps({"rid": "r1", "reply_to": inbox, **request}),
        )
        assert heard == 1
        async with asyncio.timeout(10):
            while True:
                message = await pubsub.get_message(timeout=1)
                if message is not None:
                    reply: dict[str, Any] = json.loads(message["data"])
                    return reply
    finally:
        await pubsub.aclose()


async def test_the_node_announces_its_address_port_range_and_load(
    node: RunningMediaNode, redis: aioredis.Redis
) -> None:
    live = await leases.live_nodes(redis, 2)
    lease = live[node.node_id]
    assert (lease.address, lease.port_min, lease.port_max) == (
        "127.0.0.1",
        node.port_min,
        node.port_max,
    )
    assert (lease.streams, lease.consults) == (0, 0)
    assert node.process is not None and lease.pid == node.process.pid
    assert 0 < await redis.pttl(leases.LEASE_PREFIX + node.node_id) <= 2000


@pytest.mark.parametrize(
    ("request_", "code", "says"),
    [
        ({"op": "explode", "consult_id": "c1", "args": {}}, "invalid_request", "unknown request"),
        ({"op": "join", "consult_id": "c1", "args": []}, "invalid_request", "unknown request"),
        ({"op": "join", "consult_id": 7, "args": {}}, "invalid_request", "consult_id"),
        ({"op": "join", "consult_id": "c1", "args": {}}, "invalid_request", "args.peer_id"),
        (
            {"op": "join", "consult_id": "c1", "args": {"peer_id": "p", "user_id": "x"}},
            "invalid_request",
            "args.user_id must be an integer",
        ),
        (
            {
                "op": "publish",
                "consult_id": "c2",
                "args": {"peer_id": "p", "user_id": 1, "offer_sdp": "v=0", "sources": {}},
            },
            "media_refused",
            "",
        ),
        (
            {
                "op": "publish",
                "consult_id": "c3",
                "args": {"peer_id": "p", "user_id": 1, "offer_sdp": "v=0", "sources": {"0": "x"}},
            },
            "invalid_request",
            "each source must be one of camera, microphone, second",
        ),
    ],
)
async def test_a_bad_request_is_answered_with_a_code_and_a_message(
    node: RunningMediaNode,
    redis: aioredis.Redis,
    request_: dict[str, Any],
    code: str,
    says: str,
) -> None:
    reply = await ask(redis, node.node_id, request_)
    assert reply["rid"] == "r1" and reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    assert says in reply["error"]["message"] and reply["error"]["message"], reply
    assert node.process is not None and node.process.poll() is None, "the node is still up"


async def test_signaling_says_relay_unavailable_without_a_node_or_when_a_node_is_silent(
    redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    empty = RedisServer()
    with empty:
        nodes = RemoteMediaNodes(empty.url, timeout=1, request_timeout=1)
        await nodes.start()
        try:
            with pytest.raises(RelayUnavailable, match="no media node is running"):
                await nodes.join("c1", "p1", 1)
        finally:
            await nodes.close()

    # A "node" whose lease is current and which listens, but never answers.
    silent = "silent-node"
    await redis.set(
        leases.LEASE_PREFIX + silent,
        leases.NodeLease(silent, "127.0.0.1", None, None, -1, 0, 1).to_json(),
        px=60_000,
    )
    await redis.sadd(leases.NODES_KEY, silent)
    listener = redis.pubsub()
    await listener.subscribe(leases.requests_channel(silent))
    nodes = RemoteMediaNodes(redis_server.url, timeout=1, request_timeout=0.5)
    await nodes.start()
    try:
        with pytest.raises(
            RelayUnavailable, match=re.escape("silent-node did not answer join within 0.5 s")
        ):
            await nodes.join("c-silent", "p1", 1)
    finally:
        await nodes.close()
        await listener.aclose()
        await redis.delete(leases.LEASE_PREFIX + silent)
        await redis.srem(leases.NODES_KEY, silent)


def test_media_node_without_redis_and_recover_of_a_bad_node_name_are_refused(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "teleconsult", "media-node"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "needs REDIS_URL" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "teleconsult", "recover", "--node", "../etc"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "invalid --node" in run.stderr


async def test_consults_placed_in_a_burst_are_spread_over_equally_loaded_nodes(
    redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    """Two idle "nodes" (current leases, listening, never answering): two consults placed
    within the same half second go one to each, though neither lease has changed yet."""
    names = ("idle-1", "idle-2")
    listener = redis.pubsub()
    for name in names:
        lease = leases.NodeLease(name, "127.0.0.1", None, None, 0, 0, 1)
        await redis.set(leases.LEASE_PREFIX + name, lease.to_json(), px=60_000)
        await redis.sadd(leases.NODES_KEY, name)
        await listener.subscribe(leases.requests_channel(name))
    nodes = RemoteMediaNodes(redis_server.url, timeout=1, request_timeout=0.2)
    await nodes.start()
    try:
        for consult_id in ("c-burst-1", "c-burst-2"):
            with pytest.raises(RelayUnavailable, match="did not answer"):
                await nodes.join(consult_id, "p1", 1)
        assert {nodes.placement("c-burst-1"), nodes.placement("c-burst-2")} == set(names)
    finally:
        await nodes.close()
        await listener.aclose()
        for name in names:
            await redis.delete(leases.LEASE_PREFIX + name)
            await redis.srem(leases.NODES_KEY, name)


async def test_another_signaling_process_finds_the_consult_on_the_node_it_was_placed_on(
    redis_server: RedisServer, redis: aioredis.Redis
) -> None:
    """The process that takes over a consult's room (a signaling failover) keeps its media where
    it is, though another node now looks less loaded; closing the consult drops the placement."""
    names = ("keep-1", "keep-2")
    listener = redis.pubsub()
    for name in names:
        lease = leases.NodeLease(name, "127.0.0.1", None, None, -5, 0, 1)
        await redis.set(leases.LEASE_PREFIX + name, lease.to_json(), px=60_000)
        await redis.sadd(leases.NODES_KEY, name)
        await listener.subscribe(leases.requests_channel(name))
    first = RemoteMediaNodes(redis_server.url, timeout=1, request_timeout=0.2)
    second = RemoteMediaNodes(redis_server.url, timeout=1, request_timeout=0.2)
    await first.start()
    await second.start()
    try:
        with pytest.raises(RelayUnavailable, match="did not answer"):
            await first.join("c-moved", "p1", 1)
        placed = first.placement("c-moved")
        assert placed in names
        busier = leases.NodeLease(placed, "127.0.0.1", None, None, 50, 9, 1)
        await redis.set(leases.LEASE_PREFIX + placed, busier.to_json(), px=60_000)

        with pytest.raises(RelayUnavailable, match=f"{placed} did not answer"):
            await second.join("c-moved", "p2", 2)
        assert second.placement("c-moved") == placed

        with pytest.raises(RelayUnavailable, match="did not answer"):
            await second.close_consult("c-moved")
        assert await redis.hget(leases.PLACEMENT_KEY, "c-moved") is None
    finally:
        await first.close()
        await second.close()
        await listener.aclose()
        for name in names:
            await redis.delete(leases.LEASE_PREFIX + name)
            await redis.srem(leases.NODES_KEY, name)
