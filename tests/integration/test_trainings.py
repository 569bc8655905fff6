"""Trainings over REST on a real server (SQLite, Alembic-migrated, demo data): scheduling,
who sees what, the lifecycle, admission of trainees with refusals audited, and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from rooms.consults.people import Role
from signaling.passwords import hash_password
from storage.sql.schema import audit_log
from teleconsult.bootstrap import build_repositories
from tests.support.inprocess import InProcessServer

H = timedelta(hours=1)


async def add_trainee(server: InProcessServer, username: str, institution_id: int) -> None:
    assert server.settings is not None
    repos = build_repositories(server.settings)
    try:
        await repos.consults.add_user(
            username,
            username,
            Role.TRAINEE,
            institution_id,
            None,
            hash_password(f"demo-{username}"),
        )
    finally:
        await repos.close()


async def institution_of(server: InProcessServer, username: str) -> int:
    status, me = await server.request("GET", "/api/me", token=await server.token(username))
    assert status == 200
    return int(me["institution_id"])


async def audit_entries(server: InProcessServer, action: str) -> list[Any]:
    assert server.settings is not None
    repos = build_repositories(server.settings)
    try:
        async with repos.database.reading() as conn:
            rows = (await conn.execute(select(audit_log).where(audit_log.c.action == action))).all()
    finally:
        await repos.close()
    return list(rows)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600"})
    await running.start()
    county_a = await institution_of(running, "doctor.a")
    county_b = await institution_of(running, "doctor.b")
    await add_trainee(running, "trainee.a", county_a)
    await add_trainee(running, "trainee.b", county_b)
    yield running
    await running.cleanup()


async def plan(server: InProcessServer, **changes: Any) -> dict[str, Any]:
    now = server.clock.now
    return {
        "title": "新生儿复苏 Neonatal resuscitation",
        "lecturer_ids": [await server.user_id("paediatrician")],
        "starts_at": (now + H).isoformat(),
        "ends_at": (now + 3 * H).isoformat(),
        "audience": {
            "kind": "subtree",
            "institution_ids": [await institution_of(server, "doctor.a")],
        },
        "specialties": ["paediatrics"],
        **changes,
    }


async def schedule(server: InProcessServer, **changes: Any) -> dict[str, Any]:
    status, body = await server.request(
        "POST", "/api/trainings", await plan(server, **changes), token=await server.token("admin")
    )
    assert status == 201, body
    return dict(body)


@pytest.mark.asyncio(loop_scope="module")
async def test_an_admin_schedules_a_training_and_its_audience_sees_it(
    server: InProcessServer,
) -> None:
    made = await schedule(server)
    assert made["status"] == "scheduled"
    assert made["lecturers"][0]["id"] == await server.user_id("paediatrician")
    assert made["audience"]["kind"] == "subtree"
    assert "County A" in made["audience"]["institutions"][0]["name"]
    for username, sees in [
        ("trainee.a", True),
        ("doctor.a", True),
        ("paediatrician", True),
        ("supervisor", True),
        ("trainee.b", False),
        ("doctor.b", False),
        ("obstetrician", False),
    ]:
        token = await server.token(username)
        status, listed = await server.request("GET", "/api/trainings", token=token)
        assert status == 200
        assert (made["id"] in {t["id"] for t in listed["trainings"]}) is sees, username
        status, _ = await server.request("GET", f"/api/trainings/{made['id']}", token=token)
        assert status == (200 if sees else 404), username
    assert await audit_entries(server, "training.scheduled")


@pytest.mark.asyncio(loop_scope="module")
async def test_the_lecturer_starts_and_ends_it_and_the_status_filter_follows(
    server: InProcessServer,
) -> None:
    made = await schedule(server)
    lecturer = await server.token("paediatrician")
    path = f"/api/trainings/{made['id']}"
    status, body = await server.request("POST", f"{path}/cancel", token=lecturer)
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await server.request("POST", f"{path}/start", token=lecturer)
    assert (status, body["status"], body["version"]) == (200, "live", 2)
    status, listed = await server.request(
        "GET", "/api/trainings?status=live", token=await server.token("trainee.a")
    )
    assert made["id"] in {t["id"] for t in listed["trainings"]}
    assert {t["status"] for t in listed["trainings"]} == {"live"}
    status, body = await server.request("POST", f"{path}/start", token=lecturer)
    assert (status, body["code"]) == (409, "illegal_transition")
    status, body = await server.request("POST", f"{path}/end", token=await server.token("admin"))
    assert (status, body["status"]) == (200, "ended")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_trainee_outside_the_target_is_refused_403_and_the_refusal_audited(
    server: InProcessServer,
) -> None:
    made = await schedule(server)
    path = f"/api/trainings/{made['id']}/admission"
    status, body = await server.request("POST", path, token=await server.token("trainee.a"))
    assert (status, body["training"]["id"]) == (200, made["id"])
    status, body = await server.request("POST", path, token=await server.token("trainee.b"))
    assert (status, body["code"]) == (403, "forbidden")
    assert body["message"]
    refused = [
        row
        for row in await audit_entries(server, "training.refused")
        if row.detail["training"] == made["id"]
    ]
    assert [r.actor_id for r in refused] == [await server.user_id("trainee.b")]
    assert refused[0].detail["institution_id"] == await institution_of(server, "doctor.b")
    admitted = [
        row
        for row in await audit_entries(server, "training.admitted")
        if row.detail["training"] == made["id"]
    ]
    assert [r.actor_id for r in admitted] == [await server.user_id("trainee.a")]


@pytest.mark.parametrize("username", ["trainee.a", "doctor.a", "paediatrician"])
@pytest.mark.asyncio(loop_scope="module")
async def test_only_admins_and_supervisors_schedule_trainings(
    server: InProcessServer, username: str
) -> None:
    status, body = await server.request(
        "POST", "/api/trainings", await plan(server), token=await server.token(username)
    )
    assert (status, body["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": "   "}, "bad_title"),
        ({"ends_offset_h": 1}, "end_before_start"),
        ({"ends_offset_h": 12}, "too_long"),
        ({"lecturer_ids": [999999]}, "bad_lecturer"),
        ({"audience": {"kind": "named", "institution_ids": [999999]}}, "unknown_institution"),
        ({"audience": {"kind": "subtree", "institution_ids": [3, 4]}}, "bad_audience"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_training_that_makes_no_sense_is_refused_naming_the_rule(
    server: InProcessServer, changes: dict[str, Any], reason: str
) -> None:
    if "ends_offset_h" in changes:
        changes = {"ends_at": (server.clock.now + changes["ends_offset_h"] * H).isoformat()}
    status, body = await server.request(
        "POST", "/api/trainings", await plan(server, **changes), token=await server.token("admin")
    )
    assert (status, body["code"]) == (422, "invalid_training"), body
    assert body["details"][0]["reason"] == reason
    assert body["message"]


NAIVE_TOMORROW = (datetime.now() + timedelta(days=1)).replace(microsecond=0).isoformat()
"""A start without a UTC offset, a day from now (its value does not matter, its form does)."""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "x" * 201}, "title"),
        ({"lecturer_ids": []}, "lecturer_ids"),
        ({"lecturer_ids": [1, 2, 3, 4, 5, 6]}, "lecturer_ids"),
        ({"starts_at": NAIVE_TOMORROW}, "starts_at"),  # no UTC offset: refused
        ({"audience": {"kind": "county", "institution_ids": [3]}}, "audience.kind"),
        ({"audience": {"kind": "named", "institution_ids": []}}, "audience.institution_ids"),
        ({"specialties": ["surgery"]}, "specialties.0"),
        ({"extra": 1}, "extra"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_malformed_training_is_refused_naming_the_field(
    server: InProcessServer, changes: dict[str, Any], field: str
) -> None:
    status, body = await server.request(
        "POST", "/api/trainings", await plan(server, **changes), token=await server.token("admin")
    )
    assert (status, body["code"]) == (422, "invalid_payload"), body
    assert body["details"][0]["field"] == field


@pytest.mark.parametrize("training_id", ["0" * 32, "nothex", "a" * 33, "A" * 32])
@pytest.mark.asyncio(loop_scope="module")
async def test_an_unknown_or_malformed_training_id_is_not_found(
    server: InProcessServer, training_id: str
) -> None:
    status, body = await server.request(
        "POST", f"/api/trainings/{training_id}/admission", token=await server.token("trainee.a")
    )
    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.asyncio(loop_scope="module")
async def test_without_a_token_nothing_is_shown(server: InProcessServer) -> None:
    status, body = await server.request("GET", "/api/trainings")
    assert (status, body["code"]) == (401, "token_missing")


@pytest.mark.asyncio(loop_scope="module")
async def test_attendance_is_counted_for_joins_leaves_and_reloads(
    server: InProcessServer,
) -> None:
    made = await schedule(server)
    path = f"/api/trainings/{made['id']}"
    status, body = await server.request(
        "POST", f"{path}/heartbeat", token=await server.token("trainee.a")
    )
    assert (status, body["live"]) == (200, False)  # not live yet: nothing counted
    await server.request("POST", f"{path}/start", token=await server.token("admin"))
    start = server.clock.now
    second = timedelta(seconds=1)

    async def beat(username: str, at_s: int) -> None:
        server.clock.set(start + at_s * second)
        status, reply = await server.request(
            "POST", f"{path}/heartbeat", token=await server.token(username)
        )
        assert (status, reply["live"], reply["next_beat_s"]) == (200, True, 30), reply

    # trainee.a watches 10 minutes, reloading the page at 5 min (an extra beat at once);
    # doctor.a watches 2 minutes, leaves, comes back 5 minutes later for 1 minute.
    for at in range(0, 601, 30):
        await beat("trainee.a", at)
        if at == 300:
            await beat("trainee.a", 306)
    for at in [0, 30, 60, 90, 120, 420, 450, 480]:
        await beat("doctor.a", at)
    status, body = await server.request(
        "POST", f"{path}/heartbeat", token=await server.token("trainee.b")
    )
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await server.request(
        "GET", f"{path}/attendance", token=await server.token("trainee.a")
    )
    assert (status, body["code"]) == (403, "forbidden")  # only organisers and lecturers
    await server.request("POST", f"{path}/end", token=await server.token("admin"))
    status, body = await server.request(
        "GET", f"{path}/attendance", token=await server.token("admin")
    )
    assert status == 200, body
    minutes = {a["person"]["id"]: a["minutes"] for a in body["attendees"]}
    assert minutes == {
        await server.user_id("trainee.a"): 10.0,
        await server.user_id("doctor.a"): 3.0,
    }
    assert body["people"] == 2 and body["hours"] == pytest.approx(13 / 60, abs=1e-3)
    assert "County A" in body["attendees"][0]["institution"]["name"]
