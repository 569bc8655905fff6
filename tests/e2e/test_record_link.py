"""The printable record link in real browsers: from a consult card it opens the record in the
same tab, signed in (the token is per tab and the link carries none); a record link opened
without a session (a new tab, a bookmark) goes to sign in and, once signed in, back to that
record rather than the user's home page. The place to return to is our own page only."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, sign_in, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

DESKTOP = {"viewport": {"width": 1366, "height": 768}}


def ended_consult(server: RunningServer, open_client: Callable[..., Client]) -> str:
    """A consult that took place (both joined in browsers) and the specialist ended."""
    consult_id: str = server.book()["id"]
    exam_room = open_client("desktop", "exam-room-call")
    specialist = open_client("phone", "specialist-call")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=15)
    ended = server.request(
        "POST",
        f"/api/consults/{consult_id}/end",
        {"conclusion": "门诊随访"},
        token=server.token("obstetrician"),
    )
    assert ended.status == 200, ended.body
    expect(room.get_by_test_id("call-ended")).to_be_visible()
    for client in (exam_room, specialist):
        client.context.close()
    return consult_id


def test_the_record_link_of_a_consult_card_opens_the_record_signed_in(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult_id = ended_consult(server, open_client)
    client = open_client("desktop", "exam-room", **DESKTOP)
    room = sign_in(client, server, "doctor.a")
    card = room.locator(f'li[data-consult-id="{consult_id}"]')
    link = card.get_by_test_id("consult-record-link")
    expect(link).to_be_visible()
    expect(link).not_to_have_attribute("target", "_blank")
    link.click()
    room.wait_for_url(f"{server.url}/consult-record.html#consult={consult_id}")
    sheet = room.get_by_test_id("consult-record")
    expect(sheet).to_be_visible()
    expect(sheet.get_by_test_id("record-conclusion-text")).to_have_text("门诊随访")
    assert len(client.context.pages) == 1  # in place: no second tab without the session
    client.screenshot("record-01-desktop-record-from-card-zh")
    # And back to work from there.
    room.get_by_test_id("record-back").click()
    room.wait_for_url(f"{server.url}/exam-room.html")
    client.assert_clean()


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_record_opened_without_a_session_returns_there_after_signing_in(
    server: RunningServer, open_client: Callable[..., Client], language: str
) -> None:
    consult_id = ended_consult(server, open_client)
    client = open_client("phone", "new-tab")
    client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{language}')")
    page = client.page
    page.goto(f"{server.url}/consult-record.html#consult={consult_id}")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert "next=" in page.url
    client.screenshot(f"record-02-phone-sign-in-for-record-{language}")
    page.get_by_test_id("login-username").fill("obstetrician")
    page.get_by_test_id("login-password").fill("demo-obstetrician")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{server.url}/consult-record.html#consult={consult_id}")
    expect(page.get_by_test_id("record-conclusion-text")).to_have_text("门诊随访")
    client.screenshot(f"record-03-phone-record-after-sign-in-{language}")
    client.assert_clean()


def test_sign_in_returns_only_to_our_own_pages(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("desktop", "sign-in")
    for next_page in ("https://example.org/", "//example.org/x", "/consult-record.html#token=x"):
        page = client.context.new_page()  # a new tab: no session in it
        page.goto(f"{server.url}/?next={quote(next_page, safe='')}")
        page.get_by_test_id("login-username").fill("doctor.a")
        page.get_by_test_id("login-password").fill("demo-doctor.a")
        page.get_by_test_id("login-submit").click()
        page.wait_for_url(f"{server.url}/exam-room.html")
        page.close()
    client.assert_clean()
