"""Attachments in real browsers: the exam-room doctor books with an intake form and files
(a real PNG and a PDF, plus an HTML page named .png that the server refuses without losing the
booking); the specialist's phone shows the new request live with the image thumbnail."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import book, sign_in, unique_patient
from tests.support.images import jpeg, pdf, png
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

THUMBNAIL_DECODED = """(card) => [...card.querySelectorAll('[data-testid="attachment-thumbnail"]')]
  .some((img) => img.complete && img.naturalWidth === 320 && img.src.startsWith('blob:'))"""


def test_the_doctor_books_with_an_image_and_the_phone_shows_its_thumbnail_live(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = sign_in(exam_room, server, "doctor.a")
    phone = sign_in(specialist, server, "obstetrician")

    patient = unique_patient()
    book(
        room,
        patient,
        reason="胎儿生长受限 请看超声截图",
        intake={
            "gestational_week": "32",
            "bp_systolic": "128",
            "bp_diastolic": "82",
            "fetal_presentation": "cephalic",
        },
        files=[
            {"name": "B超 32周.png", "mimeType": "image/png", "buffer": png(320, 240)},
            {"name": "超声报告.pdf", "mimeType": "application/pdf", "buffer": pdf()},
            {
                "name": "not-an-image.png",
                "mimeType": "image/png",
                "buffer": b"<!doctype html><script>alert(1)</script>",
            },
        ],
    )

    # Each file has its own line: two uploaded, the disguised HTML page refused with a reason
    # and a retry button; the booking stands either way.
    uploads = room.get_by_test_id("upload-item")
    expect(uploads).to_have_count(3)
    expect(uploads.nth(0)).to_have_attribute("data-state", "done")
    expect(uploads.nth(1)).to_have_attribute("data-state", "done")
    refused = uploads.nth(2)
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.get_by_test_id("upload-status")).to_contain_text("文件不被接受")
    expect(refused.get_by_test_id("upload-retry")).to_be_visible()
    # Chromium logs the deliberate 422 as a failed resource load.
    exam_room.page_errors = [e for e in exam_room.page_errors if "422" not in e]

    request_card = (
        phone.get_by_test_id("incoming-list")
        .get_by_test_id("consult-item")
        .filter(has_text=patient)
    )
    expect(request_card).to_be_visible(timeout=10_000)
    expect(request_card.get_by_test_id("consult-intake-gestational_week")).to_have_text("32 周")
    items = request_card.get_by_test_id("attachment-item")
    expect(items).to_have_count(2)  # arrived live (attachment-added), no reload
    expect(items.nth(0)).to_contain_text("B超 32周.png")
    expect(items.nth(1)).to_contain_text("超声报告.pdf")
    expect(items.nth(1)).to_have_attribute("data-media-type", "application/pdf")
    items.nth(0).scroll_into_view_if_needed()  # thumbnails load once on screen
    phone.wait_for_function(THUMBNAIL_DECODED, arg=request_card.element_handle(), timeout=10_000)
    specialist.screenshot("44-specialist-request-with-attachments")

    # The PDF opens in a tab of its own, from the bytes fetched with the token.
    with specialist.context.expect_page() as opened:
        items.nth(1).get_by_test_id("attachment-open").click()
    tab = opened.value
    tab.wait_for_url(re.compile(r"^blob:http://127\.0\.0\.1:\d+/"))
    tab.close()

    # The exam room's own card shows them too.
    room_card = room.get_by_test_id("consult-item").filter(has_text=patient)
    expect(room_card.get_by_test_id("attachment-item")).to_have_count(2)
    room_card.get_by_test_id("attachment-item").nth(0).scroll_into_view_if_needed()
    room.wait_for_function(THUMBNAIL_DECODED, arg=room_card.element_handle(), timeout=10_000)
    exam_room.screenshot("45-exam-room-booked-with-attachments")

    # The specialist's looks are in the audit trail.
    consult_id = room_card.get_attribute("data-consult-id")
    trail = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    ).body["entries"]
    obstetrician = server.request("GET", "/api/me", token=server.token("obstetrician")).body
    actions = [(e["action"], e["actor_id"]) for e in trail]
    assert actions.count(("attachment.added", trail[0]["actor_id"])) == 2
    assert ("attachment.viewed", obstetrician["id"]) in actions

    # The refused file is replaced by a good one from the card: it uploads, and the phone
    # hears of it live.
    room_card.get_by_test_id("card-add-files").set_input_files(
        [{"name": "胎心监护.jpg", "mimeType": "image/jpeg", "buffer": jpeg(160, 120)}]
    )
    expect(room_card.get_by_test_id("upload-item")).to_have_attribute("data-state", "done")
    expect(room_card.get_by_test_id("attachment-item")).to_have_count(3)
    expect(items).to_have_count(3)
    expect(items.nth(2)).to_contain_text("胎心监护.jpg")

    # The printable record lists them.
    room.goto(f"{server.url}/consult-record.html#consult={consult_id}")
    rows = room.get_by_test_id("record-attachment")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("B超 32周.png")
    expect(rows.nth(0)).to_contain_text("image/png")
    # Chromium's PDF viewer loads its own parts (chrome://, chrome-extension://): browser
    # internals, not the network.
    specialist.offsite_requests = [
        u
        for u in specialist.offsite_requests
        if not u.startswith(("chrome://", "chrome-extension://"))
    ]
    exam_room.assert_clean()
    specialist.assert_clean()
