"""Signing in: a wrong password is refused in words, and each role lands on its own page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import HOME, sign_in
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

LOGIN_ANSWER_WITHIN_MS = 60_000
"""How long the server may take to answer a login: one argon2id verify at low priority, which
a busy machine's other work can hold up for many seconds."""


def test_wrong_password_is_refused_with_a_message_and_no_token(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("phone", "login")
    page = client.page
    page.goto(f"{server.url}/")
    page.get_by_test_id("login-username").fill("obstetrician")
    page.get_by_test_id("login-password").fill("not-the-password")
    # The server's answer first: verifying a password is a deliberately slow argon2id hash, run
    # at a low priority (signaling/passwords.py), so on a loaded machine the answer may take
    # longer than the page's reaction to it may. The message must follow the answer.
    with page.expect_response(
        lambda response: response.url == f"{server.url}/api/auth/login",
        timeout=LOGIN_ANSWER_WITHIN_MS,
    ) as answer:
        page.get_by_test_id("login-submit").click()
    assert answer.value.status == 401
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    assert page.url == f"{server.url}/"
    assert page.evaluate("sessionStorage.getItem('teleconsult.token')") is None
    client.screenshot("12-login-refused-phone")
    # A 401 from the login form is the expected answer here, not a script error.
    client.page_errors = [e for e in client.page_errors if "401" not in e]
    client.assert_clean()


def test_supervisor_lands_on_a_list_of_consults(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    server.book()  # at least one consult to list
    client = open_client("desktop", "supervisor")
    page = client.page
    page.goto(f"{server.url}/")
    page.get_by_test_id("login-username").fill("supervisor")
    page.get_by_test_id("login-password").fill("demo-supervisor")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{server.url}{HOME['supervisor']}")
    expect(page.get_by_test_id("consult-item").first).to_be_visible()
    client.screenshot("13-supervisor-list")
    client.assert_clean()


def test_a_specialist_opening_the_exam_room_page_is_sent_to_their_own(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("phone", "specialist")
    page = sign_in(client, server, "obstetrician")
    page.goto(f"{server.url}/exam-room.html")
    page.wait_for_url(f"{server.url}/specialist.html")
    client.assert_clean()
