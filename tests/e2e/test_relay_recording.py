"""The relay path and recording in real browsers: consent on screen, the indicator on every page,
video through the server's relay, then the recording listed on the consult and played back, and
refused to a doctor of another county. Also: a direct path that cannot connect falls back to the
relay by itself."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.browser import Client
from tests.e2e.flows import (
    cuttable_sockets,
    end_consult,
    open_call_link,
    wait_for_remote_video,
    wait_until_live,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# Mark each remote <video> and its current stream, so that we can wait for a *new* stream (from
# the relay) in the *same* tile: moving to the relay keeps showing the people as they were.
MARK_STREAMS = """() => {
  window.__e2eTiles = [...document.querySelectorAll('[data-testid="remote-video"]')];
  window.__e2eBefore = new Map(window.__e2eTiles.map((v) => [v, v.srcObject]));
}"""
NEW_STREAMS_SAME_TILES = """() => {
  const videos = [...document.querySelectorAll('[data-testid="remote-video"]')];
  const before = window.__e2eBefore;
  return videos.length === before.size && videos.every((v) => before.has(v))
    && videos.every((v) => v.srcObject && v.srcObject !== before.get(v));
}"""
# The played-back recording shows real pictures, with a known length.
PLAYER_SHOWS_VIDEO = """() => {
  const v = document.querySelector('[data-testid="review-player"] video');
  return !!v && v.videoWidth > 0 && v.duration > 0 && Number.isFinite(v.duration);
}"""


def recordings_of(server: RunningServer, consult_id: str, username: str) -> Any:
    return server.request(
        "GET", f"/api/consults/{consult_id}/recordings", token=server.token(username)
    )


def wait_for_recordings(
    server: RunningServer, consult_id: str, within_s: float, sources: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The finalized recordings of the consult, once both participants' camera and microphone
    files (and one of each of `sources`) are listed: files are finalized one by one."""
    deadline = time.monotonic() + within_s
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        reply = recordings_of(server, consult_id, "doctor.a")
        assert reply.status == 200, reply.body
        found = reply.body["recordings"]
        people = {r["participant"]["id"] for r in found}
        tracks = {(r["participant"]["id"], r["source"]) for r in found}
        both = len(people) == 2 and all(
            (person, source) in tracks for person in people for source in ("camera", "microphone")
        )
        if both and sources <= {r["source"] for r in found}:
            return found
        time.sleep(0.5)
    raise AssertionError(f"recordings not listed within {within_s}s: {found}")


