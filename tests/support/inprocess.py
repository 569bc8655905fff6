"""A real teleconsult server in the test's own event loop, with a clock the test moves.

Built by the composition root (`teleconsult.bootstrap.build_app(settings, clock=...)`) on a real
SQLite database migrated by Alembic and seeded with the demo users, served by aiohttp's runner
on a free loopback port. The only difference from `teleconsult serve` is the injected clock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from storage.sql.migrate import upgrade
from teleconsult.bootstrap import build_app, build_repositories
from teleconsult.config import Settings, load_settings
from teleconsult.demo import seed
from tests.support.peer import Participant
from tests.support.server import booking, free_port

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
"""Where the test clock starts (12:00 in Beijing)."""


@dataclass
class ManualClock:
    """The server's clock: stands still until the test moves it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at


@dataclass
class InProcessServer:
    env: dict[str, str] = field(default_factory=dict)
    clock: ManualClock = field(default_factory=ManualClock)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tc-duty-")))
    port: int = field(default_factory=free_port)
    app: web.Application | None = None
    settings: Settings | None = None
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> InProcessServer:
        self.settings = load_settings(
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "DATA_DIR": str(self.data_dir),
                "MEDIA_ADDRESS": "127.0.0.1",
                "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
                **self.env,
            }
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, self.settings.database_url)
        repos = build_repositories(self.settings)
        try:
            await seed(repos.consults)
        finally:
            await repos.close()
        return await self.launch()

    async def launch(self) -> InProcessServer:
        """Build and serve the app on the existing data directory (a restart after `stop`)."""
        assert self.settings is not None
        self.app = build_app(self.settings, clock=self.clock)
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def cleanup(self) -> None:
        await self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        assert self._http is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._http.request(method, self.url + path, json=body, headers=headers) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data

    async def token(self, username: str) -> str:
        if username not in self._tokens:
            status, body = await self.request(
                "POST", "/api/auth/login", {"username": username, "password": f"demo-{username}"}
            )
            assert status == 200, body
            self._tokens[username] = body["token"]
        return self._tokens[username]

    async def user_id(self, username: str) -> int:
        status, body = await self.request("GET", "/api/me", token=await self.token(username))
        assert status == 200, body
        return int(body["id"])

    async def add_shift(
        self,
        username: str,
        start: datetime,
        end: datetime,
        tier: int = 0,
        specialty: str = "obstetrics",
    ) -> dict[str, Any]:
        status, body = await self.request(
            "POST",
            "/api/roster/shifts",
            {
                "specialist_id": await self.user_id(username),
                "specialty": specialty,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "tier": tier,
            },
            token=await self.token("admin"),
        )
        assert status == 201, body
        return dict(body)

    async def book(
        self, specialty: str = "obstetrics", scheduled_at: datetime | None = None
    ) -> dict[str, Any]:
        status, body = await self.request(
            "POST",
            "/api/consults",
            booking(
                specialty,
                "duty test",
                (scheduled_at or self.clock.now + timedelta(hours=2)).isoformat(),
            ),
            token=await self.token("doctor.a"),
        )
        assert status == 201, body
        return dict(body)


async def connected(
    server: InProcessServer, people: list[Participant], username: str
) -> Participant:
    """`username` connected over socket.io, recording the duty events too; added to `people`."""
    person = Participant(username)
    for name in ("consult-escalated", "consult-reminder"):
        person.sio.on(name, person._recorder(name))
    people.append(person)
    await person.connect(server.url, await server.token(username))
    return person
