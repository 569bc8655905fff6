"""Login against the in-memory store with a counting verifier: the cost is the same for an
unknown username, failures are limited per username and per address, and a flood of logins
is refused rather than queued without end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rooms.consults.people import Role
from rooms.consults.service import ConsultService
from rooms.records.notes import NoteService
from signaling.app import create_app, realtime
from signaling.auth import TokenIssuer
from signaling.context import Signaling
from signaling.http import login
from signaling.http.api import Edge
from signaling.passwords import _DUMMY_HASH, PasswordChecks
from signaling.ratelimit import RateLimiter
from tests.support.peer import eventually
from tests.unit.fakes import COUNTY_A, InMemoryStore
from tests.unit.test_passwords import CountingVerifier


@dataclass
class Server:
    client: TestClient[Any, Any]
    verify: CountingVerifier
    checks: PasswordChecks

    async def login(self, username: str, password: str) -> tuple[int, dict[str, Any]]:
        body = {"username": username, "password": password}
        async with self.client.post("/api/auth/login", json=body) as response:
            return response.status, await response.json()


async def start(
    verify: Any, *, per_user: int = 10, per_address: int = 30, at_once: int = 2, waiting: int = 32
) -> AsyncIterator[Server]:
    store = InMemoryStore()
    await store.add_user("nurse", "Nurse", Role.EXAM_ROOM_DOCTOR, COUNTY_A, None, "hash:right")
    tokens = TokenIssuer("s" * 32, "teleconsult", timedelta(hours=1))
    ctx = Signaling(service=ConsultService(store), tokens=tokens, notes=NoteService(store, store))
    checks = PasswordChecks(at_once, waiting, verify=verify)
    feature = login.routes(
        Edge(tokens, store),
        failed_logins=RateLimiter(per_user),
        failed_logins_by_address=RateLimiter(per_address),
        passwords=checks,
    )
    app = create_app(ctx, realtime(ctx), [feature], None, "test")
    try:
        async with TestClient(TestServer(app)) as client:
            yield Server(client, verify, checks)
    finally:
        checks.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async for running in start(CountingVerifier()):
        yield running


async def test_an_unknown_username_costs_exactly_one_verify_against_the_dummy_hash(
    server: Server,
) -> None:
    status, body = await server.login("nobody", "guess")
    assert (status, body["code"]) == (401, "bad_credentials")
    assert server.verify.calls == [(_DUMMY_HASH, "guess")]


async def test_a_known_username_costs_the_same_one_verify(server: Server) -> None:
    status, body = await server.login("nurse", "wrong")
    assert (status, body["code"]) == (401, "bad_credentials")
    assert server.verify.calls == [("hash:right", "wrong")]
    status, body = await server.login("nurse", "right")
    assert status == 200 and body["user"]["username"] == "nurse"
    assert len(server.verify.calls) == 2


async def test_the_verify_runs_off_the_event_loop(server: Server) -> None:
    await server.login("nobody", "guess")
    assert threading.current_thread().name not in server.verify.threads


async def test_failed_logins_are_limited_per_address_across_usernames() -> None:
    async for server in start(CountingVerifier(), per_user=10, per_address=3):
        codes = [(await server.login(f"user{n}", "guess"))[1]["code"] for n in range(4)]
        assert codes == ["bad_credentials"] * 3 + ["rate_limited"]
        # Refused before any verify: a limited address costs the server nothing.
        assert len(server.verify.calls) == 3
        status, _ = await server.login("nurse", "right")
        assert status == 429


async def test_failed_logins_are_limited_per_username() -> None:
    async for server in start(CountingVerifier(), per_user=2, per_address=30):
        codes = [(await server.login("nurse", "guess"))[1]["code"] for _ in range(3)]
        assert codes == ["bad_credentials", "bad_credentials", "rate_limited"]
        assert (await server.login("nurse", "right"))[0] == 429


async def test_logins_beyond_the_waiting_room_are_refused_busy() -> None:
    release = threading.Event()
    verify = CountingVerifier()

    def slow(password_hash: str, password: str) -> bool:
        release.wait(5)
        return verify(password_hash, password)

    async for server in start(slow, at_once=1, waiting=1):
        try:
            first = [asyncio.create_task(server.login("nurse", "right")) for _ in range(2)]
            await eventually(lambda s=server: s.checks.pending == 2)  # one running, one waiting
            status, body = await server.login("nurse", "right")
            assert (status, body["code"]) == (429, "rate_limited")
            assert "busy" in body["message"]
            release.set()
            assert [(await t)[0] for t in first] == [200, 200]
        finally:
            release.set()
