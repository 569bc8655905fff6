"""A remote training in real Chromium: the lecturer presents camera, microphone and screen
from the lecturer's page; two trainees, one on a desktop and one on a phone-sized page, play
both streams of the broadcast (hls.js over the server's LL-HLS) with advancing currentTime,
decoded frames and decoded sound; after the end the replay plays. And the stage: two
appearances (a raised hand, then a trainee picked from everybody attending), each seen live
and again in the replay at the moment it happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import Client
from tests.support.hls_check import parse_playlist
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

PLAYING = """([testid, past]) => {
  const v = document.querySelector(`video[data-testid="${testid}"]`);
  return v && !v.hidden && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > past;
}"""


def schedule_for_the_city(server: RunningServer) -> dict[str, Any]:
    county_a = server.request("GET", "/api/me", token=server.token("doctor.a")).body
    institutions = server.request("GET", "/api/institutions", token=server.token("admin")).body
    by_id = {i["id"]: i for i in institutions["institutions"]}
    city = by_id[county_a["institution_id"]]["parent_id"]
    now = datetime.now(UTC)
    reply = server.request(
        "POST",
        "/api/trainings",
        {
            "title": "e2e 新生儿复苏 Neonatal resuscitation",
            "lecturer_ids": [
                server.request("GET", "/api/me", token=server.token("obstetrician")).body["id"]
            ],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "audience": {"kind": "subtree", "institution_ids": [city]},
        },
        token=server.token("admin"),
    )
    assert reply.status == 201, reply.body
    return dict(reply.body)


def open_page(
    client: Client, server: RunningServer, page_name: str, training_id: str, who: str
) -> Page:
    page = client.page
    page.goto(f"{server.url}/{page_name}#training={training_id}&token={server.token(who)}")
    return page


def start_presenting(client: Client, server: RunningServer, training_id: str) -> Page:
    """The lecturer's page, presenting (camera, microphone, screen) once Present is pressed."""
    stage = open_page(client, server, "training-lecturer.html", training_id, "obstetrician")
    stage.get_by_test_id("present-button").click()
    stage.wait_for_function("document.documentElement.dataset.presenting === 'yes'", timeout=45_000)
    return stage


def current_time(page: Page, testid: str) -> float:
    return float(
        page.evaluate(f"document.querySelector('video[data-testid=\"{testid}\"]').currentTime")
    )


