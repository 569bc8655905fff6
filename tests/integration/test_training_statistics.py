"""Training figures in the statistics on a real server: two trainings watched by people of two
counties (attendance from the players' heartbeats), then the JSON and the CSV per month and
attending institution, as a province supervisor and as a county's supervisor."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio

from rooms.consults.people import Role
from rooms.reporting.statistics import Month
from signaling.passwords import hash_password
from teleconsult.bootstrap import build_repositories
from tests.integration.test_trainings import (
    add_trainee,
    audit_entries,
    institution_of,
    schedule,
)
from tests.support.inprocess import InProcessServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECOND = timedelta(seconds=1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600"})
    await running.start()
    county_b = await institution_of(running, "doctor.b")
    await add_trainee(running, "trainee.a", await institution_of(running, "doctor.a"))
    await add_trainee(running, "trainee.b", county_b)
    assert running.settings is not None
    repos = build_repositories(running.settings)
    try:
        await repos.consults.add_user(
            "county.supervisor.b",
            "County B supervisor",
            Role.SUPERVISOR,
            county_b,
            None,
            hash_password("demo-county.supervisor.b"),
        )
    finally:
        await repos.close()
    yield running
    await running.cleanup()


async def held(server: InProcessServer, minutes: dict[str, int], **changes: Any) -> str:
    """A training started, each person beating every 30 s for their minutes, then ended."""
    made = await schedule(server, **changes)
    path = f"/api/trainings/{made['id']}"
    admin = await server.token("admin")
    assert (await server.request("POST", f"{path}/start", token=admin))[0] == 200
    start = server.clock.now
    for username, watched in minutes.items():
        token = await server.token(username)
        for at in range(0, watched * 60 + 1, 30):
            server.clock.set(start + at * SECOND)
            status, body = await server.request("POST", f"{path}/heartbeat", token=token)
            assert (status, body["live"]) == (200, True), body
    server.clock.set(start + 3600 * SECOND)
    assert (await server.request("POST", f"{path}/end", token=admin))[0] == 200
    return str(made["id"])


async def test_trainings_held_trainees_and_hours_per_month_and_institution(
    server: InProcessServer,
) -> None:
    county_a = await institution_of(server, "doctor.a")
    county_b = await institution_of(server, "doctor.b")
    month = Month.of(server.clock.now + timedelta(hours=1), ZoneInfo("Asia/Shanghai"))
    await held(server, {"trainee.a": 10, "doctor.a": 2})
    both = {"audience": {"kind": "named", "institution_ids": [county_a, county_b]}}
    await held(server, {"doctor.a": 5, "trainee.b": 4}, **both)
    await schedule(server)  # scheduled, never held: not counted

    query = f"from={month}&to={month}"
    status, body = await server.request(
        "GET", f"/api/statistics?{query}", token=await server.token("supervisor")
    )
    assert status == 200, body
    trainings = body["trainings"]
    rows = {r["institution_id"]: r for r in trainings["rows"]}
    assert set(rows) == {county_a, county_b}
    a, b = rows[county_a], rows[county_b]
    assert (a["month"], a["trainings"], a["trainees"]) == (str(month), 2, 2)
    assert a["attendance_hours"] == round(17 / 60, 2)
    assert "County A" in a["institution_name"]
    assert (b["trainings"], b["trainees"], b["attendance_hours"]) == (1, 1, round(4 / 60, 2))
    overall = trainings["overall"]
    assert (overall["trainings"], overall["trainees"]) == (2, 3)
    assert overall["attendance_hours"] == round(21 / 60, 2)
    assert [m["month"] for m in trainings["months"]] == [str(month)]
    assert trainings["months"][0]["trainees"] == 3

    # A county's supervisor counts their county's people only.
    status, body = await server.request(
        "GET", f"/api/statistics?{query}", token=await server.token("county.supervisor.b")
    )
    assert [r["institution_id"] for r in body["trainings"]["rows"]] == [county_b]
    assert body["trainings"]["overall"]["trainings"] == 1

    # The CSV: BOM, header, one row per (month, institution), audited.
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/api/statistics/trainings.csv?{query}",
            headers={"Authorization": f"Bearer {await server.token('supervisor')}"},
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        text = await response.text()
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table[0] == ["month", "institution", "trainings", "trainees", "attendance_hours"]
    assert sorted(table[1:], key=lambda r: r[1]) == sorted(
        [
            [str(month), a["institution_name"], "2", "2", f"{17 / 60:.2f}"],
            [str(month), b["institution_name"], "1", "1", f"{4 / 60:.2f}"],
        ],
        key=lambda r: r[1],
    )
    exported = await audit_entries(server, "statistics.exported")
    assert exported[-1].detail["kind"] == "trainings"
    assert exported[-1].detail["rows"] == 2


async def test_the_trainings_csv_refuses_what_the_statistics_refuse(
    server: InProcessServer,
) -> None:
    month = Month.of(server.clock.now, ZoneInfo("Asia/Shanghai"))
    for username, query, code in [
        ("doctor.a", f"from={month}&to={month}", "forbidden"),
        ("supervisor", f"from={month.year}-13&to={month}", "invalid_period"),
        ("supervisor", f"from={month}", "invalid_payload"),
    ]:
        status, body = await server.request(
            "GET", f"/api/statistics/trainings.csv?{query}", token=await server.token(username)
        )
        assert (status, body["code"]) in {(403, code), (422, code)}, body
