"""Real headless Chromium for the e2e tests: one browser for tests/e2e, fresh contexts per test.

Every context aborts (and records) requests that leave loopback, and records uncaught page
errors, so each test can assert the client stayed on our server and ran without exceptions.
When a test fails, every page it opened is screenshotted into test-artifacts/e2e/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Playwright, Route, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, CONTEXT_OPTIONS, LOOPBACK, Client, Kind


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_failed_key] = report.failed
    return report


_failed_key = pytest.StashKey[bool]()


# Package scope, not session: the sync API keeps an event loop running on this thread while
# Playwright is up, and the asyncio tests collected after tests/e2e could not start theirs; it
# stops after the last test of tests/e2e. The tests that run Chromium inside a network
# namespace launch theirs from this same Playwright (a second one could not start).
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Chromium for every e2e test (each test gets fresh contexts from `open_client`)."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def open_client(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Client]]:
    """`open_client(kind, name)` → a fresh browser context with one blank page."""
    clients: list[Client] = []

    def open_(kind: Kind = "desktop", name: str | None = None, **options: Any) -> Client:
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", **{**CONTEXT_OPTIONS[kind], **options}
        )
        context.grant_permissions(["camera", "microphone"])
        # The client's negotiation trace (js/log.js) ends up in failure dumps.
        context.add_init_script("localStorage.setItem('teleconsult.debug', '1')")
        client = Client(name or kind, context, context.new_page())

        def keep_on_loopback(route: Route) -> None:
            if urlsplit(route.request.url).hostname in LOOPBACK:
                route.continue_()
            else:
                client.offsite_requests.append(route.request.url)
                route.abort()

        def console(message: ConsoleMessage) -> None:
            client.console.append(f"{message.type}: {message.text}")
            if message.type == "error":
                client.page_errors.append(f"console: {message.text}")

        context.route("**/*", keep_on_loopback)
        client.page.on("pageerror", lambda err: client.page_errors.append(str(err)))
        client.page.on("console", console)
        clients.append(client)
        return client

    yield open_

    if request.node.stash.get(_failed_key, False):
        test = re.sub(r"[^\w.-]+", "_", request.node.name)
        for client in clients:
            try:
                client.screenshot(f"{test}-{client.name}-failure", check=False)
                client.dump(f"{test}-{client.name}-failure")
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"no failure artifacts of {client.name}: {exc}")
    for client in clients:
        client.context.close()