def test_the_lecturer_presents_and_two_trainees_play_camera_and_screen_then_the_replay(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    training = schedule_for_the_city(server)
    lecturer = open_client("desktop", "lecturer")
    desk = open_client("desktop", "trainee-desktop")
    phone = open_client("phone", "trainee-phone")
    stage = start_presenting(lecturer, server, training["id"])
    lecturer.screenshot("training-lecturer-live")
    viewers = [
        open_page(desk, server, "training.html", training["id"], "doctor.a"),
        open_page(phone, server, "training.html", training["id"], "doctor.b"),
    ]
    for page in viewers:
        for testid in ("training-camera", "training-screen"):
            page.wait_for_function(PLAYING, arg=[testid, 0.5], timeout=45_000)
    # both go on playing: currentTime advances on each page, each stream
    for page in viewers:
        for testid in ("training-camera", "training-screen"):
            before = current_time(page, testid)
            page.wait_for_function(PLAYING, arg=[testid, before + 1.0], timeout=20_000)
    sizes = viewers[0].evaluate(
        "['training-camera', 'training-screen']"
        '.map(id => document.querySelector(`video[data-testid="${id}"]`))'
        ".map(v => [v.dataset.testid, v.videoWidth, v.videoHeight])"
    )
    assert all(width > 0 and height > 0 for _, width, height in sizes), sizes
    # the lecturer's voice (Chromium's fake microphone beeps) is decoded with the camera
    for page in viewers:
        page.wait_for_function(
            "document.querySelector('video[data-testid=\"training-camera\"]')"
            ".webkitAudioDecodedByteCount > 0",
            timeout=10_000,
        )
    for page in viewers:  # attendance: the players beat while they play
        page.wait_for_function("document.documentElement.dataset.attending === 'yes'")
    desk.screenshot("training-desktop-playing")
    phone.screenshot("training-phone-playing")
    # the end: the lecturer ends it, and a trainee opening it again plays the replay
    stage.get_by_test_id("end-training-button").click()
    stage.wait_for_function(
        "document.documentElement.dataset.presenting === 'ended'", timeout=10_000
    )
    replay = open_page(desk, server, "training.html", training["id"], "doctor.a")
    replay.reload()
    replay.wait_for_function(PLAYING, arg=["training-camera", 1.0], timeout=30_000)
    assert replay.evaluate("document.documentElement.dataset.trainingStatus") == "ended"
    for client in (lecturer, desk, phone):
        client.assert_clean()


def test_a_trainee_signs_in_and_finds_the_trainings_open_to_their_institution(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    county_a = server.request("GET", "/api/me", token=server.token("doctor.a")).body
    added = server.cli(
        "user",
        "add",
        "--username",
        "trainee.e2e",
        "--role",
        "trainee",
        "--institution-id",
        str(county_a["institution_id"]),
        "--password-stdin",
        stdin="demo-trainee.e2e\n",
    )
    assert added.returncode == 0, added.stderr
    training = schedule_for_the_city(server)
    client = open_client("phone", "trainee")
    page = client.page
    page.goto(f"{server.url}/")
    page.get_by_test_id("login-username").fill("trainee.e2e")
    page.get_by_test_id("login-password").fill("demo-trainee.e2e")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{server.url}/training.html")
    listed = page.get_by_test_id("training-list")
    listed.get_by_role("link", name=training["title"]).first.wait_for()
    client.screenshot("training-trainee-list")
    client.assert_clean()


INBOUND = """async () => {
  const pc = window.trainingStage?.connection();
  if (!pc) return null;
  const seen = { frames: 0, samples: 0 };
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') seen.frames += s.framesDecoded ?? 0;
    if (s.kind === 'audio') seen.samples += s.totalSamplesDecoded ?? s.totalSamplesReceived ?? 0;
  });
  return seen;
}"""

STAGE_AUDIO = (
    "document.querySelector('video[data-testid=\"training-stage\"]')"
    ".webkitAudioDecodedByteCount > 0"
)


def decodes_over_webrtc(page: Page, frames: int = 10) -> dict[str, int]:
    """Wait until the page's stage connection has decoded `frames` video frames and sound."""
    seen: dict[str, int] = {}

    def decoded() -> bool:
        seen.update(page.evaluate(INBOUND) or {})
        return seen.get("frames", 0) >= frames and seen.get("samples", 0) > 0

    until(decoded, within=30.0, what=f"{frames} frames and sound decoded over WebRTC")
    return seen


def test_a_trainee_raises_a_hand_is_brought_on_stage_and_is_seen_and_heard_by_the_others(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    """...then the lecturer brings on stage, from the list of everybody attending, a trainee
    who never raised a hand (a second appearance), ends the training, and the replay shows
    each appearance on the lecturer's timeline where it happened, and nobody between them."""
    training = schedule_for_the_city(server)
    lecturer = open_client("desktop", "stage-lecturer")
    trainee_a = open_client("desktop", "stage-trainee-a")
    trainee_b = open_client("phone", "stage-trainee-b")
    desk = start_presenting(lecturer, server, training["id"])
    a = open_page(trainee_a, server, "training.html", training["id"], "doctor.a")
    b = open_page(trainee_b, server, "training.html", training["id"], "doctor.b")
    b.wait_for_function(PLAYING, arg=["training-camera", 0.5], timeout=45_000)
    # A asks to speak; the lecturer sees the hand and brings A on stage; A consents
    a.get_by_test_id("stage-hand").click()
    a.wait_for_function("document.documentElement.dataset.handRaised === 'yes'")
    desk.get_by_test_id("stage-invite").click()
    a.get_by_test_id("stage-accept").click()
    a.wait_for_function("document.documentElement.dataset.onStage === 'yes'", timeout=20_000)
    desk.wait_for_function("document.documentElement.dataset.stage === 'joined'")
    appearances = [[datetime.now(UTC)]]
    # the lecturer sees and hears A, and A the lecturer, over WebRTC
    heard_by_lecturer = decodes_over_webrtc(desk)
    heard_by_a = decodes_over_webrtc(a)
    assert heard_by_lecturer["frames"] >= 10 and heard_by_a["frames"] >= 10
    lecturer.screenshot("training-stage-lecturer")
    # B sees and hears A in the broadcast: the stage stream plays beside the camera
    b.wait_for_function(PLAYING, arg=["training-stage", 0.5], timeout=45_000)
    before = current_time(b, "training-stage")
    b.wait_for_function(PLAYING, arg=["training-stage", before + 1.0], timeout=20_000)
    b.wait_for_function(STAGE_AUDIO, timeout=10_000)
    trainee_b.screenshot("training-stage-viewer")
    # the lecturer takes A off stage: B's player drops the stage view, A's page says so
    desk.get_by_test_id("stage-remove").click()
    b.wait_for_function(
        "document.documentElement.dataset.stageView === 'off'"
        " && document.querySelector('video[data-testid=\"training-stage\"]').hidden",
        timeout=15_000,
    )
    appearances[0].append(datetime.now(UTC))
    a.wait_for_function("document.documentElement.dataset.onStage === 'no'")
    desk.wait_for_function("document.documentElement.dataset.stage === 'none'")

    # B never raised a hand: the lecturer finds B among everybody attending and invites B
    doctor_b = server.request("GET", "/api/me", token=server.token("doctor.b")).body
    desk.wait_for_function("document.documentElement.dataset.stageAttendees === '2'")
    desk.get_by_test_id("attendee-search").fill(doctor_b["display_name"].split()[0])
    invite_b = desk.locator(f'[data-testid="attendee-invite"][data-user-id="{doctor_b["id"]}"]')
    desk.wait_for_function("document.documentElement.dataset.stageAttendees === '1'")
    lecturer.screenshot("training-stage-attendees")
    invite_b.click()
    b.get_by_test_id("stage-accept").click()  # B consents all the same
    b.wait_for_function("document.documentElement.dataset.onStage === 'yes'", timeout=20_000)
    desk.wait_for_function("document.documentElement.dataset.stage === 'joined'")
    appearances.append([datetime.now(UTC)])
    a.wait_for_function(PLAYING, arg=["training-stage", 0.5], timeout=45_000)
    before = current_time(a, "training-stage")
    a.wait_for_function(PLAYING, arg=["training-stage", before + 1.0], timeout=20_000)
    desk.get_by_test_id("stage-remove").click()
    desk.wait_for_function("document.documentElement.dataset.stage === 'none'")
    appearances[1].append(datetime.now(UTC))
    desk.get_by_test_id("end-training-button").click()
    desk.wait_for_function(
        "document.documentElement.dataset.presenting === 'ended'", timeout=10_000
    )

    # the replay: the stage shows at each appearance's moment of the lecturer's timeline
    replay = open_page(trainee_a, server, "training.html", training["id"], "doctor.a")
    replay.reload()
    replay.wait_for_function(PLAYING, arg=["training-camera", 1.0], timeout=30_000)
    replay.wait_for_function("document.documentElement.dataset.stageAppearances === '2'")
    prefix = server.request(
        "POST", f"/api/trainings/{training['id']}/admission", token=server.token("doctor.a")
    ).body["viewer_url"]
    text_of = "async (url) => (await fetch(url)).text()"
    camera = parse_playlist(replay.evaluate(text_of, f"{prefix}camera/vod.m3u8"))
    stage = parse_playlist(replay.evaluate(text_of, f"{prefix}stage/vod.m3u8"))
    assert stage.ended and len(stage.runs) == 2, stage.runs
    camera_origin = camera.runs[0].segments[0][0]
    assert camera_origin is not None
    position = 0.0
    ends = []
    for run, (went_on, came_off) in zip(stage.runs, appearances, strict=True):
        began = run.segments[0][0]
        assert began is not None
        length = sum(duration for _, duration, _ in run.segments)
        # it happened when it happened: between the trainee going on and coming off stage
        assert went_on - timedelta(seconds=5) <= began <= came_off, (began, went_on, came_off)
        assert began + timedelta(seconds=length) <= came_off + timedelta(seconds=3)
        ends.append(began + timedelta(seconds=length))
        moment = began + timedelta(seconds=min(1.0, length / 3))
        expected = position + (moment - began).total_seconds()
        seek_camera(replay, (moment - camera_origin).total_seconds())
        replay.wait_for_function(STAGE_REPLAY_AT, arg=expected, timeout=20_000)
        replay.wait_for_function(PLAYING, arg=["training-stage", expected + 0.3], timeout=10_000)
        position += length
    trainee_a.screenshot("training-stage-replay")
    # between the appearances (and before the first) nobody is on stage: none shown
    first_began = stage.runs[0].segments[0][0]
    second_began = stage.runs[1].segments[0][0]
    assert first_began is not None and second_began is not None
    for moment in (ends[0] + (second_began - ends[0]) / 2, camera_origin):
        seek_camera(replay, (moment - camera_origin).total_seconds() + 0.2)
        replay.wait_for_function(STAGE_REPLAY_OFF, timeout=10_000)
    # the replay's clock across a discontinuity (what the camera's replay uses after a
    # lecturer reconnects, the stage's between appearances): a moment in the gap maps to where
    # the next run begins, a position in the second run to its own wall clock
    stage_text = replay.evaluate(text_of, f"{prefix}stage/vod.m3u8")
    first_length = sum(duration for _, duration, _ in stage.runs[0].segments)
    mapped = replay.evaluate(
        """async ([text, gap, second, inFirst]) => {
          const clock = await import('/js/replay-clock.js');
          const segments = clock.playlistSegments(text);
          return {
            runs: new Set(segments.map((s) => s.run)).size,
            gap: clock.positionAt(segments, gap),
            inGap: clock.segmentAt(segments, gap) === undefined,
            first: clock.positionAt(segments, inFirst),
            wall: clock.wallAt(segments, segments.find((s) => s.run === 1).position + 0.5),
            second,
          };
        }""",
        [
            stage_text,
            (ends[0] + (second_began - ends[0]) / 2).timestamp() * 1000,
            second_began.timestamp() * 1000,
            (first_began + timedelta(seconds=1)).timestamp() * 1000,
        ],
    )
    assert mapped["runs"] == 2 and mapped["inGap"], mapped
    assert abs(mapped["gap"] - first_length) < 0.01, mapped
    assert abs(mapped["first"] - 1.0) < 0.01, mapped
    assert abs(mapped["wall"] - (mapped["second"] + 500)) < 1, mapped
    for client in (lecturer, trainee_a, trainee_b):
        client.assert_clean()


STAGE_REPLAY_AT = """(expected) => {
  const v = document.querySelector('video[data-testid="training-stage"]');
  return document.documentElement.dataset.stageView === 'on' && !v.hidden
    && v.readyState >= 2 && Math.abs(v.currentTime - expected) < 1.5;
}"""

STAGE_REPLAY_OFF = (
    "document.documentElement.dataset.stageView === 'off'"
    " && document.querySelector('video[data-testid=\"training-stage\"]').hidden"
)


def seek_camera(page: Page, seconds: float) -> None:
    page.evaluate(
        """(at) => {
          const v = document.querySelector('video[data-testid="training-camera"]');
          v.currentTime = at;
          v.play().catch(() => {});
        }""",
        seconds,
    )
