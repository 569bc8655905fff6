"""The call bar in real browsers: pinned to the bottom of a 390 x 844 phone in both languages while
recording, every button (icon + short label, at least 44 x 44 CSS px) on screen and working
after the specialist scrolls down to the notes; and the patient's record (reason, intake
answers, attachments) one tap away from the bar on both pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import ARTIFACTS, Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.e2e.test_relay_recording import give_consent_if_asked
from tests.integration.test_attachments import upload_file
from tests.support.images import png
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"width": 390, "height": 844}

# Each shown button of the call bar: its test id, box, the label it shows and whether its icon
# is there, as the page lays it out now.
BAR_BUTTONS = """() => [...document.querySelectorAll('[data-testid="call-bar"] button')]
  .filter((b) => !b.hidden && b.offsetParent !== null)
  .map((b) => {
    const r = b.getBoundingClientRect();
    const middle = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return {
      testid: b.dataset.testid, x: r.x, y: r.y, width: r.width, height: r.height,
      label: b.querySelector('.bar-label')?.textContent ?? '',
      icon: Boolean(b.querySelector('svg')), hit: middle?.closest('button') === b,
    };
  })"""


def bar_buttons(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(BAR_BUTTONS)
    return found


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_phone_call_bar_stays_in_reach_while_recording_and_scrolled_to_the_notes(
    server: RunningServer, open_client: Callable[..., Client], language: str
) -> None:
    consult_id = server.book()["id"]
    exam_room = open_client("desktop", "exam-room", **DESKTOP)
    specialist = open_client("phone", "specialist")
    for client in (exam_room, specialist):
        client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{language}')")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)

    phone.get_by_test_id("record-start-button").click()
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()
    for page in (room, phone):
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
    wait_for_remote_video([room, phone], within_s=20)  # on the relay now

    # The specialist scrolls down to write a note: the bar stays where the thumb is.
    phone.get_by_test_id("note-input").scroll_into_view_if_needed()
    phone.mouse.wheel(0, 2000)
    assert phone.evaluate("window.scrollY") > 0
    shown = bar_buttons(phone)
    assert {b["testid"] for b in shown} >= {
        "mute-button",
        "camera-button",
        "second-button",
        "record-stop-button",
        "patient-button",
        "leave-button",
        "hangup-button",
    }, shown
    for b in shown:
        assert b["icon"] and b["label"], b
        assert b["width"] >= 44 and b["height"] >= 44, b
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"], b
        assert b["y"] >= 0 and b["y"] + b["height"] <= PHONE["height"], b
        assert b["hit"], f"{b['testid']} is covered by something else"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # what the thumb sees: the viewport only
    phone.screenshot(path=str(ARTIFACTS / f"bar-01-phone-recording-scrolled-{language}.png"))
    exam_room.screenshot(f"bar-02-exam-room-recording-{language}")

    # And each one answers a tap from down there.
    mute = phone.get_by_test_id("mute-button")
    label_before = mute.inner_text()
    mute.tap()
    expect(mute).to_have_attribute("data-off", "true")
    assert mute.inner_text() != label_before
    mute.tap()
    expect(mute).to_have_attribute("data-off", "false")
    phone.get_by_test_id("patient-button").tap()
    expect(phone.get_by_test_id("patient-panel")).to_be_visible()
    phone.get_by_test_id("patient-close").tap()
    expect(phone.get_by_test_id("patient-panel")).to_be_hidden()
    phone.get_by_test_id("hangup-button").tap()
    expect(phone.get_by_test_id("end-dialog")).to_be_visible()
    expect(phone.get_by_test_id("end-recording")).to_be_visible()  # says the recording stops
    phone.get_by_test_id("end-cancel").tap()
    expect(phone.get_by_test_id("end-dialog")).to_be_hidden()
    expect(phone.get_by_test_id("recording-indicator")).to_be_visible()
    phone.get_by_test_id("record-stop-button").tap()
    expect(phone.get_by_test_id("recording-indicator")).to_be_hidden()
    exam_room.assert_clean()
    specialist.assert_clean()


def test_the_patients_record_is_one_tap_away_in_the_call_on_both_pages(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book(
        intake={
            "gestational_week": 33,
            "bp_systolic": 152,
            "bp_diastolic": 98,
            "fetal_presentation": "cephalic",
        }
    )
    consult_id = consult["id"]
    uploaded = upload_file(server, consult_id, "B超 33周.png", "image/png", png(320, 240))
    assert uploaded.status == 201, uploaded.body
    exam_room = open_client("desktop", "exam-room", **DESKTOP)
    specialist = open_client("phone", "specialist")
    specialist.context.add_init_script("localStorage.setItem('teleconsult.lang', 'en')")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)

    for page, client, intake_text, week in (
        (room, exam_room, "孕周", "33 周"),
        (phone, specialist, "Gestational", "33 weeks"),
    ):
        page.get_by_test_id("patient-button").click()
        panel = page.get_by_test_id("patient-panel")
        expect(panel).to_be_visible()
        expect(panel.get_by_test_id("patient-reason")).to_have_text(consult["reason"])
        expect(panel.get_by_test_id("consult-intake")).to_contain_text(intake_text)
        expect(panel.get_by_test_id("consult-intake-gestational_week")).to_have_text(week)
        expect(panel.get_by_test_id("consult-intake-bp_systolic")).to_contain_text("152")
        attachment = panel.get_by_test_id("attachment-item")
        expect(attachment).to_have_count(1)
        expect(attachment).to_contain_text("B超 33周.png")
        expect(panel.get_by_test_id("attachment-thumbnail")).to_be_visible()
        client.screenshot(f"patient-01-{client.name}-patient-panel")
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        # The call went on meanwhile.
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
    exam_room.assert_clean()
    specialist.assert_clean()
