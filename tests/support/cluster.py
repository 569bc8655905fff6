"""A small signaling cluster for tests: redis-server, PostgreSQL, two `teleconsult serve`
processes on them (one JWT secret, each its own data directory) and haproxy in front."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from redis import asyncio as aioredis

from tests.support.haproxy import Haproxy
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.server import RunningServer


@dataclass
class Cluster:
    redis: RedisServer
    postgres: PostgresServer
    servers: list[RunningServer]
    lb: Haproxy

    def node_of(self, server: RunningServer) -> str:
        """The node id the server printed at start (`signaling node <id>`)."""
        for line in server.log_path.read_text().splitlines():
            if line.startswith("signaling node "):
                return line.removeprefix("signaling node ").strip()
        raise AssertionError(f"no node id in {server.log_path}")

    async def owner(self, consult_id: str) -> str | None:
        """The node owning the consult's room, as recorded in Redis."""
        client = aioredis.Redis.from_url(self.redis.url, decode_responses=True)
        try:
            found = await client.get(f"teleconsult:room:{consult_id}")
            return str(found) if found else None
        finally:
            await client.aclose()

    async def owning_server(self, consult_id: str) -> RunningServer:
        node = await self.owner(consult_id)
        return next(s for s in self.servers if self.node_of(s) == node)

    def owning_server_now(self, consult_id: str) -> RunningServer:
        """`owning_server` without an event loop (Playwright's sync tests run one already)."""
        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        try:
            node = client.get(f"teleconsult:room:{consult_id}")
        finally:
            client.close()
        return next(s for s in self.servers if self.node_of(s) == node)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    with RedisServer() as redis, PostgresServer() as postgres:
        env = {
            "REDIS_URL": redis.url,
            "DATABASE_URL": postgres.url,
            "JWT_SECRET": "cluster-test-secret-" + "x" * 32,
        }
        first = RunningServer(env_overrides=env)
        second = RunningServer(env_overrides=env)
        try:
            first.start()  # seeds the demo data into PostgreSQL
            second.launch()
            backends = {"one": f"127.0.0.1:{first.port}", "two": f"127.0.0.1:{second.port}"}
            with Haproxy(backends) as lb:
                yield Cluster(redis, postgres, [first, second], lb)
        finally:
            first.cleanup()
            second.cleanup()
