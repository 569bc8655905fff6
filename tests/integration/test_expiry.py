"""Expiry through the real server and a real SQL store, with a clock the test moves.

A request nobody accepts expires `REQUEST_EXPIRES_AFTER_SECONDS` after its scheduled time (not a
microsecond before); an accepted consult nobody opens, `ACCEPTED_EXPIRES_AFTER_SECONDS` after.
The booking doctor sees it live, the specialists' queues drop it, the audit trail says why, and
the statistics count it as expired. An opened consult never expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from teleconsult.bootstrap import DUTY
from tests.support.inprocess import T0, InProcessServer, connected
from tests.support.peer import Participant, eventually

REQUEST_GRACE = timedelta(hours=2)
ACCEPTED_GRACE = timedelta(hours=24)
JUST_BEFORE = timedelta(microseconds=1)


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    # The scheduler's own loop sleeps an hour: the test drives every pass itself.
    running = InProcessServer(
        env={
            "DUTY_TICK_SECONDS": "3600",
            "REQUEST_EXPIRES_AFTER_SECONDS": str(int(REQUEST_GRACE.total_seconds())),
            "ACCEPTED_EXPIRES_AFTER_SECONDS": str(int(ACCEPTED_GRACE.total_seconds())),
        }
    )
    await running.start()
    yield running
    await running.cleanup()


async def expire_due(server: InProcessServer) -> list[str]:
    assert server.app is not None
    return [c.id for c in await server.app[DUTY].expire_due()]


async def status_of(server: InProcessServer, consult_id: str) -> str:
    status, body = await server.request(
        "GET", f"/api/consults/{consult_id}", token=await server.token("supervisor")
    )
    assert status == 200, body
    return str(body["status"])


async def audit_of(server: InProcessServer, consult_id: str) -> list[dict[str, Any]]:
    status, body = await server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=await server.token("supervisor")
    )
    assert status == 200, body
    return list(body["entries"])


def saw_state(person: Participant, consult_id: str, wanted: str) -> bool:
    return any(
        e["consult"]["id"] == consult_id and e["consult"]["status"] == wanted
        for e in person.events_named("consult-state")
    )


def saw_closed(person: Participant, consult_id: str) -> bool:
    return any(
        e["consult_id"] == consult_id and e["status"] == "expired"
        for e in person.events_named("request-closed")
    )


async def test_a_request_nobody_accepts_expires_on_time_and_everyone_who_saw_it_is_told(
    server: InProcessServer, people: list[Participant]
) -> None:
    doctor = await connected(server, people, "doctor.a")
    specialist = await connected(server, people, "obstetrician")
    scheduled = T0 + timedelta(hours=1)
    cid = (await server.book(scheduled_at=scheduled))["id"]

    server.clock.set(scheduled + REQUEST_GRACE - JUST_BEFORE)
    assert await expire_due(server) == [], "not a microsecond early"
    assert await status_of(server, cid) == "requested"

    server.clock.set(scheduled + REQUEST_GRACE)
    assert await expire_due(server) == [cid]
    assert await status_of(server, cid) == "expired"
    await eventually(lambda: saw_state(doctor, cid, "expired"))
    await eventually(lambda: saw_closed(specialist, cid))
    assert await expire_due(server) == [], "an expired consult is not expired twice"

    expiry = [e for e in await audit_of(server, cid) if e["action"] == "consult.expire"]
    assert len(expiry) == 1
    assert expiry[0]["actor_id"] is None
    assert expiry[0]["detail"]["from"] == "requested"
    assert expiry[0]["detail"]["reason"] == "not_accepted_in_time"

    # Too late to accept now, and the statistics count it as expired.
    status, body = await server.request(
        "POST", f"/api/consults/{cid}/accept", {}, token=await server.token("obstetrician")
    )
    assert (status, body["code"]) == (409, "illegal_transition")
    month = scheduled.strftime("%Y-%m")
    status, stats = await server.request(
        "GET",
        f"/api/statistics?from={month}&to={month}",
        token=await server.token("supervisor"),
    )
    assert status == 200, stats
    assert (stats["overall"]["requested"], stats["overall"]["expired"]) == (1, 1)


async def test_an_accepted_consult_nobody_opens_expires_a_grace_after_its_time(
    server: InProcessServer, people: list[Participant]
) -> None:
    doctor = await connected(server, people, "doctor.a")
    scheduled = T0 + timedelta(hours=1)
    cid = (await server.book(scheduled_at=scheduled))["id"]
    status, body = await server.request(
        "POST", f"/api/consults/{cid}/accept", {}, token=await server.token("obstetrician")
    )
    assert status == 200, body

    server.clock.set(scheduled + REQUEST_GRACE)
    assert await expire_due(server) == [], "accepted consults have the longer grace"
    server.clock.set(scheduled + ACCEPTED_GRACE - JUST_BEFORE)
    assert await expire_due(server) == []
    server.clock.set(scheduled + ACCEPTED_GRACE)
    assert await expire_due(server) == [cid]
    await eventually(lambda: saw_state(doctor, cid, "expired"))
    reasons = [
        e["detail"].get("reason")
        for e in await audit_of(server, cid)
        if e["action"] == "consult.expire"
    ]
    assert reasons == ["not_opened_in_time"]


async def test_an_opened_consult_never_expires(
    server: InProcessServer, people: list[Participant]
) -> None:
    scheduled = T0 + timedelta(hours=1)
    cid = (await server.book(scheduled_at=scheduled))["id"]
    status, body = await server.request(
        "POST", f"/api/consults/{cid}/accept", {}, token=await server.token("obstetrician")
    )
    assert status == 200, body
    doctor = await connected(server, people, "doctor.a")
    await doctor.join(cid)
    assert await status_of(server, cid) == "waiting"

    server.clock.set(scheduled + timedelta(days=30))
    assert await expire_due(server) == []
    assert await status_of(server, cid) == "waiting"


async def test_a_request_scheduled_later_is_left_alone(server: InProcessServer) -> None:
    later = T0 + timedelta(days=3)
    cid = (await server.book(scheduled_at=later))["id"]
    server.clock.set(T0 + timedelta(days=1))
    assert await expire_due(server) == []
    assert await status_of(server, cid) == "requested"
