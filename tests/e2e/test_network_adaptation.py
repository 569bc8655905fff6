"""Hostile networks: the server and both browsers run inside a network namespace whose only
interface is its own loopback (tests/support/netns.py), impaired with a bandwidth cap (tc tbf),
random loss and outages (nftables). The pages adapt what they send (docs/network.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.e2e.network import (
    audio_over,
    browser_inside,
    link,
    media_mode,
    new_person,
    start_call,
    wait_for_mode,
    wait_until_video_plays,
)
from tests.support.impairments import Impairments, NamespacedServer
from tests.support.netns import NetworkNamespace

pytestmark = pytest.mark.e2e


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
def inside_browser(ns: NetworkNamespace) -> Iterator[Browser]:
    with sync_playwright() as playwright, browser_inside(playwright, ns) as browser:
        yield browser


@pytest.fixture
def people(inside_browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    room = new_person(inside_browser, "desktop")
    phone = new_person(inside_browser, "phone")
    yield room, phone
    room.close()
    phone.close()


def trace(label: str, *pages: object) -> None:
    print(label, [link(p) for p in pages])  # type: ignore[arg-type]


def test_under_a_150_kbit_cap_the_voice_goes_on_and_video_returns_when_it_lifts(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
) -> None:
    call = start_call(netns_server, *people)
    pages = [call.room, call.phone]
    assert [media_mode(p) for p in pages] == ["video", "video"]
    impair.cap(150)
    capped_at = time.monotonic()
    for page in pages:
        wait_for_mode(page, "audio-only", within_s=max(0.1, 10 - (time.monotonic() - capped_at)))
    took = time.monotonic() - capped_at
    trace(f"audio-only after {took:.1f} s", *pages)
    for page in pages:
        expect(page.get_by_test_id("media-mode")).to_be_visible()
        expect(page.get_by_test_id("peer-audio-only")).to_be_visible()
    for page in pages:
        audio = audio_over(page, 3)
        print("audio under cap", audio, audio.concealed_share)
        assert audio.samples > 0.8 * 48_000 * 3, audio
        assert audio.concealed_share < 0.5, audio
    impair.clear_cap()
    lifted_at = time.monotonic()
    for _ in range(20):
        time.sleep(1)
        print(round(time.monotonic() - lifted_at, 1), [
            {k: v for k, v in link(p).items() if k in ("mode", "probing", "estimateBps", "loss", "rttMs", "sentBps", "level")}
            for p in pages
        ])
    for page in pages:
        wait_for_mode(page, "video", within_s=max(0.1, 20 - (time.monotonic() - lifted_at)))
    trace(f"video after {time.monotonic() - lifted_at:.1f} s", *pages)
    wait_until_video_plays(pages, 15)
    for page in pages:
        expect(page.get_by_test_id("peer-audio-only")).to_be_hidden()
