"""Notes in real browsers: both sides take notes during the call and see each other's live; the
printable record of the ended consult shows them with the conclusion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import end_consult, open_call_link, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def test_both_sides_take_notes_and_the_printable_record_shows_them(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult_id = server.book()["id"]
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)

    room.get_by_test_id("note-input").fill("血压 150/96 胎心 140")
    room.get_by_test_id("note-add").click()
    phone.get_by_test_id("note-input").fill("建议复查尿蛋白")
    phone.get_by_test_id("note-input").press("Control+Enter")
    for page in (room, phone):
        notes = page.get_by_test_id("notes-panel").get_by_test_id("note-item")
        expect(notes).to_have_count(2)
        expect(notes.nth(0)).to_contain_text("血压 150/96 胎心 140")
        expect(notes.nth(1)).to_contain_text("建议复查尿蛋白")
        expect(page.get_by_test_id("note-offset")).to_have_count(0)  # nothing recorded
    expect(room.get_by_test_id("note-input")).to_have_value("")
    specialist.screenshot("30-specialist-notes")

    end_consult(phone, "门诊随访 一周后复查")
    expect(room.get_by_test_id("call-ended")).to_be_visible()
    expect(room.get_by_test_id("note-input")).to_be_hidden()  # read-only once it has ended
    link = room.get_by_test_id("call-ended").get_by_test_id("consult-record-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href == f"/consult-record.html#consult={consult_id}"

    room.goto(f"{server.url}{href}")
    record = room.get_by_test_id("consult-record")
    expect(record).to_be_visible()
    expect(record.get_by_test_id("note-item")).to_have_count(2)
    expect(record.get_by_test_id("record-conclusion-text")).to_have_text("门诊随访 一周后复查")
    expect(record.get_by_test_id("record-participants")).to_contain_text("王芳")
    expect(record.get_by_test_id("record-intake")).to_contain_text("148")
    assert room.url.endswith(f"#consult={consult_id}")  # reloadable, no token in it
    room.emulate_media(media="print")
    expect(room.get_by_test_id("record-print")).to_be_hidden()
    exam_room.screenshot("31-consult-record-print")
    exam_room.assert_clean()
    specialist.assert_clean()
