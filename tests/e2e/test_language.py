"""The client speaks zh-CN by default and English after the switch, and remembers the choice."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import sign_in
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def test_pages_are_chinese_by_default_and_english_after_switching(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("desktop", "language")
    page = client.page
    page.goto(f"{server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    assert page.evaluate("import('/js/i18n.js').then((m) => m.missingKeys())") == []

    page.get_by_test_id("lang-switch").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")
    expect(page).to_have_title("Sign in · Teleconsult")

    page.reload()  # the choice is kept
    expect(page.locator("html")).to_have_attribute("lang", "en")
    room = sign_in(client, server, "doctor.a")
    expect(room.get_by_role("heading", name="Book a consult")).to_be_visible()
    expect(room.get_by_test_id("lang-switch")).to_have_value("en")
    untranslated = room.evaluate(
        "[...document.querySelectorAll('[data-i18n]')]"
        ".filter((el) => el.textContent === el.dataset.i18n).map((el) => el.dataset.i18n)"
    )
    assert untranslated == []
    client.screenshot("11-exam-room-english")

    room.get_by_test_id("lang-switch").select_option("zh-CN")
    expect(room.get_by_role("heading", name="预约会诊")).to_be_visible()
    expect(room.locator("html")).to_have_attribute("lang", "zh-CN")
    client.assert_clean()
