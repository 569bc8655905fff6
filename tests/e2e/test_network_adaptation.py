"""Hostile networks: the server and both browsers run inside a network namespace whose only
interface is its own loopback (tests/support/netns.py), impaired with a bandwidth cap (tc tbf),
random loss and outages (nftables). The pages adapt what they send (docs/network.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.network import (
    VIDEOS_PLAY_SECOND,
    Call,
    audio_over,
    browser_inside,
    fps_over,
    link,
    media_mode,
    move_to_relay,
    new_person,
    share_screen,
    start_call,
    wait_for_clear_audio,
    wait_for_mode,
    wait_until_video_plays,
    warnings_of,
)
from tests.support.impairments import Impairments
from tests.support.netns import NetworkNamespace
from tests.support.netns_server import NamespacedServer

pytestmark = pytest.mark.e2e

RELAY_LO_KBIT = 300
"""The cap on `lo` that gives a relay call's legs what 150 kbit/s gives a p2p call."""


@pytest.fixture(scope="module")
def ns() -> Iterator[NetworkNamespace]:
    with NetworkNamespace.create("adapt") as namespace:
        yield namespace


@pytest.fixture(scope="module")
def impair(ns: NetworkNamespace) -> Iterator[Impairments]:
    impairments = Impairments(ns)
    yield impairments
    impairments.clear()


@pytest.fixture(autouse=True)
def unimpaired(impair: Impairments) -> Iterator[None]:
    """Every test starts and ends on a clean network."""
    impair.clear()
    yield
    impair.clear()


@pytest.fixture(scope="module")
def netns_server(ns: NetworkNamespace) -> Iterator[NamespacedServer]:
    with NamespacedServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}, ns=ns
    ) as running:
        yield running


@pytest.fixture(scope="module")
def inside_browser(playwright: Playwright, ns: NetworkNamespace) -> Iterator[Browser]:
    with browser_inside(playwright, ns) as browser:
        yield browser


