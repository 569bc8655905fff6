"""Redis (`REDIS_URL`) lost under two running signaling processes, stopped (SIGTERM) or hung
(SIGSTOP): each process stays up, `/healthz` answers 503 `redis: unreachable`, the outage is
logged once per process (no traceback, no line per emit), a consult whose people are on one
process goes on signalling (every ack, every signal delivered), a notification for a user on
the other process is lost (not delivered late), and once Redis answers again `/healthz` is 200
and notifications cross processes again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.peer import Participant, eventually
from tests.support.redis import RedisServer
from tests.support.server import RunningServer, booking, in_hours

REDIS_TIMEOUT = 1


@pytest.fixture
def two_processes() -> Iterator[tuple[RedisServer, RunningServer, RunningServer]]:
    with RedisServer() as redis:
        env = {"REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT)}
        with (
            RunningServer(env_overrides=env) as first,
            RunningServer(env_overrides=env, data_dir=first.data_dir) as second,
        ):
            yield redis, first, second


class Pair:
    """The exam room and the specialist of one consult, both on the same process; the
    specialist's page records the signals it gets."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.exam_room = Participant("doctor.a")
        self.specialist = Participant("obstetrician")
        self.received: list[dict[str, Any]] = []

    async def open(self) -> None:
        async def record(data: dict[str, Any]) -> None:
            self.received.append(data)

        self.specialist.sio.on("signal", record)
        consult = self.server.book()["id"]
        await self.exam_room.connect(self.server.url, self.server.token("doctor.a"))
        await self.specialist.connect(self.server.url, self.server.token("obstetrician"))
        assert (await self.exam_room.join(consult))["ok"]
        assert (await self.specialist.join(consult))["ok"]

    async def signals(self, count: int) -> None:
        """`count` signals from the exam room to the specialist: each acked ok and delivered."""
        before = len(self.received)
        for _ in range(count):
            reply = await self.exam_room.call(
                "signal",
                {
                    "consult_id": self.exam_room.consult_id,
                    "to": self.specialist.peer_id,
                    "end_of_candidates": True,
                },
            )
            assert reply == {"ok": True}, reply
        await eventually(lambda: len(self.received) == before + count, within=10)
        assert all(s["from"] == self.exam_room.peer_id for s in self.received[before:])

    async def close(self) -> None:
        await self.exam_room.close()
        await self.specialist.close()


def _health(server: RunningServer) -> tuple[int, Any]:
    reply = server.request("GET", "/healthz")
    return reply.status, reply.body


def _requested(specialist: Participant, reason: str) -> bool:
    return any(
        e["consult"]["reason"] == reason for e in specialist.events_named("consult-requested")
    )


def _book_unassigned(server: RunningServer, reason: str) -> None:
    reply = server.request(
        "POST",
        "/api/consults",
        booking("obstetrics", reason, in_hours(1)),
        token=server.token("doctor.a"),
    )
    assert reply.status == 201, reply.body


async def _outage_and_recovery(
    redis: RedisServer, first: RunningServer, second: RunningServer, *, hung: bool
) -> None:
    pair = Pair(first)
    remote = Participant("obstetrician on the second process")
    await remote.connect(second.url, second.token("obstetrician"))
    try:
        await pair.open()
        _book_unassigned(first, "before the outage")
        await eventually(lambda: _requested(remote, "before the outage"), within=10)
        await pair.signals(3)
        assert first.log_path == second.log_path  # one data directory: one log for both
        log_start = first.log_path.stat().st_size

        if hung:
            redis.hang()
        else:
            redis.stop()
        # At once, before anything noticed: an emit must not wait on Redis.
        await pair.signals(5)

        for server in (first, second):
            await eventually(lambda s=server: _health(s)[0] == 503, within=10)
            assert _health(server) == (
                503,
                {
                    "status": "unavailable",
                    "database": "ok",
                    "database_storage": "ok",
                    "storage": "ok",
                    "redis": "unreachable",
                },
            )
        await pair.signals(20)  # the consult on one process goes on
        _book_unassigned(first, "during the outage")  # REST goes on; the other process misses it
        for server in (first, second):
            assert server.process is not None and server.process.poll() is None

        if hung:
            redis.resume()
        else:
            redis.start()
        for server in (first, second):
            await eventually(lambda s=server: _health(s)[0] == 200, within=15)
        await pair.signals(3)
        # Notifications cross processes again once the second process has subscribed afresh
        # (within about a second of Redis answering): book until one arrives.
        for attempt in range(10):
            reason = f"after the outage {attempt}"
            _book_unassigned(first, reason)
            with contextlib.suppress(AssertionError):
                await eventually(lambda r=reason: _requested(remote, r), within=2)
                break
        else:
            raise AssertionError("no notification reached the other process after the outage")
        assert not _requested(remote, "during the outage"), "lost, not delivered late"

        log = first.log_path.read_bytes()[log_start:].decode(errors="replace")
        assert "Traceback" not in log, log
        assert not [line for line in log.splitlines() if " ERROR " in line], log
        warnings = [line for line in log.splitlines() if " WARNING " in line]
        assert len(warnings) == 2, log  # one per process
        assert all("redis unreachable" in line for line in warnings), log
        back = [line for line in log.splitlines() if "redis answers again" in line]
        assert len(back) == 2 and all(" INFO " in line for line in back), log
    finally:
        await pair.close()
        await remote.close()


async def test_a_stopped_redis_is_answered_503_and_a_consult_on_one_process_goes_on(
    two_processes: tuple[RedisServer, RunningServer, RunningServer],
) -> None:
    await _outage_and_recovery(*two_processes, hung=False)


async def test_a_hung_redis_stalls_no_emit_and_is_answered_503_until_it_resumes(
    two_processes: tuple[RedisServer, RunningServer, RunningServer],
) -> None:
    await _outage_and_recovery(*two_processes, hung=True)
