"""Steps the hostile-network tests and bench/network.py share: Chromium inside a namespace, a
call between two pages in it, and what the pages' adaptation and links say
(`window.teleconsultLink()`, web_client/js/call/sender-adaptation.js)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.e2e.browser import CHROMIUM_ARGS, CONTEXT_OPTIONS
from tests.e2e.flows import HOME, VIDEOS_PLAY
from tests.support.netns import NetworkNamespace
from tests.support.netns_server import chromium_inside
from tests.support.server import RunningServer

# Frames the <video> elements of one source ('camera' | 'second') have presented, summed.
FRAMES_SHOWN = """(source) => [...document.querySelectorAll(
    `[data-testid="remote-video"][data-source="${source}"]`)]
  .reduce((n, v) => n + (v.getVideoPlaybackQuality?.().totalVideoFrames ?? 0), 0)"""

# The remote second source plays: frames arrive and its clock moves.
VIDEOS_PLAY_SECOND = """() => {
  const v = document.querySelector('[data-testid="remote-video"][data-source="second"]');
  window.__secondSeen ??= -1;
  const before = window.__secondSeen;
  window.__secondSeen = v ? v.currentTime : -1;
  return Boolean(v && v.videoWidth > 0 && before >= 0 && v.currentTime > before);
}"""


@contextmanager
def browser_inside(playwright: Playwright, ns: NetworkNamespace) -> Iterator[Browser]:
    """Headless Chromium running inside the namespace (its only network is the namespace's)."""
    wrapper = chromium_inside(ns)
    try:
        browser = playwright.chromium.launch(
            executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        wrapper.unlink(missing_ok=True)


def link(page: Page) -> dict[str, Any]:
    """What the page's adaptation and links say now."""
    snapshot: dict[str, Any] = page.evaluate("window.teleconsultLink()")
    return snapshot


def media_mode(page: Page) -> str:
    return str(page.get_by_test_id("call-view").get_attribute("data-media-mode"))


def wait_for_mode(page: Page, mode: str, within_s: float) -> float:
    """Wait until the page sends `mode` ('audio-only' | 'video'); the seconds it took."""
    started = time.monotonic()
    page.wait_for_function(
        "(mode) => document.querySelector('[data-testid=\"call-view\"]')"
        "?.dataset.mediaMode === mode",
        arg=mode,
        polling=100,
        timeout=within_s * 1000,
    )
    return time.monotonic() - started


@dataclass
class AudioWindow:
    """Received audio over a stretch of time: samples played out and the share concealed."""

    samples: int
    concealed: int

    @property
    def concealed_share(self) -> float:
        return self.concealed / self.samples if self.samples else 1.0


def audio_over(page: Page, seconds: float) -> AudioWindow:
    """The audio `page` received in the next `seconds`."""
    before = link(page)["audioIn"]
    time.sleep(seconds)  # a measuring window, not a wait for an event
    after = link(page)["audioIn"]
    return AudioWindow(
        samples=after["samples"] - before["samples"],
        concealed=after["concealed"] - before["concealed"],
    )


def wait_for_clear_audio(page: Page, within_s: float, share: float = 0.1) -> float:
    """Wait until a one-second window of `page`'s received audio is played out (at least 80 %
    of 48 kHz) with less than `share` concealed; the seconds it took (TimeoutError beyond
    `within_s`)."""
    started = time.monotonic()
    while (took := time.monotonic() - started) < within_s:
        audio = audio_over(page, 1)
        if audio.samples >= 0.8 * 48_000 and audio.concealed_share < share:
            return took
    raise TimeoutError(f"the audio did not play out under {share:.0%} concealed in {within_s} s")


def fps_over(page: Page, source: str, seconds: float) -> float:
    """Frames per second `page` showed of the remote `source` in the next `seconds`."""
    before = page.evaluate(FRAMES_SHOWN, source)
    started = time.monotonic()
    time.sleep(seconds)  # a measuring window
    after = page.evaluate(FRAMES_SHOWN, source)
    return float(after - before) / (time.monotonic() - started)


def wait_until_video_plays(pages: list[Page], within_s: float) -> float:
    """Every page's remote videos play (frames arrive and the clock moves); seconds taken."""
    started = time.monotonic()
    deadline = started + within_s
    for page in pages:
        remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        page.wait_for_function(VIDEOS_PLAY, arg="remote-video", polling=250, timeout=remaining_ms)
    return time.monotonic() - started


def new_person(browser: Browser, kind: str = "desktop") -> BrowserContext:
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", **CONTEXT_OPTIONS[kind]
    )
    context.grant_permissions(["camera", "microphone"])
    context.add_init_script("localStorage.setItem('teleconsult.debug', '1')")
    warnings = PAGE_WARNINGS.setdefault(context, [])
    context.on(
        "console",
        lambda m: (
            warnings.append(f"{m.page.url if m.page else '?'}: {m.text}")
            if m.type in ("warning", "error")
            else None
        ),
    )
    return context


PAGE_WARNINGS: WeakKeyDictionary[BrowserContext, list[str]] = WeakKeyDictionary()
"""The warnings and errors each person's pages logged, for a miss to print."""


def warnings_of(page: Page) -> list[str]:
    return PAGE_WARNINGS.get(page.context, [])


@dataclass
class Call:
    """The exam room and the specialist in one consult, both pages live."""

    consult_id: str
    room: Page
    phone: Page


def start_call(
    server: RunningServer,
    room_context: BrowserContext,
    phone_context: BrowserContext,
    *,
    specialty: str = "obstetrics",
    specialist: str = "obstetrician",
    relay: bool = False,
    within_s: float = 30,
) -> Call:
    """Book a consult, open both pages through their join links, wait until video plays both
    ways; with `relay`, on the media relay (the server's `MEDIA_MODE` default decides)."""
    consult = server.book(specialty=specialty, specialist=specialist)
    room = open_call_link_in(room_context, server, "doctor.a", consult["id"])
    phone = open_call_link_in(phone_context, server, specialist, consult["id"])
    wait_until_video_plays([room, phone], within_s)
    if relay:
        for page in (room, phone):
            expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
    return Call(consult["id"], room, phone)


def open_call_link_in(
    context: BrowserContext, server: RunningServer, username: str, consult_id: str
) -> Page:
    """Open the user's page through a join link, as `flows.open_call_link` does."""
    page = context.pages[0] if context.pages else context.new_page()
    token = server.token(username)
    page.goto(f"{server.url}{HOME[username]}#token={token}&consult={consult_id}")
    return page


def share_screen(page: Page) -> None:
    """Share the (synthetic) screen as the second source, as the ultrasound capture would be."""
    page.get_by_test_id("second-button").click()
    page.locator('[data-testid="second-option"][data-kind="screen"]').click()
    expect(page.get_by_test_id("local-second-video")).to_be_visible()


def move_to_relay(call: Call, within_s: float = 30) -> None:
    """Start recording (the specialist asks, the exam room agrees): the consult moves to the
    relay, the only path that records; wait until video plays again on it."""
    call.phone.get_by_test_id("record-start-button").click()
    if call.phone.get_by_test_id("consent-dialog").is_visible():
        call.phone.get_by_test_id("consent-agree").click()
    call.room.get_by_test_id("consent-agree").click()
    for page in (call.room, call.phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute(
            "data-media-path", "relay", timeout=within_s * 1000
        )
    wait_until_video_plays([call.room, call.phone], within_s)
