"""Ending a consult in real browsers: End asks first and says what happens to everyone; the
specialist's conclusion is kept as a draft on the server while typed (a reload keeps it), is
required or skipped on purpose when the specialist ends, and becomes the conclusion when the
exam room ends; both sides read who ended the consult, and the conclusion has one name on the
ended card, the consult card and the record, in both languages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

DESKTOP = {"viewport": {"width": 1366, "height": 768}}
SPECIALIST = "王芳 (产科) Wang Fang"
EXAM_ROOM_DOCTOR = "刘医生 (A县) Dr Liu"


def in_english(client: Client) -> Client:
    """The client's pages speak English from the first paint (the switch's stored choice)."""
    client.context.add_init_script("localStorage.setItem('teleconsult.lang', 'en')")
    return client


def consult_of(server: RunningServer, consult_id: str) -> dict[str, Any]:
    reply = server.request("GET", f"/api/consults/{consult_id}", token=server.token("doctor.a"))
    assert reply.status == 200, reply.body
    found: dict[str, Any] = reply.body
    return found


def box(page: Page, testid: str) -> dict[str, float]:
    found = page.get_by_test_id(testid).bounding_box()
    assert found is not None, testid
    return found


def test_ending_asks_first_and_the_specialist_gives_a_conclusion_kept_as_a_draft(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult_id = server.book()["id"]
    exam_room = open_client("desktop", "exam-room", **DESKTOP)
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)

    # The conclusion is on the phone's first screen, right under the video, and only there.
    conclusion = phone.get_by_test_id("conclusion-input")
    expect(conclusion).to_be_in_viewport()
    expect(phone.get_by_test_id("conclusion-panel")).to_contain_text("会诊结论")
    expect(room.get_by_test_id("conclusion-panel")).to_be_hidden()
    # End is set apart from Step out: its own group, a gap, and red.
    for page in (room, phone):
        leave, end = box(page, "leave-button"), box(page, "hangup-button")
        assert end["x"] - (leave["x"] + leave["width"]) >= 8, (leave, end)
        expect(page.get_by_test_id("hangup-button")).to_have_class("danger")

    # Typed, kept on the server as a draft, and back after a reload.
    conclusion.fill("胎心监护 每日两次")
    expect(phone.get_by_test_id("conclusion-status")).to_contain_text("草稿已保存")
    specialist.screenshot("ending-01-phone-conclusion-draft-zh")
    phone.reload()
    phone.locator(f'li[data-consult-id="{consult_id}"]').get_by_test_id("consult-join").click()
    expect(phone.get_by_test_id("conclusion-input")).to_have_value("胎心监护 每日两次")
    wait_for_remote_video([room, phone], within_s=15)

    # End asks first, says what happens to everyone, and going back changes nothing.
    phone.get_by_test_id("hangup-button").click()
    dialog = phone.get_by_test_id("end-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("end-everyone")).to_contain_text("所有参与者")
    expect(dialog.get_by_test_id("end-conclusion")).to_have_value("胎心监护 每日两次")
    specialist.screenshot("ending-02-phone-end-dialog-zh")
    dialog.get_by_test_id("end-cancel").click()
    expect(dialog).to_be_hidden()
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")

    # The specialist may not end with an empty conclusion by accident ...
    phone.get_by_test_id("hangup-button").click()
    dialog.get_by_test_id("end-conclusion").fill("")
    dialog.get_by_test_id("end-confirm").click()
    expect(dialog.get_by_test_id("end-error")).to_contain_text("请填写会诊结论")
    expect(phone.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
    # ... and ends with one.
    dialog.get_by_test_id("end-conclusion").fill("胎心监护 每日两次 一周后复查")
    dialog.get_by_test_id("end-confirm").click()
    for page in (room, phone):
        ended = page.get_by_test_id("call-ended")
        expect(ended).to_be_visible()
        expect(ended.get_by_test_id("call-ended-by")).to_contain_text(SPECIALIST)
        expect(ended).to_contain_text("会诊结论")
        expect(ended.get_by_test_id("call-ended-conclusion")).to_have_text(
            "胎心监护 每日两次 一周后复查"
        )
        expect(page.get_by_test_id("call-bar")).to_be_hidden()
    exam_room.screenshot("ending-03-exam-room-ended-zh")
    specialist.screenshot("ending-04-phone-ended-zh")

    # The same name on the exam room's consult card, in both languages.
    room.get_by_test_id("call-back-button").click()
    card = room.locator(f'li[data-consult-id="{consult_id}"]')
    expect(card).to_contain_text("会诊结论")
    expect(card).to_contain_text("胎心监护 每日两次 一周后复查")
    expect(card).to_contain_text(SPECIALIST)
    room.get_by_test_id("lang-switch").select_option("en")
    expect(card).to_contain_text("Conclusion")
    expect(card).to_contain_text("Ended by")
    exam_room.screenshot("ending-05-exam-room-card-en")
    record = consult_of(server, consult_id)
    assert record["closing_note"] == "胎心监护 每日两次 一周后复查"
    assert record["ended_by"]["display_name"] == SPECIALIST
    exam_room.assert_clean()
    specialist.assert_clean()


def test_when_the_exam_room_ends_the_specialists_draft_becomes_the_conclusion(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult_id = server.book()["id"]
    exam_room = in_english(open_client("desktop", "exam-room", **DESKTOP))
    specialist = in_english(open_client("phone", "specialist"))
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)

    phone.get_by_test_id("conclusion-input").fill("Admit; monitor blood pressure every 4 h")
    expect(phone.get_by_test_id("conclusion-status")).to_contain_text("Draft saved")
    specialist.screenshot("ending-06-phone-conclusion-draft-en")

    room.get_by_test_id("hangup-button").click()
    dialog = room.get_by_test_id("end-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("end-everyone")).to_contain_text("ends for everyone")
    expect(dialog.get_by_test_id("end-room-conclusion")).to_contain_text("specialist's conclusion")
    expect(dialog.get_by_test_id("end-conclusion")).to_be_hidden()  # not the room's to write
    expect(dialog.get_by_test_id("end-skip")).to_be_hidden()
    exam_room.screenshot("ending-07-exam-room-end-dialog-en")
    dialog.get_by_test_id("end-confirm").click()

    for page in (room, phone):
        ended = page.get_by_test_id("call-ended")
        expect(ended).to_be_visible()
        expect(ended.get_by_test_id("call-ended-by")).to_have_text(f"Ended by {EXAM_ROOM_DOCTOR}.")
        expect(ended).to_contain_text("Conclusion")
        expect(ended.get_by_test_id("call-ended-conclusion")).to_have_text(
            "Admit; monitor blood pressure every 4 h"
        )
    expect(phone.get_by_test_id("call-ended-unsaved")).to_be_hidden()  # nothing was lost
    exam_room.screenshot("ending-08-exam-room-ended-en")
    specialist.screenshot("ending-09-phone-ended-by-exam-room-en")

    # The printable record names it the same way.
    phone.get_by_test_id("call-ended").get_by_test_id("consult-record-link").click()
    sheet = phone.get_by_test_id("consult-record")
    expect(sheet.get_by_test_id("record-conclusion")).to_contain_text("Conclusion")
    expect(sheet.get_by_test_id("record-conclusion-text")).to_have_text(
        "Admit; monitor blood pressure every 4 h"
    )
    expect(sheet.get_by_test_id("record-times")).to_contain_text(EXAM_ROOM_DOCTOR)
    specialist.screenshot("ending-10-phone-record-en")
    record = consult_of(server, consult_id)
    assert record["closing_note"] == "Admit; monitor blood pressure every 4 h"
    assert record["ended_by"]["display_name"] == EXAM_ROOM_DOCTOR
    exam_room.assert_clean()
    specialist.assert_clean()