def doctor_of_another_county(server: RunningServer) -> str:
    """A fresh exam-room doctor at County B (made with the CLI, as an operator would); a token."""
    listed = server.cli("institution", "list")
    assert listed.returncode == 0, listed.stderr
    county_b = next(line for line in listed.stdout.splitlines() if "County B" in line)
    institution_id = county_b.split()[0]
    username = f"doctor.c.{uuid.uuid4().hex[:6]}"
    added = server.cli(
        "user", "add", "--username", username, "--display-name", "赵医生 (B县) Dr Zhao",
        "--role", "exam_room_doctor", "--institution-id", institution_id, "--password-stdin",
        stdin="another-county-secret\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    minted = server.cli("token", "--username", username, "--role", "exam_room_doctor")
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def give_consent_if_asked(page: Page) -> None:
    """The specialist's start counts as their own consent; should the page ask anyway, agree."""
    if page.get_by_test_id("consent-dialog").is_visible():
        page.get_by_test_id("consent-agree").click()


def test_recorded_consult_goes_through_the_relay_and_plays_back_for_the_permitted_only(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=15)
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "p2p")
        expect(page.get_by_test_id("recording-indicator")).to_be_hidden()
        page.evaluate(MARK_STREAMS)
    # Only the assigned specialist may record.
    expect(room.get_by_test_id("record-start-button")).to_be_hidden()

    phone.get_by_test_id("record-start-button").click()
    expect(room.get_by_test_id("consent-dialog")).to_be_visible()
    expect(room.get_by_test_id("consent-dialog")).to_contain_text("请求录制本次会诊")
    expect(phone.get_by_test_id("recording-status")).to_contain_text("等待各方同意录制")
    # Nothing is recorded, and nothing moves, before everybody has said yes.
    expect(phone.get_by_test_id("recording-indicator")).to_be_hidden()
    exam_room.screenshot("20-exam-room-consent-asked")
    specialist.screenshot("21-specialist-awaiting-consent")
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()

    for page in (room, phone):
        expect(page.get_by_test_id("consent-dialog")).to_be_hidden()
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
        expect(page.get_by_test_id("recording-indicator")).to_contain_text("录制中")
        # Recording needs the relay: both pages moved by themselves, same camera, same tiles.
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
        expect(page.get_by_test_id("media-path")).to_have_text("经服务器中转")
    for page in (room, phone):
        page.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=20_000)
    wait_for_remote_video([room, phone], within_s=20)
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        expect(page.get_by_test_id("remote-video")).to_have_count(1)
    expect(phone.get_by_test_id("record-stop-button")).to_be_visible()
    first = phone.get_by_test_id("recording-elapsed").inner_text()
    time.sleep(2.5)  # let the recording run a little, and its clock move on
    assert phone.get_by_test_id("recording-elapsed").inner_text() != first
    wait_for_remote_video([room, phone], within_s=5)  # still live through the relay
    exam_room.screenshot("22-exam-room-recording-via-relay")
    specialist.screenshot("23-specialist-recording-via-relay")

    # Hanging up ends the consult, which stops (and finalizes) the recording.
    end_consult(phone, None)
    for page in (room, phone):
        expect(page.get_by_test_id("call-ended")).to_be_visible()
        expect(page.get_by_test_id("recording-indicator")).to_be_hidden()
    recordings = wait_for_recordings(server, consult["id"], within_s=30)
    assert {r["source"] for r in recordings} >= {"camera", "microphone"}
    assert all(r["duration_s"] > 0 and r["bytes"] > 0 for r in recordings)

    # The exam room's doctor reviews it from the consult list.
    room.get_by_test_id("call-back-button").click()
    card = room.locator(f'[data-testid="consult-item"][data-consult-id="{consult["id"]}"]')
    expect(card).to_have_attribute("data-status", "ended")
    card.get_by_test_id("consult-play-recording").click()
    expect(card.get_by_test_id("review-track")).to_have_count(len(recordings))
    room.wait_for_function(PLAYER_SHOWS_VIDEO, polling=250, timeout=15_000)
    exam_room.screenshot("24-exam-room-recording-playback")

    # A doctor of another county may not see or play it.
    stranger = doctor_of_another_county(server)
    listing = server.request("GET", f"/api/consults/{consult['id']}/recordings", token=stranger)
    assert listing.status == 403, listing.body
    assert listing.body["code"] == "forbidden"
    grant = server.request(
        "POST", f"/api/recordings/{recordings[0]['id']}/playback", {}, token=stranger
    )
    assert grant.status == 403, grant.body
    assert grant.body["code"] == "forbidden"
    exam_room.assert_clean()
    specialist.assert_clean()


# A socket.io event frame over engine.io: "42", an optional ack id, then the JSON array.
SOCKETIO_EVENT = re.compile(r"^42(\d*)(\[.*)$", re.S)


