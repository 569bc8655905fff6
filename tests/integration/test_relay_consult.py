"""Consults on the relay through the real server: path changes, three parties, recording.

Each participant is a python-socketio client with real aiortc publish and subscribe
connections to the server's relay (`tests/support/relay_peer.py`). Recordings are real files
decoded with PyAV.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def relay_server() -> Iterator[RunningServer]:
    """A server of its own: these tests kill and restart it."""
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as running:
        running.add_colleague_of("doctor.a", "doctor.a2")
        yield running


async def joined(
    server: RunningServer, people: list[RelayParticipant], consult_id: str, username: str
) -> RelayParticipant:
    person = RelayParticipant(username)
    people.append(person)
    await person.connect(server.url, server.token(username))
    await person.join(consult_id)
    return person


def fetch(server: RunningServer, url: str, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(server.url + url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def decoded(path: Path) -> tuple[int, float]:
    """Frames decoded from a recording, and the span of their timestamps in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        times = [float(frame.time) for frame in container.decode(stream) if frame.time is not None]
    return len(times), (max(times) - min(times)) if times else 0.0


async def test_a_third_participant_moves_the_consult_to_the_relay_and_everyone_sees_everyone(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    exam_room = await joined(relay_server, people, consult["id"], "doctor.a")
    specialist = await joined(relay_server, people, consult["id"], "obstetrician")
    assert specialist.join_ack["media_path"] == "p2p"
    colleague = await joined(relay_server, people, consult["id"], "doctor.a2")
    assert colleague.join_ack["media_path"] == "relay"
    assert colleague.join_ack["media_path_reason"] == "participants"
    await eventually(lambda: exam_room.events_named("media-path"))
    assert exam_room.events_named("media-path")[0]["reason"] == "participants"

    for person in people:
        await person.publish()
    await eventually(
        lambda: all(
            a.frames_from(b, "camera") >= 10 and a.frames_from(b, "microphone") >= 10
            for a in people
            for b in people
            if a is not b
        ),
        within=40,
    )
    # Each receives the other two, named by peer and source.
    described = {(t["peer_id"], t["source"]) for t in exam_room.tracks.values()}
    assert described == {
        (specialist.peer_id, "camera"),
        (specialist.peer_id, "microphone"),
        (colleague.peer_id, "camera"),
        (colleague.peer_id, "microphone"),
    }
    # A leaver's tracks are taken away from the others' subscriptions.
    assert (await colleague.call("leave", {"consult_id": consult["id"]}))["ok"]
    await eventually(
        lambda: all(t["peer_id"] != colleague.peer_id for t in exam_room.tracks.values())
    )


async def test_relay_events_are_refused_on_a_peer_to_peer_consult(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    exam_room = await joined(relay_server, people, consult["id"], "doctor.a")
    reply = await exam_room.call(
        "relay-publish",
        {
            "consult_id": consult["id"],
            "description": {"type": "offer", "sdp": "v=0\r\n"},
            "sources": {"0": "camera"},
        },
    )
    assert reply["ok"] is False
    assert reply["error"]["code"] in {"invalid_sdp", "illegal_transition"}


async def test_a_failed_direct_path_moves_the_consult_to_the_relay(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    exam_room = await joined(relay_server, people, consult["id"], "doctor.a")
    specialist = await joined(relay_server, people, consult["id"], "obstetrician")
    reply = await exam_room.report_p2p_failed(specialist.peer_id)
    assert reply == {"ok": True, "media_path": "relay", "ignored": None}
    await eventually(lambda: specialist.events_named("media-path"))
    assert specialist.events_named("media-path")[0] == {
        "consult_id": consult["id"],
        "path": "relay",
        "reason": "p2p_failed",
    }


async def start_consented_recording(
    consult_id: str, exam_room: RelayParticipant, specialist: RelayParticipant
) -> dict[str, Any]:
    started = await specialist.call("recording-start", {"consult_id": consult_id})
    assert started["ok"], started
    assert started["recording"]["state"] == "awaiting_consent"
    await eventually(lambda: exam_room.events_named("recording-consent-requested"))
    consent = await exam_room.call("recording-consent", {"consult_id": consult_id, "granted": True})
    assert consent["ok"] and consent["recording"]["state"] == "recording", consent
    return consent["recording"]


async def test_a_consented_recording_decodes_to_its_duration_and_is_served_to_permitted_users(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    exam_room = await joined(relay_server, people, consult["id"], "doctor.a")
    specialist = await joined(relay_server, people, consult["id"], "obstetrician")
    # Only the assigned specialist may start a recording.
    refused = await exam_room.call("recording-start", {"consult_id": consult["id"]})
    assert refused["error"]["code"] == "forbidden"

    await start_consented_recording(consult["id"], exam_room, specialist)
    began = time.monotonic()
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
    await eventually(
        lambda: any(
            e["recording"]["state"] == "recording"
            for e in exam_room.events_named("recording-state")
        )
    )
    await asyncio.sleep(4)
    stopped = await specialist.call("recording-stop", {"consult_id": consult["id"]})
    assert stopped["ok"] and stopped["recording"]["state"] == "off"
    elapsed = time.monotonic() - began

    doctor = relay_server.token("doctor.a")

    def listed() -> list[dict[str, Any]]:
        reply = relay_server.request(
            "GET", f"/api/consults/{consult['id']}/recordings", token=doctor
        )
        assert reply.status == 200, reply.body
        recordings: list[dict[str, Any]] = reply.body["recordings"]
        return recordings

    await eventually(lambda: len(listed()) == 4, within=30)
    recordings = listed()
    assert {(r["kind"], r["source"]) for r in recordings} == {
        ("video", "camera"),
        ("audio", "microphone"),
    }
    videos = [r for r in recordings if r["kind"] == "video"]
    for rec in videos:
        assert rec["codec"] == "VP8" and rec["container"] == "webm"
        assert not rec["recovered"]
        path = relay_server.data_dir / "media" / "recordings" / consult["id"]
        files = list(path.glob(f"{rec['id']}.*"))
        assert len(files) == 1, files
        frames, span = decoded(files[0])
        expected = elapsed - rec["started_offset_s"]
        assert abs(rec["duration_s"] - span) <= 0.5
        assert abs(span - expected) <= 0.5, (span, expected)
        assert frames >= 25 * span * 0.9

    # Playback: a link for a permitted user, byte ranges, audited; 403 for another county.
    rec = videos[0]
    grant = relay_server.request("POST", f"/api/recordings/{rec['id']}/playback", {}, token=doctor)
    assert grant.status == 200, grant.body
    status, headers, body = fetch(relay_server, grant.body["url"], {"Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100
    assert headers["Content-Range"] == f"bytes 0-99/{rec['bytes']}"
    assert headers["Content-Type"] == "video/webm"
    status, _headers, whole = fetch(relay_server, grant.body["url"])
    assert status == 200 and len(whole) == rec["bytes"]
    status, headers, _ = fetch(
        relay_server, grant.body["url"], {"Range": f"bytes={rec['bytes'] + 10}-"}
    )
    assert status == 416 and headers["Content-Range"] == f"bytes */{rec['bytes']}"

    other_county = relay_server.token("doctor.b")
    refused_grant = relay_server.request(
        "POST", f"/api/recordings/{rec['id']}/playback", {}, token=other_county
    )
    assert refused_grant.status == 403 and refused_grant.body["code"] == "forbidden"
    listing = relay_server.request(
        "GET", f"/api/consults/{consult['id']}/recordings", token=other_county
    )
    assert listing.status == 403
    forged = grant.body["url"].rsplit("access=", 1)[0] + "access=not-a-token"
    status, _h, body = fetch(relay_server, forged)
    assert status == 401

    trail = relay_server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=relay_server.token("supervisor")
    ).body["entries"]
    actions = [e["action"] for e in trail]
    for action in (
        "recording.requested",
        "recording.consent",
        "consult.media_path",
        "recording.started",
        "recording.track_started",
        "recording.finalized",
        "recording.playback_granted",
        "recording.accessed",
    ):
        assert action in actions, (action, actions)
    accessed = [e for e in trail if e["action"] == "recording.accessed"]
    assert [e["detail"]["range"] for e in accessed] == [[0, 99], [0, rec["bytes"] - 1]]


async def test_a_recording_cut_by_sigkill_is_recovered_finalized_and_playable_after_restart(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    exam_room = await joined(relay_server, people, consult["id"], "doctor.a")
    specialist = await joined(relay_server, people, consult["id"], "obstetrician")
    await start_consented_recording(consult["id"], exam_room, specialist)
    await exam_room.publish()
    await specialist.publish()
    await eventually(lambda: specialist.frames_from(exam_room, "camera") >= 10, within=40)
    await asyncio.sleep(4)
    killed_at = time.monotonic()
    relay_server.kill()
    for person in people:
        await person.close()
    people.clear()
    relay_server.launch()

    doctor = relay_server.token("doctor.a")
    reply = relay_server.request("GET", f"/api/consults/{consult['id']}/recordings", token=doctor)
    assert reply.status == 200, reply.body
    recordings = reply.body["recordings"]
    assert {(r["kind"], r["recovered"]) for r in recordings} == {("video", True), ("audio", True)}
    for rec in recordings:
        files = list(
            (relay_server.data_dir / "media" / "recordings" / consult["id"]).glob(f"{rec['id']}.*")
        )
        assert len(files) == 1
        frames, span = decoded(files[0])
        assert frames > 0
        assert abs(rec["duration_s"] - span) <= 0.5
    trail = relay_server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=relay_server.token("supervisor")
    ).body["entries"]
    assert "recording.recovered" in [e["action"] for e in trail]
    assert killed_at  # the kill happened after ≥ 4 s of recording
    assert not list((relay_server.data_dir / "media" / "partial").rglob("*.part"))
    # Back in the consult, both pages are told the recording was cut off; neither is told it
    # is still recording.
    for username in ("doctor.a", "obstetrician"):
        person = await joined(relay_server, people, consult["id"], username)
        assert person.join_ack["recording"]["state"] == "off"
        assert person.join_ack["recording"]["notice"] == "interrupted"


async def h264_only_offer() -> tuple[str, str]:
    """A well-formed publish offer whose video cannot be VP8 (the consult's codec)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
    from aiortc.mediastreams import VideoStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        )
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp, str(transceiver.mid)
    finally:
        await pc.close()


async def test_bad_relay_and_recording_events_get_clear_errors_and_change_nothing(
    relay_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = relay_server.book()
    cid = consult["id"]
    exam_room = await joined(relay_server, people, cid, "doctor.a")
    specialist = await joined(relay_server, people, cid, "obstetrician")
    assert (await exam_room.report_p2p_failed(specialist.peer_id))["media_path"] == "relay"

    async def code(participant: RelayParticipant, event: str, payload: Any) -> str:
        reply = await participant.call(event, payload)
        assert reply["ok"] is False, reply
        return str(reply["error"]["code"])

    sdp, mid = await h264_only_offer()
    publish = {"consult_id": cid, "description": {"type": "offer", "sdp": sdp}}
    assert await code(exam_room, "relay-publish", {**publish, "sources": {mid: "camera"}}) == (
        "media_refused"
    )
    assert (
        await code(exam_room, "relay-publish", {**publish, "sources": {mid: "microwave"}})
        == "invalid_payload"
    )
    assert (
        await code(
            exam_room, "relay-publish", {**publish, "sources": {"0": "camera", "1": "camera"}}
        )
        == "invalid_payload"
    )
    huge = {"type": "offer", "sdp": sdp + "a=x-padding:" + "x" * 60_000 + "\r\n"}
    assert await code(
        exam_room, "relay-publish", {**publish, "description": huge, "sources": {mid: "camera"}}
    ) in {"sdp_too_large", "message_too_large"}
    garbage = {"type": "offer", "sdp": "v=0\r\nthis is not sdp"}
    assert (
        await code(exam_room, "relay-publish", {**publish, "description": garbage, "sources": {}})
        == "invalid_sdp"
    )
    assert (
        await code(
            exam_room,
            "relay-candidate",
            {"consult_id": cid, "leg": "publish", "candidate": {"candidate": "rm -rf /"}},
        )
        == "invalid_sdp"
    )
    assert (
        await code(
            exam_room,
            "relay-candidate",
            {"consult_id": cid, "leg": "sideways", "candidate": {"candidate": "candidate:1"}},
        )
        == "invalid_payload"
    )
    assert await code(exam_room, "recording-consent", {"consult_id": cid, "granted": True}) == (
        "illegal_transition"
    )
    assert await code(specialist, "recording-stop", {"consult_id": cid}) == "illegal_transition"
    assert await code(exam_room, "recording-start", {"consult_id": cid}) == "forbidden"
    assert await code(specialist, "recording-start", {"consult_id": "nope"}) == "invalid_payload"
    assert await code(specialist, "recording-start", {"consult_id": cid, "extra": 1}) == (
        "invalid_payload"
    )

    outsider = RelayParticipant("doctor.b")
    people.append(outsider)
    await outsider.connect(relay_server.url, relay_server.token("doctor.b"))
    assert await code(outsider, "recording-start", {"consult_id": cid}) == "not_in_consult"
    assert await code(outsider, "relay-publish", {**publish, "sources": {mid: "camera"}}) == (
        "not_in_consult"
    )

    # Nothing changed: still on the relay, not recording, and a good publish still works.
    state = relay_server.request(
        "GET", f"/api/consults/{cid}", token=relay_server.token("doctor.a")
    )
    assert state.body["media_mode"] == "relay" and state.body["status"] == "live"
    assert (await exam_room.publish())["ok"]
    assert not any(
        e["recording"]["state"] != "off" for e in exam_room.events_named("recording-state")
    )


async def test_a_server_on_uvloop_relays_a_three_party_consult(
    people: list[RelayParticipant],
) -> None:
    """EVENT_LOOP=uvloop (the default is asyncio, which every other test here runs on)."""
    with RunningServer(
        env_overrides={"EVENT_LOOP": "uvloop", "JOINS_PER_MINUTE": "10000"}
    ) as server:
        assert "(event loop: uvloop)" in server.log_path.read_text()
        server.add_colleague_of("doctor.a", "doctor.a2")
        consult = server.book()
        for username in ("doctor.a", "obstetrician", "doctor.a2"):
            await joined(server, people, consult["id"], username)
        assert people[2].join_ack["media_path"] == "relay"
        for person in people:
            await person.publish()
        await eventually(
            lambda: all(
                a.frames_from(b, "camera") >= 10 and a.frames_from(b, "microphone") >= 10
                for a in people
                for b in people
                if a is not b
            ),
            within=40,
        )
        for person in people:
            await person.close()
        people.clear()
