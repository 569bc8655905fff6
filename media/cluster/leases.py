"""Which media nodes are alive, where they listen, and how loaded they are: leases in Redis.

A node writes ``teleconsult:media:lease:<id>`` (JSON: id, address, UDP port range, streams,
consults, pid) with an expiry of `LEASE_SECONDS` and renews it every `RENEW_EVERY_SECONDS`; it
also adds its id to the set ``teleconsult:media:nodes``. A node whose key has expired is dead:
signaling stops placing consults on it and moves the consults it had. A node that stops cleanly
deletes its key at once. Ids in the set without a key are dropped by whoever lists them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from redis import asyncio as aioredis

from media.cluster.bus import bounded

NODES_KEY = "teleconsult:media:nodes"
LEASE_PREFIX = "teleconsult:media:lease:"
PLACEMENT_KEY = "teleconsult:media:placement"
"""Hash consult id → the node carrying its media, for whichever signaling process holds the
consult's room next (after a signaling failover, the consult stays on its node)."""
LEASE_SECONDS = 2.0
"""How long a node counts as alive after its last renewal (`MEDIA_NODE_LEASE_SECONDS`)."""
RENEW_EVERY_SECONDS = 0.5
"""How often a node renews its lease (and reports its load)."""


def requests_channel(node_id: str) -> str:
    """Where a node listens for requests."""
    return f"teleconsult:media:node:{node_id}"


@dataclass(frozen=True, slots=True)
class NodeLease:
    id: str
    address: str
    port_min: int | None
    port_max: int | None
    streams: int
    """Published tracks the node forwards now."""
    consults: int
    """Consults with a relay on the node."""
    pid: int

    @property
    def load(self) -> tuple[int, int, str]:
        """The order of placement: fewest streams, then fewest consults, then the id."""
        return (self.streams, self.consults, self.id)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(raw: str) -> NodeLease | None:
        try:
            data: Any = json.loads(raw)
            return NodeLease(
                id=str(data["id"]),
                address=str(data["address"]),
                port_min=data.get("port_min"),
                port_max=data.get("port_max"),
                streams=int(data["streams"]),
                consults=int(data["consults"]),
                pid=int(data["pid"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


async def renew(redis: aioredis.Redis, lease: NodeLease, limit: float, ttl: float) -> None:
    async def write() -> None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(LEASE_PREFIX + lease.id, lease.to_json(), px=round(ttl * 1000))
            pipe.sadd(NODES_KEY, lease.id)
            await pipe.execute()

    await bounded(limit, write())


async def withdraw(redis: aioredis.Redis, node_id: str, limit: float) -> None:
    async def delete() -> None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(LEASE_PREFIX + node_id)
            pipe.srem(NODES_KEY, node_id)
            await pipe.execute()

    await bounded(limit, delete())


async def live_nodes(redis: aioredis.Redis, limit: float) -> dict[str, NodeLease]:
    """The nodes whose lease is current, by id."""

    async def read() -> dict[str, NodeLease]:
        ids = sorted(str(i) for i in await redis.smembers(NODES_KEY))
        if not ids:
            return {}
        raws = await redis.mget([LEASE_PREFIX + i for i in ids])
        live: dict[str, NodeLease] = {}
        gone: list[str] = []
        for node_id, raw in zip(ids, raws, strict=True):
            lease = NodeLease.from_json(str(raw)) if raw else None
            if lease is None:
                gone.append(node_id)
            else:
                live[node_id] = lease
        if gone:
            await redis.srem(NODES_KEY, *gone)
        return live

    result: dict[str, NodeLease] = await bounded(limit, read())
    return result