def break_direct_path(client: Client) -> None:
    """Route the page's socket.io through the test and keep every ICE candidate it sends to the
    other browser from arriving, whether trickled (`signal` with a candidate) or inside a
    description: the direct path can never connect. Relay signaling (`relay-*`) passes."""

    def proxy(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = SOCKETIO_EVENT.match(message) if isinstance(message, str) else None
            if frame:
                ack_id, (event, *args) = frame.group(1), json.loads(frame.group(2))
                if event == "signal":
                    payload = args[0]
                    if "description" not in payload:
                        return  # a candidate or end-of-candidates for the other browser
                    sdp = payload["description"].get("sdp", "")
                    kept = [
                        line for line in sdp.split("\r\n") if not line.startswith("a=candidate:")
                    ]
                    payload["description"]["sdp"] = "\r\n".join(kept)
                    message = f"42{ack_id}" + json.dumps([event, payload])
            server.send(message)

        ws.on_message(from_page)

    client.context.route_web_socket(re.compile(r".*/socket\.io/.*"), proxy)


def test_a_direct_path_that_cannot_connect_moves_to_the_relay_by_itself(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    for client in (exam_room, specialist):
        break_direct_path(client)
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    # After its ICE restarts fail (≈ 15 s) a page reports `p2p-failed`; the server moves the
    # consult to the relay and both pages follow without anyone doing anything.
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute(
            "data-media-path", "relay", timeout=40_000
        )
    wait_for_remote_video([room, phone], within_s=20)
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        expect(page.get_by_test_id("recording-indicator")).to_be_hidden()
    exam_room.screenshot("25-exam-room-relay-after-p2p-failed")
    record = server.request("GET", f"/api/consults/{consult['id']}", token=server.token("doctor.a"))
    assert record.body["media_mode"] == "relay"
    exam_room.assert_clean()
    specialist.assert_clean()


def test_after_a_signaling_drop_on_the_relay_the_page_rejoins_and_keeps_recording(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    cut_signaling = cuttable_sockets(exam_room)
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=15)
    phone.get_by_test_id("record-start-button").click()
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
        page.evaluate(MARK_STREAMS)
    wait_for_remote_video([room, phone], within_s=20)
    old_peer = phone.get_by_test_id("remote-video").get_attribute("data-peer-id")

    cut_signaling()
    expect(room.locator("html")).to_have_attribute("data-socket", "disconnected")
    wait_until_live(room)
    # Back under a new peer id and on the relay at once; the doctor already consented to this
    # recording, so nobody is asked again and the recording carries on.
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
    expect(room.get_by_test_id("recording-indicator")).to_be_visible()
    expect(room.get_by_test_id("consent-dialog")).to_be_hidden()
    new_video = phone.locator(f'[data-testid="remote-video"]:not([data-peer-id="{old_peer}"])')
    expect(new_video).to_have_count(1, timeout=10_000)
    expect(phone.get_by_test_id("remote-video")).to_have_count(1)
    expect(room.get_by_test_id("remote-video")).to_have_count(1)
    room.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=20_000)
    wait_for_remote_video([room, phone], within_s=20)
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
    exam_room.screenshot("26-exam-room-relay-after-reconnect")
    exam_room.assert_clean()
    specialist.assert_clean()


# Headless Chromium has no screen to pick: "sharing the screen" hands out the synthetic camera.
FAKE_SCREEN = (
    "navigator.mediaDevices.getDisplayMedia = () =>"
    " navigator.mediaDevices.getUserMedia({video: true, audio: false});"
)
SECOND_TILE = '[data-testid="remote-video"][data-source="second"]'


def test_a_second_source_is_its_own_tile_directly_and_through_the_relay(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    exam_room.context.add_init_script(FAKE_SCREEN)
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=15)

    def share_screen() -> None:
        room.get_by_test_id("second-button").click()
        room.locator('[data-testid="second-option"][data-kind="screen"]').click()
        expect(room.get_by_test_id("second-button")).to_have_text("停止共享")
        expect(room.get_by_test_id("local-second-video")).to_be_visible()
        expect(phone.locator(SECOND_TILE)).to_have_count(1, timeout=10_000)
        expect(phone.locator(SECOND_TILE).locator("xpath=..")).to_contain_text("超声/屏幕")
        wait_for_remote_video([phone], within_s=15)  # camera tile and second tile both play

    share_screen()  # peer-to-peer: a second stream on the direct link
    expect(phone.get_by_test_id("call-view")).to_have_attribute("data-media-path", "p2p")

    phone.get_by_test_id("record-start-button").click()
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()
    expect(phone.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
    phone.evaluate(MARK_STREAMS)
    phone.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=20_000)
    wait_for_remote_video([phone, room], within_s=20)  # the second source rides the relay too
    expect(phone.locator(SECOND_TILE)).to_have_count(1)
    specialist.screenshot("27-specialist-second-source-via-relay")

    room.get_by_test_id("second-button").click()  # stop sharing: the tile goes
    expect(phone.locator(SECOND_TILE)).to_have_count(0, timeout=10_000)
    expect(room.get_by_test_id("local-second-video")).to_be_hidden()
    share_screen()  # and a new share comes back as a tile of its own
    end_consult(phone, None)
    expect(room.get_by_test_id("call-ended")).to_be_visible()
    wait_for_recordings(server, consult["id"], within_s=30, sources=frozenset({"second"}))
    exam_room.assert_clean()
    specialist.assert_clean()
