"""A small signaling cluster for tests: redis-server, PostgreSQL, two `teleconsult serve`
processes on them (one JWT secret, each its own data directory) and haproxy in front; one per
module of tests with `SharedCluster`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

    def intact(self) -> bool:
        """Every part still runs (no test killed one of them)."""
        return (
            all(s.process is not None and s.process.poll() is None for s in self.servers)
            and self.redis.process is not None
            and self.redis.process.poll() is None
            and self.lb.process is not None
            and self.lb.process.poll() is None
        )


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Redis and PostgreSQL, the demo data seeded into PostgreSQL, then both signaling
    processes launched at the same time."""
    with RedisServer() as redis, PostgresServer() as postgres:
        env = {
            "REDIS_URL": redis.url,
            "DATABASE_URL": postgres.url,
            "JWT_SECRET": "cluster-test-secret-" + "x" * 32,
        }
        first = RunningServer(env_overrides=env)
        second = RunningServer(env_overrides=env)
        try:
            first.seed_demo()
            with ThreadPoolExecutor(2) as pool:
                for launched in [pool.submit(first.launch), pool.submit(second.launch)]:
                    launched.result()
            backends = {"one": f"127.0.0.1:{first.port}", "two": f"127.0.0.1:{second.port}"}
            with Haproxy(backends) as lb:
                yield Cluster(redis, postgres, [first, second], lb)
        finally:
            first.cleanup()
            second.cleanup()


class SharedCluster:
    """One cluster for the tests of a module; `get` gives a new one in its place once a test
    has killed a part of it (a failover test), so each test starts on a whole cluster."""

    def __init__(self) -> None:
        self._parts: contextlib.ExitStack | None = None
        self._cluster: Cluster | None = None

    def get(self) -> Cluster:
        if self._cluster is None or not self._cluster.intact():
            self.close()
            self._parts = contextlib.ExitStack()
            self._cluster = self._parts.enter_context(running_cluster())
        return self._cluster

    def close(self) -> None:
        if self._parts is not None:
            self._parts.close()
        self._parts = None
        self._cluster = None
