"""Small things a first-time user notices, each checked where it shows: a booking form that
stars every required field; on the phone, a note box whose placeholder fits and mentions no
keyboard shortcut (the desk, with a keyboard, is told Ctrl+Enter); the printable record's link
in an ended call apart from "back to the list"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, sign_in, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# Every visible required control of the booking form, with whether its label shows a star.
REQUIRED_STARRED = """() => [...document.querySelectorAll('[data-testid="book-form"] [required]')]
  .filter((el) => el.offsetParent !== null)
  .map((el) => {
    const label = document.querySelector(`label[for="${el.id}"]`);
    const after = label ? getComputedStyle(label, '::after').content : '';
    return { id: el.id, label: label?.textContent ?? null, starred: after.includes('*') };
  })"""
# How wide the note box's placeholder is in the box's own font, and the room it has.
PLACEHOLDER_FITS = """() => {
  const box = document.querySelector('[data-testid="note-input"]');
  const style = getComputedStyle(box);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${style.fontSize} ${style.fontFamily}`;
  const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return { text: box.placeholder, width: ctx.measureText(box.placeholder).width, room };
}"""
# The gap between two elements' boxes: the larger of the horizontal and vertical clearance.
GAP = """([a, b]) => {
  const r = document.querySelector(a).getBoundingClientRect();
  const s = document.querySelector(b).getBoundingClientRect();
  return Math.max(s.left - r.right, r.left - s.right, s.top - r.bottom, r.top - s.bottom);
}"""


@pytest.mark.parametrize(("lang", "short"), [("zh-CN", "zh"), ("en", "en")])
def test_every_required_field_of_the_booking_form_is_starred(
    server: RunningServer, open_client: Callable[..., Client], lang: str, short: str
) -> None:
    client = open_client("desktop", f"booking-{short}")
    client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{lang}')")
    room = sign_in(client, server, "doctor.a")
    room.get_by_test_id("book-specialty").select_option("obstetrics")
    expect(room.get_by_test_id("intake-gestational_week")).to_be_visible()
    fields = room.evaluate(REQUIRED_STARRED)
    # patient name, specialty, reason, time and the obstetric intake's required answer(s)
    assert {"patient-name", "specialty", "reason", "scheduled-at"} < {f["id"] for f in fields}
    assert [f for f in fields if not f["starred"]] == [], fields
    expect(room.get_by_test_id("book-form")).to_contain_text("*")
    client.screenshot(f"52-{short}-booking-form-required")
    client.assert_clean()


def assert_placeholder_fits(page: Page) -> None:
    fits = page.evaluate(PLACEHOLDER_FITS)
    assert fits["width"] <= fits["room"], fits  # one line of the two the box has, not cut


def test_the_note_box_fits_a_phone_and_the_record_link_stands_apart_after_the_end(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=15)

    for page in (room, phone):
        expect(page.get_by_test_id("note-input")).to_be_visible()
        assert "Ctrl" not in (page.get_by_test_id("note-input").get_attribute("placeholder") or "")
    assert_placeholder_fits(phone)
    expect(phone.get_by_test_id("note-key-hint")).to_be_hidden()  # a touch screen
    expect(room.get_by_test_id("note-key-hint")).to_have_text("Ctrl+Enter 提交。")
    specialist.screenshot("53-zh-specialist-note-box")
    phone.evaluate("localStorage.setItem('teleconsult.lang', 'en')")
    phone.get_by_test_id("lang-switch").select_option("en")
    expect(phone.get_by_test_id("note-input")).to_have_attribute(
        "placeholder", "Findings, measurements, advice"
    )
    assert_placeholder_fits(phone)
    specialist.screenshot("53-en-specialist-note-box")

    # The consult ends (over REST, as any other client could end it): both see it ended.
    ended = server.request(
        "POST",
        f"/api/consults/{consult['id']}/end",
        {"skip_conclusion": True},
        token=server.token("obstetrician"),
    )
    assert ended.status == 200, ended.body
    for page in (room, phone):
        expect(page.get_by_test_id("call-ended")).to_be_visible()
        link = page.get_by_test_id("call-ended").get_by_test_id("consult-record-link")
        expect(link).to_be_visible()
        gap = page.evaluate(
            GAP,
            [
                '[data-testid="call-ended"] [data-testid="consult-record-link"]',
                '[data-testid="call-back-button"]',
            ],
        )
        assert gap >= 8, gap  # not touching: two things to tap, told apart
        box = link.bounding_box()
        assert box is not None and box["height"] >= 44, box
    exam_room.screenshot("54-zh-exam-room-ended-record-link")
    specialist.screenshot("54-en-specialist-ended-record-link")
    exam_room.assert_clean()
    specialist.assert_clean()
