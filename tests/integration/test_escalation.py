"""Escalation through the real server and a real SQL store, with a clock the test moves.

Nobody accepts: step 1 goes out exactly `ESCALATE_AFTER_SECONDS` after booking (not before),
step 2 another period later; the booking doctor sees each step live and the audit trail has
them; ticking again, restarting or a second process never sends a step twice. Accepting stops
escalation. The reminder goes once before the scheduled time, to the invited specialists too.
Bad roster input is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio

from rooms.duty.escalation import EscalationConfig
from rooms.duty.services import CATCH_UP, EscalationService
from storage.sql.repositories import SqlRepositories
from teleconsult.bootstrap import DUTY
from tests.support.inprocess import T0, InProcessServer, connected
from tests.support.peer import Participant, eventually

STEP = timedelta(seconds=600)
TICK = timedelta(microseconds=1)


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    # The scheduler's own loop sleeps an hour: the test drives every tick itself.
    running = InProcessServer(env={"ESCALATE_AFTER_SECONDS": "600", "DUTY_TICK_SECONDS": "3600"})
    await running.start()
    yield running
    await running.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[InProcessServer]:
    """One server for the bad-input cases, which change nothing."""
    running = InProcessServer(env={"ESCALATE_AFTER_SECONDS": "600", "DUTY_TICK_SECONDS": "3600"})
    await running.start()
    yield running
    await running.cleanup()


def steps_seen(person: Participant, consult_id: str) -> list[tuple[int | None, list[str]]]:
    return [
        (e["step"], [r["display_name"] for r in e["recipients"]])
        for e in person.events_named("consult-escalated")
        if e["consult_id"] == consult_id
    ]


def requested(person: Participant, consult_id: str) -> bool:
    return any(e["consult"]["id"] == consult_id for e in person.events_named("consult-requested"))


async def tick(server: InProcessServer) -> list[Any]:
    assert server.app is not None
    return await server.app[DUTY].tick()


async def test_a_request_nobody_accepts_escalates_on_schedule_and_the_booking_doctor_sees_each_step(
    server: InProcessServer, people: list[Participant]
) -> None:
    # The demo seeds a backup obstetrician (obstetrician2).
    await server.add_shift("obstetrician", T0 - timedelta(hours=1), T0 + timedelta(hours=8), 0)
    await server.add_shift("obstetrician2", T0 - timedelta(hours=1), T0 + timedelta(hours=8), 1)
    doctor = await connected(server, people, "doctor.a")
    primary = await connected(server, people, "obstetrician")
    backup = await connected(server, people, "obstetrician2")
    supervisor = await connected(server, people, "supervisor")

    booked = await server.book()
    cid = booked["id"]
    await eventually(lambda: requested(primary, cid))
    await eventually(lambda: steps_seen(doctor, cid) == [(0, ["王芳 (产科) Wang Fang"])])
    assert not requested(backup, cid), "the backup is not told at step 0"

    server.clock.set(T0 + STEP - TICK)
    assert await tick(server) == [], "step 1 is not due a microsecond early"

    server.clock.set(T0 + STEP)
    sent = await tick(server)
    assert [(c.notice.step, c.consult.id) for c in sent] == [(1, cid)]
    await eventually(lambda: requested(backup, cid))
    await eventually(lambda: len(steps_seen(doctor, cid)) == 2)
    assert steps_seen(doctor, cid)[1] == (1, ["赵敏 (产科) Zhao Min"])
    assert await tick(server) == [], "ticking again sends nothing twice"

    server.clock.set(T0 + 2 * STEP - TICK)
    assert await tick(server) == []
    server.clock.set(T0 + 2 * STEP)
    assert [c.notice.step for c in await tick(server)] == [2]
    await eventually(lambda: len(steps_seen(doctor, cid)) == 3)
    assert steps_seen(doctor, cid)[2] == (2, ["李明 (质控) Li Ming"])
    await eventually(lambda: steps_seen(supervisor, cid) == [(2, ["李明 (质控) Li Ming"])])

    # Another process on the same database, and this one after a restart: nothing is resent.
    assert server.settings is not None
    elsewhere = SqlRepositories.open(server.settings.database_url)
    try:
        other = EscalationService(
            elsewhere.consults, elsewhere.duty, EscalationConfig(STEP), server.clock
        )
        server.clock.advance(timedelta(hours=1))
        assert await other.tick() == []
    finally:
        await elsewhere.close()
    for person in people:
        await person.close()  # (an open websocket would hold up the shutdown)
    await server.stop()
    await server.launch()
    assert await tick(server) == []

    status, trail = await server.request(
        "GET", f"/api/consults/{cid}/audit", token=await server.token("supervisor")
    )
    assert status == 200
    steps = [
        (e["action"], e["detail"].get("step"), e["detail"]["recipients"])
        for e in trail["entries"]
        if e["action"] in ("consult.notified", "consult.escalated")
    ]
    ids = {u: await server.user_id(u) for u in ("obstetrician", "obstetrician2", "supervisor")}
    assert steps == [
        ("consult.notified", 0, [ids["obstetrician"]]),
        ("consult.escalated", 1, [ids["obstetrician2"]]),
        ("consult.escalated", 2, [ids["supervisor"]]),
    ]
    status, notices = await server.request(
        "GET", f"/api/consults/{cid}/notices", token=await server.token("doctor.a")
    )
    assert status == 200
    assert [(n["step"], [r["id"] for r in n["recipients"]]) for n in notices["notices"]] == [
        (0, [ids["obstetrician"]]),
        (1, [ids["obstetrician2"]]),
        (2, [ids["supervisor"]]),
    ]


async def test_accepting_stops_escalation(server: InProcessServer) -> None:
    await server.add_shift("obstetrician", T0 - timedelta(hours=1), T0 + timedelta(hours=8))
    cid = (await server.book())["id"]
    server.clock.advance(timedelta(minutes=3))
    status, _ = await server.request(
        "POST", f"/api/consults/{cid}/accept", {}, token=await server.token("obstetrician")
    )
    assert status == 200
    server.clock.advance(3 * STEP)
    assert [c for c in await tick(server) if c.notice.kind.value != "reminder"] == []
    status, notices = await server.request(
        "GET", f"/api/consults/{cid}/notices", token=await server.token("doctor.a")
    )
    assert [n["step"] for n in notices["notices"]] == [0]


async def test_with_nobody_on_duty_the_whole_specialty_hears_of_the_request(
    server: InProcessServer, people: list[Participant]
) -> None:
    specialist = await connected(server, people, "obstetrician")
    cid = (await server.book())["id"]
    await eventually(lambda: requested(specialist, cid))
    _, notices = await server.request(
        "GET", f"/api/consults/{cid}/notices", token=await server.token("doctor.a")
    )
    assert notices["notices"][0]["fallback"] is True


async def test_the_reminder_goes_once_before_the_scheduled_time(
    server: InProcessServer, people: list[Participant]
) -> None:
    doctor = await connected(server, people, "doctor.a")
    specialist = await connected(server, people, "obstetrician")
    invitee = await connected(server, people, "paediatrician")
    declined = await connected(server, people, "obstetrician2")
    scheduled = T0 + timedelta(hours=1)
    cid = (await server.book(scheduled_at=scheduled))["id"]
    assigned = await server.token("obstetrician")
    status, _ = await server.request("POST", f"/api/consults/{cid}/accept", {}, token=assigned)
    assert status == 200
    for colleague in ("paediatrician", "obstetrician2"):
        body = {"specialist_id": await server.user_id(colleague)}
        status, _ = await server.request(
            "POST", f"/api/consults/{cid}/invitations", body, token=assigned
        )
        assert status == 201
    status, _ = await server.request(
        "DELETE",
        f"/api/consults/{cid}/invitations/{await server.user_id('obstetrician2')}",
        token=await server.token("obstetrician2"),
    )
    assert status == 200
    reminder_at = scheduled - timedelta(minutes=15)
    server.clock.set(reminder_at - TICK)
    assert await tick(server) == []
    server.clock.set(reminder_at)
    assert [c.notice.kind.value for c in await tick(server)] == ["reminder"]
    server.clock.advance(timedelta(minutes=5))
    assert await tick(server) == []
    for person in (doctor, specialist, invitee):
        await eventually(lambda p=person: p.events_named("consult-reminder"))
        assert [e["consult_id"] for e in person.events_named("consult-reminder")] == [cid]
    assert declined.events_named("consult-reminder") == [], "declined: no longer reminded"


BAD_SHIFTS = [
    ({"end_offset_h": -1}, "end_before_start"),
    ({"end_offset_h": 49}, "too_long"),
    ({"username": "paediatrician"}, "wrong_specialty"),
    ({"username": "doctor.a"}, "not_a_specialist"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_SHIFTS)
@pytest.mark.asyncio(loop_scope="module")
async def test_bad_roster_input_is_refused_with_its_code(
    shared: InProcessServer, change: dict[str, Any], reason: str
) -> None:
    start = T0
    end = T0 + timedelta(hours=change.get("end_offset_h", 8))
    status, body = await shared.request(
        "POST",
        "/api/roster/shifts",
        {
            "specialist_id": await shared.user_id(change.get("username", "obstetrician")),
            "specialty": "obstetrics",
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
        token=await shared.token("admin"),
    )
    assert (status, body["code"], body["details"][0]["reason"]) == (422, "invalid_shift", reason)
    status, listed = await shared.request(
        "GET",
        "/api/roster/shifts?from=" + quote((T0 - timedelta(days=1)).isoformat()),
        token=await shared.token("admin"),
    )
    assert listed["shifts"] == [], "nothing half-applied"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "specialty": "obstetrics",
                "start": "2026-11-23T08:00:00",
                "end": "2026-11-23T09:00:00+00:00",
            },
            "start",
        ),
        (
            {
                "specialty": "surgery",
                "start": "2026-11-23T08:00:00+00:00",
                "end": "2026-11-23T09:00:00+00:00",
            },
            "specialty",
        ),
        (
            {
                "specialty": "obstetrics",
                "start": "2026-11-23T08:00:00+00:00",
                "end": "2026-11-23T09:00:00+00:00",
                "tier": 9,
            },
            "tier",
        ),
        (
            {
                "specialty": "obstetrics",
                "start": "2026-11-23T08:00:00+00:00",
                "end": "2026-11-23T09:00:00+00:00",
                "extra": 1,
            },
            "extra",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_shifts_are_refused_naming_the_field(
    shared: InProcessServer, body: dict[str, Any], field: str
) -> None:
    status, reply = await shared.request(
        "POST",
        "/api/roster/shifts",
        {"specialist_id": await shared.user_id("obstetrician"), **body},
        token=await shared.token("admin"),
    )
    assert (status, reply["code"]) == (422, "invalid_payload")
    assert reply["details"][0]["field"] == field


@pytest.mark.parametrize("username", ["supervisor", "obstetrician", "doctor.a"])
@pytest.mark.asyncio(loop_scope="module")
async def test_only_admins_keep_the_roster(shared: InProcessServer, username: str) -> None:
    status, reply = await shared.request(
        "POST",
        "/api/roster/shifts",
        {
            "specialist_id": await shared.user_id("obstetrician"),
            "specialty": "obstetrics",
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=8)).isoformat(),
        },
        token=await shared.token(username),
    )
    assert (status, reply["code"]) == (403, "forbidden")


async def test_an_admin_removes_a_shift_and_it_is_gone(server: InProcessServer) -> None:
    shift = await server.add_shift("obstetrician", T0, T0 + timedelta(hours=8))
    admin = await server.token("admin")
    status, _ = await server.request("DELETE", f"/api/roster/shifts/{shift['id']}", token=admin)
    assert status == 200
    status, again = await server.request("DELETE", f"/api/roster/shifts/{shift['id']}", token=admin)
    assert (status, again["code"]) == (404, "not_found")


async def test_missed_steps_are_caught_up_within_a_day_and_older_requests_are_left_alone(
    server: InProcessServer,
) -> None:
    await server.add_shift("obstetrician", T0 - timedelta(hours=1), T0 + timedelta(hours=8))
    first = (await server.book())["id"]
    server.clock.advance(timedelta(seconds=1))
    second = (await server.book())["id"]
    # The server "was down": the first request is just past the catch-up window, the second
    # just inside it; only the second one's missed steps go out, in order.
    server.clock.set(T0 + 2 * STEP + CATCH_UP + timedelta(microseconds=500_000))
    sent = await tick(server)
    assert [(c.consult.id, c.notice.step) for c in sent] == [(second, 1), (second, 2)]
    assert first != second


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("username", "status"),
    [("admin", 200), ("supervisor", 200), ("obstetrician", 403), ("doctor.a", 403)],
)
async def test_admins_and_supervisors_see_the_roster_others_do_not(
    shared: InProcessServer, username: str, status: int
) -> None:
    got, _ = await shared.request("GET", "/api/roster/shifts", token=await shared.token(username))
    assert got == status


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=yesterday", "invalid_payload"),
        ("from=2026-11-23T08:00:00", "invalid_payload"),
        ("specialty=surgery", "invalid_payload"),
        ("from=2026-11-01T00:00:00Z&to=2027-02-01T00:00:00Z", "invalid_shift"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "invalid_shift"),
    ],
)
async def test_bad_roster_listings_are_refused_with_their_code(
    shared: InProcessServer, query: str, code: str
) -> None:
    status, reply = await shared.request(
        "GET", f"/api/roster/shifts?{query}", token=await shared.token("admin")
    )
    assert (status, reply["code"]) == (422, code)
