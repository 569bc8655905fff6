"""The relay's own view of call quality: on a relayed consult with two real aiortc participants
publishing, the server samples its connections with each participant (bytes in and out, RTCP
receiver reports, NACK/PLI counts) and stores them as `source: "relay"` buckets beside what the
pages report; on a recorded consult both sit on the review timeline of the recording."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.test_quality_telemetry import report
from tests.integration.test_relay_consult import joined, start_consented_recording
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer

RELAY_VIEW_WITHIN_S = 60.0
"""A baseline reading, a second one 10 s later, then the bucket's flush: about 30 s."""


async def relay_buckets(server: RunningServer, consult_id: str, users: set[int]) -> list[Any]:
    token = server.token("supervisor")
    deadline = asyncio.get_running_loop().time() + RELAY_VIEW_WITHIN_S
    while True:
        reply = await asyncio.to_thread(
            server.request, "GET", f"/api/consults/{consult_id}/quality", None, token
        )
        assert reply.status == 200, reply.body
        found = [b for b in reply.body["buckets"] if b["source"] == "relay"]
        if {b["participant"]["id"] for b in found if b["bitrate_in_kbps"] > 0} >= users:
            return found
        assert asyncio.get_running_loop().time() < deadline, reply.body["buckets"]
        await asyncio.sleep(1.0)


async def test_the_relay_adds_its_view_of_each_participants_legs(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = server.book()
    exam_room = await joined(server, people, consult["id"], "doctor.a")
    specialist = await joined(server, people, consult["id"], "obstetrician")
    await start_consented_recording(consult["id"], exam_room, specialist)  # onto the relay
    await eventually(lambda: specialist.events_named("media-path"))
    await exam_room.publish()
    await specialist.publish()
    await eventually(
        lambda: (
            exam_room.frames_from(specialist, "camera") >= 10
            and specialist.frames_from(exam_room, "camera") >= 10
        ),
        within=40,
    )
    # A page's report beside it: the two sources are kept apart.
    ack = await exam_room.call("quality-report", report(consult["id"], path="relay"))
    assert ack["ok"], ack
    doctor = exam_room.join_ack["consult"]["requesting_doctor"]["id"]
    obstetrician = exam_room.join_ack["consult"]["specialist"]["id"]
    found = await relay_buckets(server, consult["id"], {doctor, obstetrician})
    for bucket in found:
        assert bucket["path"] == "relay"
        assert 0 <= bucket["loss_pct"] <= 100
    # Their browsers' RTCP receiver reports on what the relay sent give the round trip.
    assert any(b["rtt_ms"] is not None and b["jitter_ms"] is not None for b in found), found
    sending = [b for b in found if b["bitrate_out_kbps"] > 0]
    assert {b["participant"]["id"] for b in sending} == {doctor, obstetrician}, found
    stopped = await specialist.call("recording-stop", {"consult_id": consult["id"]})
    assert stopped["ok"], stopped

    # Recorded: the page's bucket and the relay's sit on the review timeline of the recording.
    supervisor = server.token("supervisor")

    def quality_timeline() -> dict[str, Any]:
        body: dict[str, Any] = server.request(
            "GET", f"/api/consults/{consult['id']}/quality", token=supervisor
        ).body
        return body

    # The session shows once its tracks are finalized (it failed at once under load twice).
    await eventually(lambda: len(quality_timeline()["sessions"]) == 1, within=20)
    timeline = quality_timeline()
    assert timeline["duration_s"] > 0 and len(timeline["sessions"]) == 1, timeline
    page = next(b for b in timeline["buckets"] if b["source"] == "client")
    assert page["session"] == 0
    assert 0 <= page["at_s"] <= timeline["duration_s"]
    assert all(b["at_s"] is not None for b in timeline["buckets"] if b["source"] == "relay")
