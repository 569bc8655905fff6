"""Who is told what, live: new requests, requests taken by a colleague, status changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.support.peer import Participant, eventually
from tests.support.server import RunningServer


def add_second_obstetrician(server: RunningServer) -> None:
    """The demo's backup obstetrician, put on primary duty now too, so step 0 reaches them."""
    reply = server.request(
        "GET", "/api/specialists?specialty=obstetrics", token=server.token("obstetrician2")
    )
    me = server.request("GET", "/api/me", token=server.token("obstetrician2")).body
    assert any(s["id"] == me["id"] for s in reply.body["specialists"])
    now = datetime.now(UTC)
    added = server.request(
        "POST",
        "/api/roster/shifts",
        {
            "specialist_id": me["id"],
            "specialty": "obstetrics",
            "start": (now - timedelta(minutes=1)).isoformat(),
            "end": (now + timedelta(hours=2)).isoformat(),
            "tier": 0,
        },
        token=server.token("admin"),
    )
    assert added.status == 201, added.body


async def test_a_request_taken_by_a_colleague_leaves_the_others_with_only_its_id(
    server: RunningServer,
) -> None:
    add_second_obstetrician(server)
    colleague, other_county, paediatrician = (
        Participant("obstetrician2"),
        Participant("doctor.b"),
        Participant("paed"),
    )
    await colleague.connect(server.url, server.token("obstetrician2"))
    await other_county.connect(server.url, server.token("doctor.b"))
    await paediatrician.connect(server.url, server.token("paediatrician"))
    try:
        booked = server.book(accept=False)
        await eventually(
            lambda: any(
                e["consult"]["id"] == booked["id"]
                for e in colleague.events_named("consult-requested")
            )
        )
        server.request(
            "POST", f"/api/consults/{booked['id']}/accept", {}, token=server.token("obstetrician")
        )
        await eventually(lambda: colleague.events_named("request-closed"))
        assert colleague.events_named("request-closed") == [
            {"consult_id": booked["id"], "status": "accepted"}
        ]
        await asyncio.sleep(0.5)  # give any wrongly addressed event time to arrive
        assert not [
            e for e in colleague.events_named("consult-state") if e["consult"]["id"] == booked["id"]
        ], "details of a colleague's consult"
        for outsider in (other_county, paediatrician):
            seen = [name for name, data in outsider.events if booked["id"] in str(data)]
            assert seen == [], f"{outsider.name} was told about another's consult: {seen}"
    finally:
        for p in (colleague, other_county, paediatrician):
            await p.close()


async def test_the_booking_institution_hears_of_acceptance_live(server: RunningServer) -> None:
    doctor = Participant("doctor.a")
    await doctor.connect(server.url, server.token("doctor.a"))
    try:
        booked = server.book(accept=False)
        server.request(
            "POST", f"/api/consults/{booked['id']}/accept", {}, token=server.token("obstetrician")
        )
        await eventually(
            lambda: any(
                e["consult"]["id"] == booked["id"] and e["consult"]["status"] == "accepted"
                for e in doctor.events_named("consult-state")
            )
        )
    finally:
        await doctor.close()
