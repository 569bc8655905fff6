"""A booked consult end to end: two aiortc participants meet through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.peer import Participant, eventually
from tests.support.server import RunningServer


@pytest.fixture
async def exam_room_and_specialist(
    server: RunningServer,
) -> AsyncIterator[tuple[Participant, Participant]]:
    exam_room, specialist = Participant("exam room"), Participant("specialist")
    yield exam_room, specialist
    await exam_room.close()
    await specialist.close()


@pytest.fixture
async def live_consult(
    server: RunningServer, exam_room_and_specialist: tuple[Participant, Participant]
) -> tuple[Participant, Participant, dict[str, Any]]:
    """Doctor A and the obstetrician, both joined to a fresh accepted consult (now live)."""
    exam_room, specialist = exam_room_and_specialist
    consult = server.book()
    await exam_room.connect(server.url, server.token("doctor.a"))
    await specialist.connect(server.url, server.token("obstetrician"))
    assert (await exam_room.join(consult["id"]))["ok"]
    assert (await specialist.join(consult["id"]))["consult"]["status"] == "live"
    return exam_room, specialist, consult


async def test_booked_consult_gives_two_way_media_through_relayed_signaling(
    server: RunningServer, exam_room_and_specialist: tuple[Participant, Participant]
) -> None:
    exam_room, specialist = exam_room_and_specialist
    await specialist.connect(server.url, server.token("obstetrician"))
    await exam_room.connect(server.url, server.token("doctor.a"))

    consult = server.book(accept=False)
    await eventually(
        lambda: any(
            e["consult"]["id"] == consult["id"]
            for e in specialist.events_named("consult-requested")
        )
    )
    accepted = server.request(
        "POST", f"/api/consults/{consult['id']}/accept", {}, token=server.token("obstetrician")
    )
    assert accepted.body["status"] == "accepted"

    first = await exam_room.join(consult["id"])
    assert first["ok"] and first["peers"] == [] and first["consult"]["status"] == "waiting"
    assert first["ice_servers"] == []
    second = await specialist.join(consult["id"])
    assert second["ok"] and second["consult"]["status"] == "live"
    assert [p["peer_id"] for p in second["peers"]] == [exam_room.peer_id]
    await eventually(lambda: exam_room.events_named("peer-joined"))
    assert exam_room.events_named("peer-joined")[0]["peer"]["user"]["role"] == "specialist"

    await specialist.offer_to(exam_room.peer_id)
    await eventually(
        lambda: (
            exam_room.video_frames.get(specialist.peer_id, 0) >= 10
            and specialist.video_frames.get(exam_room.peer_id, 0) >= 10
        ),
        within=30,
    )
    assert exam_room.audio_frames[specialist.peer_id] > 0
    assert specialist.audio_frames[exam_room.peer_id] > 0

    left = await specialist.call("leave", {"consult_id": consult["id"]})
    assert left == {"ok": True}
    await eventually(lambda: exam_room.events_named("peer-left"))
    assert exam_room.events_named("peer-left")[0] == {
        "consult_id": consult["id"],
        "peer_id": specialist.peer_id,
        "reason": "left",
    }
    still = server.request("GET", f"/api/consults/{consult['id']}", token=server.token("doctor.a"))
    assert still.body["status"] == "live"


async def test_a_dropped_connection_is_seen_as_peer_left_disconnected(
    live_consult: tuple[Participant, Participant, dict[str, Any]],
) -> None:
    exam_room, specialist, _ = live_consult
    gone = specialist.peer_id
    await specialist.sio.disconnect()
    await eventually(lambda: exam_room.events_named("peer-left"))
    assert exam_room.events_named("peer-left")[0]["peer_id"] == gone
    assert exam_room.events_named("peer-left")[0]["reason"] == "disconnected"


async def test_ending_the_consult_tells_everyone_in_it(
    server: RunningServer, live_consult: tuple[Participant, Participant, dict[str, Any]]
) -> None:
    exam_room, specialist, consult = live_consult
    ended = server.request(
        "POST",
        f"/api/consults/{consult['id']}/end",
        {"conclusion": "监测血压 monitor blood pressure"},
        token=server.token("obstetrician"),
    )
    assert ended.status == 200 and ended.body["status"] == "ended"

    def saw_ended(p: Participant) -> bool:
        return any(e["consult"]["status"] == "ended" for e in p.events_named("consult-state"))

    await eventually(lambda: saw_ended(exam_room) and saw_ended(specialist))
    rejoin = await exam_room.join(consult["id"])
    assert rejoin["ok"] is False and rejoin["error"]["code"] == "illegal_transition"
    trail = server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=server.token("supervisor")
    )
    assert [e["action"] for e in trail.body["entries"]] == [
        "consult.book",
        "consult.notified",  # step 0: who the roster told (docs/roster-and-escalation.md)
        "consult.accept",
        "consult.open_room",
        "consult.start",
        "consult.end",
    ]


async def test_both_sides_joining_at_the_same_moment_both_get_in(
    server: RunningServer, exam_room_and_specialist: tuple[Participant, Participant]
) -> None:
    exam_room, specialist = exam_room_and_specialist
    for _ in range(5):
        consult = server.book()
        await exam_room.connect(server.url, server.token("doctor.a"))
        await specialist.connect(server.url, server.token("obstetrician"))
        replies = await asyncio.gather(
            exam_room.join(consult["id"]), specialist.join(consult["id"])
        )
        assert [r["ok"] for r in replies] == [True, True], replies
        now = server.request(
            "GET", f"/api/consults/{consult['id']}", token=server.token("doctor.a")
        )
        assert now.body["status"] == "live"
        await exam_room.sio.disconnect()
        await specialist.sio.disconnect()


async def test_a_client_that_vanishes_mid_join_leaves_no_ghost_in_the_room(
    server: RunningServer, exam_room_and_specialist: tuple[Participant, Participant]
) -> None:
    _, specialist = exam_room_and_specialist
    consult = server.book()
    for _ in range(5):
        vanishing = Participant("vanishing exam room")
        await vanishing.connect(server.url, server.token("doctor.a"))
        await vanishing.sio.emit("join", {"consult_id": consult["id"]})  # no wait for the ack
        await vanishing.sio.disconnect()
        await vanishing.close()
    await asyncio.sleep(0.5)
    await specialist.connect(server.url, server.token("obstetrician"))
    reply = await specialist.join(consult["id"])
    assert reply["ok"] and reply["peers"] == [], reply["peers"]
    assert reply["consult"]["status"] == "waiting"
