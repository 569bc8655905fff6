"""Every page, in both languages, at desktop and phone size, passes axe-core with no serious,
moderate or critical violation (the states the other e2e tests reach are checked where they
take their screenshots: tests/e2e/browser.py `Client.screenshot`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.accessibility import axe_violations, describe
from tests.e2e.browser import Client
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

LANGUAGES = {"zh-CN": "zh", "en": "en"}


def open_as(client: Client, server: RunningServer, path: str, username: str) -> Page:
    """Open `path` signed in as `username` through a link fragment, as the demo links do."""
    page = client.page
    sep = "&" if "#" in path else "#"
    page.goto(f"{server.url}{path}{sep}token={server.token(username)}")
    return page


@pytest.mark.parametrize("kind", ["desktop", "phone"])
@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_page_has_no_serious_or_moderate_axe_violation(
    server: RunningServer, open_client: Callable[..., Client], lang: str, kind: str
) -> None:
    consult: dict[str, Any] = server.book()
    requested = server.book(accept=False)
    assert requested["status"] == "requested"
    client = open_client(kind, f"a11y-{lang}-{kind}")
    client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{lang}')")
    label = f"a11y-{LANGUAGES[lang]}-{kind}"
    page = client.page
    found: dict[str, str] = {}

    def check(state: str) -> None:
        """Screenshot the state and keep what axe says, so one run reports every page."""
        client.screenshot(f"{label}-{state}", check=False)
        violations = axe_violations(page)
        if violations:
            found[state] = describe(violations)

    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("login-submit")).to_be_visible()
    check("login")

    open_as(client, server, "/exam-room.html", "doctor.a")
    expect(page.get_by_test_id("consult-item").first).to_be_visible()
    check("exam-room")

    open_as(client, server, "/specialist.html", "obstetrician")
    expect(page.get_by_test_id("consult-item").first).to_be_visible()
    check("specialist")

    open_as(client, server, "/supervisor.html", "supervisor")
    expect(page.get_by_test_id("consult-item").first).to_be_visible()
    expect(page.get_by_test_id("stats-table")).to_be_visible()
    check("supervisor")

    open_as(client, server, f"/review.html?consult={consult['id']}", "supervisor")
    expect(page.get_by_test_id("review")).to_be_visible()
    expect(page.get_by_test_id("audit-table").locator("tbody tr").first).to_be_visible()
    check("review")

    open_as(client, server, "/statistics.html", "supervisor")
    expect(page.get_by_test_id("stats-table")).to_be_visible()
    check("statistics")

    open_as(client, server, "/admin.html", "admin")
    expect(page.get_by_test_id("shift-table").locator("tbody tr").first).to_be_visible()
    check("admin")

    open_as(client, server, f"/consult-record.html#consult={consult['id']}", "doctor.a")
    expect(page.get_by_test_id("consult-record")).to_be_visible()
    check("consult-record")
    assert found == {}, "\n".join(f"{state}:\n{text}" for state, text in found.items())
    client.assert_clean()
