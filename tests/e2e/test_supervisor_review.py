"""The clinical day in real browsers, ending in the supervisor's review: the exam-room doctor
books with an intake form and an ultrasound still, the specialist's phone shows both and
accepts, they talk on the relay with the recording consented, both take notes, the specialist
concludes; the supervisor finds the consult with the filters, opens it, plays the recordings
side by side and in sync, clicks a note marker and every track jumps there, adds a comment,
and sees the viewing in the audit trail."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.e2e.flows import (
    VIDEOS_PLAY,
    book,
    end_consult,
    sign_in,
    unique_patient,
    wait_for_remote_video,
)
from tests.e2e.test_attachments import THUMBNAIL_DECODED
from tests.e2e.test_relay_recording import (
    MARK_STREAMS,
    NEW_STREAMS_SAME_TILES,
    give_consent_if_asked,
    wait_for_recordings,
)
from tests.support.images import png
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

RECORD_S = 7.0
"""How long the consult is recorded: long enough for two notes and a seek, short for the suite."""

SYNC_TOLERANCE_S = 0.5
"""How far apart the tracks (and the player's clock) may be on the shared timeline."""

# True once every track in play sits within `tolerance` of `target` (or, when `target` is null, of
# the player's own clock): a track's place on the timeline is its currentTime + where it starts.
TRACKS_AT = """([target, tolerance]) => {
  const player = document.querySelector('[data-testid="review-player"]');
  const at = Number(player.dataset.position);
  const want = target === null ? at : target;
  const tracks = [...player.querySelectorAll('video, audio')]
    .filter((el) => at >= Number(el.dataset.startS) && at < Number(el.dataset.endS) - 0.3)
    .map((el) => el.currentTime + Number(el.dataset.startS));
  return tracks.length > 0 && tracks.every((t) => Math.abs(t - want) <= tolerance)
    && Math.abs(at - want) <= tolerance;
}"""


# The table shows the search for recorded, ended consults (not the list before it).
ONLY_ENDED_LISTED = """() => {
  const query = new URLSearchParams(
    document.querySelector('[data-testid="consult-table"]').dataset.query ?? '');
  const rows = [...document.querySelectorAll('[data-testid="consult-item"]')];
  return query.get('recorded') === 'yes' && query.getAll('status').join() === 'ended'
    && rows.length > 0 && rows.every((row) => row.dataset.status === 'ended');
}"""
LISTED_IDS = """() => [...document.querySelectorAll('[data-testid="consult-item"]')]
  .map((row) => row.dataset.consultId)"""


def book_with_intake(room: Page, patient: str) -> None:
    book(
        room,
        patient,
        sex="female",
        age=29,
        summary="孕 33 周 血压 152/98",  # as the default intake (OBSTETRIC_INTAKE) answers
        files=[{"name": "B超 33周.png", "mimeType": "image/png", "buffer": png(320, 240)}],
    )
    expect(room.get_by_test_id("upload-item")).to_have_attribute("data-state", "done")


def add_note(page: Page, text: str) -> None:
    page.get_by_test_id("note-input").fill(text)
    page.get_by_test_id("note-add").click()
    expect(page.get_by_test_id("notes-panel").get_by_text(text)).to_be_visible()


def test_the_supervisor_reviews_a_recorded_consult_in_sync_and_the_viewing_is_audited(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = sign_in(exam_room, server, "doctor.a")
    phone = sign_in(specialist, server, "obstetrician")
    patient = unique_patient()
    book_with_intake(room, patient)

    request_card = (
        phone.get_by_test_id("incoming-list")
        .get_by_test_id("consult-item")
        .filter(has_text=patient)
    )
    expect(request_card).to_be_visible(timeout=10_000)
    # The phone shows the intake and the image before the specialist accepts.
    expect(request_card.get_by_test_id("consult-intake-gestational_week")).to_have_text("33 周")
    image = request_card.get_by_test_id("attachment-item")
    expect(image).to_contain_text("B超 33周.png")
    image.scroll_into_view_if_needed()  # thumbnails load once on screen
    phone.wait_for_function(THUMBNAIL_DECODED, arg=request_card.element_handle(), timeout=10_000)
    request_card.get_by_test_id("consult-accept").click()
    my_card = (
        phone.get_by_test_id("my-list").get_by_test_id("consult-item").filter(has_text=patient)
    )
    expect(my_card).to_have_attribute("data-status", "accepted")
    room_card = room.get_by_test_id("consult-item").filter(has_text=patient)
    expect(room_card).to_have_attribute("data-status", "accepted")
    consult_id = room_card.get_attribute("data-consult-id")
    assert consult_id

    room_card.get_by_test_id("consult-join").click()
    my_card.get_by_test_id("consult-join").click()
    wait_for_remote_video([room, phone], within_s=15)
    for page in (room, phone):
        page.evaluate(MARK_STREAMS)

    # Recording, consented by both; the call moves to the relay by itself.
    record_asked = time.monotonic()  # the recording's timeline cannot start before this
    phone.get_by_test_id("record-start-button").click()
    expect(room.get_by_test_id("consent-dialog")).to_be_visible()
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()
    for page in (room, phone):
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
        page.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=20_000)
    wait_for_remote_video([room, phone], within_s=20)
    recording_began = time.monotonic()

    # Both take notes while it records: each pinned to the recording's timeline.
    time.sleep(1.5)
    add_note(room, "胎心 138 次/分 规律")
    time.sleep(2.0)
    add_note(phone, "建议 24 小时尿蛋白定量")
    for page in (room, phone):
        expect(page.get_by_test_id("notes-panel").get_by_test_id("note-offset")).to_have_count(2)
    # Both notes are stored (each page shows both offsets): the later one sits at most this far
    # into the recording. On a loaded machine the relay's streams take seconds to come, so this
    # is measured rather than assumed from RECORD_S.
    notes_stored_after_s = time.monotonic() - record_asked
    time.sleep(max(0.0, RECORD_S - (time.monotonic() - recording_began)))
    specialist.screenshot("40-specialist-recording-with-notes")

    end_consult(phone, "住院观察 监测血压 一周复查")
    for page in (room, phone):
        expect(page.get_by_test_id("call-ended")).to_be_visible()
    recordings = wait_for_recordings(server, consult_id, within_s=30)
    videos = [r for r in recordings if r["kind"] == "video"]
    audios = [r for r in recordings if r["kind"] == "audio"]

    # The supervisor finds it with the filters: County A, obstetrics, today, ended, recorded.
    supervisor = open_client("desktop", "supervisor")
    desk = sign_in(supervisor, server, "supervisor", live=False)
    expect(desk.get_by_test_id("statistics-section")).to_have_count(1)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the browser's zone
    county_a = desk.get_by_test_id("filter-institution").locator("option", has_text="A县人民医院")
    desk.get_by_test_id("filter-institution").select_option(county_a.get_attribute("value"))
    desk.get_by_test_id("filter-specialty").select_option("obstetrics")
    desk.get_by_test_id("filter-from").fill(today)
    desk.get_by_test_id("filter-to").fill(today)
    desk.get_by_test_id("filter-recorded").select_option("yes")
    desk.locator('[data-testid="filter-status"][value="ended"]').check()
    desk.get_by_test_id("filter-submit").click()
    row = desk.locator(f'[data-testid="consult-item"][data-consult-id="{consult_id}"]')
    expect(row).to_be_visible()
    # Other tests of the session may have recorded consults today too: every row listed must be
    # an ended, recorded consult (the filters' exact results are tested in integration).
    desk.wait_for_function(ONLY_ENDED_LISTED, polling=100, timeout=10_000)
    for listed_id in desk.evaluate(LISTED_IDS):
        reply = server.request(
            "GET", f"/api/consults/{listed_id}/recordings", token=server.token("supervisor")
        )
        assert reply.status == 200 and reply.body["recordings"], listed_id
    supervisor.screenshot("41-supervisor-filtered")
    # ... and not when asking for consults without recordings.
    desk.get_by_test_id("filter-recorded").select_option("no")
    desk.get_by_test_id("filter-submit").click()
    expect(row).to_have_count(0)
    desk.get_by_test_id("filter-recorded").select_option("yes")
    desk.get_by_test_id("filter-submit").click()

    row.get_by_test_id("open-review").click()
    desk.wait_for_url(f"{server.url}/review.html?consult={consult_id}")
    review = desk.get_by_test_id("review")
    expect(review).to_be_visible()
    expect(desk.get_by_test_id("review-conclusion")).to_have_text("住院观察 监测血压 一周复查")
    expect(desk.get_by_test_id("review-record")).to_contain_text(patient)
    expect(desk.get_by_test_id("review-record")).to_contain_text("33")  # the intake's week
    expect(desk.get_by_test_id("review-video")).to_have_count(len(videos))
    expect(desk.get_by_test_id("review-audio")).to_have_count(len(audios))
    markers = desk.get_by_test_id("review-marker")
    expect(markers).to_have_count(2)

    # Play: every video shows pictures and moves on, and the tracks keep together.
    desk.get_by_test_id("review-play").click()
    desk.wait_for_function(VIDEOS_PLAY, arg="review-video", polling=300, timeout=15_000)
    desk.wait_for_function(VIDEOS_PLAY, arg="review-video", polling=300, timeout=15_000)
    desk.wait_for_function(TRACKS_AT, arg=[None, SYNC_TOLERANCE_S], polling=100, timeout=10_000)
    supervisor.screenshot("42-supervisor-review-playing")

    # A note's marker: every track jumps to the note's place on the timeline.
    marker = markers.nth(1)
    at_s = float(marker.get_attribute("data-at-s") or "nan")
    assert 0 < at_s < notes_stored_after_s + SYNC_TOLERANCE_S, (at_s, notes_stored_after_s)
    marker.click()
    desk.wait_for_function(TRACKS_AT, arg=[at_s, SYNC_TOLERANCE_S], polling=50, timeout=10_000)
    desk.wait_for_function(
        VIDEOS_PLAY, arg="review-video", polling=300, timeout=15_000
    )  # and plays on from there
    desk.get_by_test_id("review-play").click()  # pause
    expect(desk.get_by_test_id("review-player")).to_have_attribute("data-playing", "false")
    # The first note's marker while paused: the tracks wait there.
    first = markers.nth(0)
    first_at = float(first.get_attribute("data-at-s") or "nan")
    first.click()
    desk.wait_for_function(TRACKS_AT, arg=[first_at, SYNC_TOLERANCE_S], polling=50, timeout=10_000)

    # A comment pinned to where the player stands.
    desk.get_by_test_id("comment-text").fill("血压控制方案合理 建议记录尿蛋白结果")
    desk.get_by_test_id("comment-pin").check()
    desk.get_by_test_id("comment-submit").click()
    comment = desk.get_by_test_id("comment-item")
    expect(comment).to_have_count(1)
    expect(comment).to_contain_text("血压控制方案合理")
    expect(comment.get_by_test_id("comment-seek")).to_be_visible()

    # The audit trail names who viewed what: the review, the playback links, the reads.
    desk.get_by_test_id("audit-refresh").click()
    audit = desk.get_by_test_id("audit-table")
    for action in (
        "consult.reviewed",
        "recording.playback_granted",
        "recording.accessed",
        "comment.added",
    ):
        rows = audit.locator(f'[data-testid="audit-row"][data-action="{action}"]')
        expect(rows.first).to_be_visible()
        expect(rows.first).to_have_attribute("data-actor", "李明 (质控) Li Ming")
    expect(audit.locator('[data-action="consult.reviewed"]').first).to_contain_text("打开审阅")
    expect(audit.locator('[data-action="note.added"]')).to_have_count(2)
    supervisor.screenshot("43-supervisor-review-audit")
    for client in (exam_room, specialist, supervisor):
        client.assert_clean()