@pytest.fixture
def people(inside_browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    room = new_person(inside_browser, "desktop")
    phone = new_person(inside_browser, "phone")
    yield room, phone
    room.close()
    phone.close()


def wait_for_level(page: Page, at_least: int, within_s: float) -> None:
    page.wait_for_function(
        "(level) => window.teleconsultLink().level >= level",
        arg=at_least,
        polling=250,
        timeout=within_s * 1000,
    )


def follow_until(pages: list[Page], mode: str, since: float, within_s: float, what: str) -> None:
    """Wait until every page is in `mode`, at most `within_s` after `since`. The pages watch
    their own mode (100 ms polling inside the page, so a loaded machine does not delay the
    measure); every 2 s what they say (mode, probe, estimate, loss, round trip, sent) is noted,
    and printed on failure, so that a miss says why."""
    timeline = []
    keys = ("mode", "probing", "estimateBps", "loss", "rttMs", "sentBps", "sampledMsAgo")
    for page in pages:
        while True:
            left = within_s - (time.monotonic() - since)
            try:
                wait_for_mode(page, mode, within_s=max(0.1, min(2.0, left)))
                break
            except PlaywrightTimeoutError:
                timeline.append((round(time.monotonic() - since, 1), [
                    {k: link(p)[k] for k in keys} for p in pages
                ]))  # fmt: skip
                if left <= 2.0:
                    for moment in timeline:
                        print(*moment)
                    for p in pages:
                        print(p.url, "warned:", *warnings_of(p)[-20:], sep="\n  ")
                    pytest.fail(f"a page did not {what} within {within_s} s")


def capped_to_audio_only_and_back(
    call: Call, impair: Impairments, kbit: int
) -> tuple[float, float]:
    """Cap the namespace to `kbit`: both pages go audio-only within 10 s, the voice keeps
    flowing; lift it: both send video again within 20 s. The two times taken."""
    pages = [call.room, call.phone]
    assert [media_mode(p) for p in pages] == ["video", "video"]
    impair.cap(kbit)
    capped_at = time.monotonic()
    follow_until(pages, "audio-only", capped_at, within_s=10, what="go audio-only under the cap")
    to_audio_only = time.monotonic() - capped_at
    for page in pages:
        expect(page.get_by_test_id("media-mode")).to_be_visible()
        # ... and the other side was told: the badge on our tile there.
        expect(page.get_by_test_id("peer-audio-only")).to_be_visible()
    for page in pages:
        # The queue the video left behind drains first (up to the bucket's latency, and the
        # jitter buffer catches up); from then on the voice plays out.
        settled = wait_for_clear_audio(page, 10, share=0.25)
        audio = audio_over(page, 3)
        print(f"audio under the cap: settled {settled:.1f} s, then {audio}")
        assert audio.samples >= 0.8 * 48_000 * 3, audio  # 48 kHz played out, concealed or not
        assert audio.concealed_share < 0.35, audio  # probes of the link cost some
    impair.clear_cap()
    lifted_at = time.monotonic()
    follow_until(pages, "video", lifted_at, within_s=20, what="send video again after the cap")
    back_to_video = time.monotonic() - lifted_at
    wait_until_video_plays(pages, 15)
    for page in pages:
        expect(page.get_by_test_id("peer-audio-only")).to_be_hidden()
    print(f"audio-only after {to_audio_only:.1f} s, video again {back_to_video:.1f} s after")
    return to_audio_only, back_to_video


def test_under_a_150_kbit_cap_the_voice_goes_on_and_video_returns_when_it_lifts(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
) -> None:
    call = start_call(netns_server, *people)
    capped_to_audio_only_and_back(call, impair, 150)


def test_on_the_relay_too_a_150_kbit_link_is_audio_only_and_video_returns(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
) -> None:
    call = start_call(netns_server, *people)
    move_to_relay(call)
    # Through the relay every stream crosses the namespace's loopback twice (page to relay,
    # relay to page): 300 kbit/s on `lo` leaves each leg what 150 kbit/s leaves a p2p call.
    capped_to_audio_only_and_back(call, impair, RELAY_LO_KBIT)


def test_under_a_500_kbit_cap_the_ultrasound_picture_keeps_10_fps_and_the_camera_gives_way(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
) -> None:
    call = start_call(netns_server, *people)
    share_screen(call.room)  # the capture card's picture, as the exam room shares it
    call.phone.wait_for_function(VIDEOS_PLAY_SECOND, polling=250, timeout=20_000)
    impair.cap(500)
    wait_for_level(call.room, 2, within_s=15)  # the level where the camera is off
    # ... and the queue the full video left behind has drained: the cap's steady state.
    call.room.wait_for_function(
        "() => (window.teleconsultLink().rttMs ?? 1e9) < 150", polling=250, timeout=15_000
    )
    second = fps_over(call.phone, "second", 5)
    camera = fps_over(call.phone, "camera", 5)
    room = link(call.room)
    print(f"under 500 kbit/s: second source {second:.1f} fps, face camera {camera:.1f} fps")
    keys = ("mode", "level", "estimateBps", "loss", "rttMs", "sentBps", "limitation")
    print("the exam room's link:", {k: room[k] for k in keys})
    print("the phone received:", link(call.phone)["videoIn"])
    assert room["mode"] == "video"  # a cap the least video fits under stops no ultrasound
    assert second >= 10
    assert camera < 1


@pytest.mark.parametrize("percent", [5, 20, 40])
def test_random_loss_the_voice_carries_on_and_the_call_recovers(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
    percent: int,
) -> None:
    call = start_call(netns_server, *people)
    pages = [call.room, call.phone]
    impair.loss(percent)
    audio = audio_over(call.phone, 8)
    modes = [media_mode(p) for p in pages]
    print(f"{percent} % loss: {audio}, {audio.concealed_share:.1%} concealed; modes {modes}")
    assert audio.samples >= 0.8 * 48_000 * 8, audio  # the voice is played out all along
    if percent <= 5:
        assert modes == ["video", "video"]  # a little loss costs no video
    impair.clear_loss()
    for page in pages:
        wait_for_mode(page, "video", within_s=20)
    print(f"{percent} % loss: video plays again {wait_until_video_plays(pages, 20):.1f} s later")


@pytest.mark.parametrize(
    "seconds",
    [5, pytest.param(15, marks=pytest.mark.slow), pytest.param(30, marks=pytest.mark.slow)],
)
def test_after_an_outage_the_call_recovers(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
    seconds: int,
) -> None:
    call = start_call(netns_server, *people)
    pages = [call.room, call.phone]
    impair.outage()
    time.sleep(seconds)  # the outage's length: nothing gets through, nothing to wait for
    impair.clear_loss()
    restored = time.monotonic()
    for page in pages:
        wait_for_mode(page, "video", within_s=30)
    wait_until_video_plays(pages, max(1.0, 30 - (time.monotonic() - restored)))
    print(f"{seconds} s outage: video plays again {time.monotonic() - restored:.1f} s later")
    for page in pages:
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        print(f"{seconds} s outage: clear audio after {wait_for_clear_audio(page, 15):.1f} s more")
