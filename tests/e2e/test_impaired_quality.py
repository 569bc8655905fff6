"""A consult recorded under impairment, reviewed: the server and both browsers run inside a
network namespace (tests/support/netns.py); the exam room and the specialist start a consented
recording (the consult moves to the relay), the namespace then loses 20 % of its packets at
random for a while, the recording stops and the consult ends. The supervisor's review page shows
both participants' quality timeline under the recordings, with the impaired stretch rated worse
(and with more loss) than the clean one, and the statistics give the booking institution's call
quality (docs/network.md, "Quality telemetry")."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.e2e.accessibility import assert_accessible
from tests.e2e.flows import end_consult
from tests.e2e.network import browser_inside, move_to_relay, new_person, start_call
from tests.e2e.test_relay_recording import wait_for_recordings
from tests.support.impairments import Impairments
from tests.support.netns import NetworkNamespace
from tests.support.netns_server import NamespacedServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOSS_PERCENT = 20
IMPAIRED_S = 20
"""Long enough that at least one whole 10 s bucket is filled with reports of the lossy link."""
CLEAN_S = 20
"""Clean recorded time on the relay before the loss starts: it holds at least one whole bucket."""
RANK = {"good": 0, "fair": 1, "poor": 2, "audio_only": 3}
BUCKET = timedelta(seconds=10)
REPORT_EVERY = timedelta(seconds=5)
SHANGHAI = ZoneInfo("Asia/Shanghai")
LOSS_IN_TITLE = re.compile(r"丢包 ([0-9.]+)%")
"""The loss figure in a cell's title (zh-CN `quality.cell`)."""


@pytest.fixture(scope="module")
def ns() -> Iterator[NetworkNamespace]:
    with NetworkNamespace.create("impq") as namespace:
        yield namespace


@pytest.fixture(scope="module")
def impair(ns: NetworkNamespace) -> Iterator[Impairments]:
    impairments = Impairments(ns)
    yield impairments
    impairments.clear()


@pytest.fixture(scope="module")
def netns_server(ns: NetworkNamespace) -> Iterator[NamespacedServer]:
    with NamespacedServer(ns=ns) as running:
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


def quality_of(server: NamespacedServer, consult_id: str) -> dict[str, Any]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/quality", token=server.token("supervisor")
    )
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def wait_for_buckets_until(
    server: NamespacedServer, consult_id: str, moment: datetime, within_s: float
) -> dict[str, Any]:
    """The consult's quality once both participants' pages have a bucket holding reports up
    to `moment` (a report every 5 s; the buckets are written by a flush every 10 s)."""
    deadline = time.monotonic() + within_s
    while True:
        quality = quality_of(server, consult_id)
        late = {
            b["participant"]["id"]
            for b in quality["buckets"]
            if b["source"] == "client"
            and datetime.fromisoformat(b["start"]) + BUCKET > moment - REPORT_EVERY
        }
        if len(late) == 2:
            return quality
        if time.monotonic() > deadline:
            raise AssertionError(f"no buckets up to {moment} within {within_s} s: {quality}")
        time.sleep(1)  # the flush runs every 10 s; polling the REST reply


def sign_in_page(page: Page, server: NamespacedServer, username: str) -> None:
    page.goto(f"{server.url}/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(f"demo-{username}")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{server.url}/supervisor.html")


def test_a_consult_recorded_under_20_percent_loss_shows_the_bad_stretch_in_its_review(
    netns_server: NamespacedServer,
    impair: Impairments,
    people: tuple[BrowserContext, BrowserContext],
    inside_browser: Browser,
) -> None:
    errors: list[str] = []
    for context in people:
        context.new_page().on("pageerror", lambda e: errors.append(str(e)))
    call = start_call(netns_server, *people)
    move_to_relay(call)  # the specialist asks to record, the exam room agrees
    for page in (call.room, call.phone):
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
    relay_ready = datetime.now(UTC)
    time.sleep(CLEAN_S)  # clean recorded time: the baseline the lossy stretch is compared with
    impair.loss(LOSS_PERCENT)
    impaired_from = datetime.now(UTC)
    try:
        time.sleep(IMPAIRED_S)  # the impairment's length
    finally:
        impair.clear_loss()
    impaired_until = datetime.now(UTC)

    call.phone.get_by_test_id("record-stop-button").click()
    for page in (call.room, call.phone):
        expect(page.get_by_test_id("recording-indicator")).to_be_hidden(timeout=15_000)
    end_consult(call.phone, "胎心正常 网络差时段已复核")
    wait_for_recordings(netns_server, call.consult_id, within_s=30)
    quality = wait_for_buckets_until(netns_server, call.consult_id, impaired_until, 30)

    # Per participant: the page's buckets wholly reported before the loss began (after the
    # move to the relay) and those with a report covering the lossy stretch (a report covers
    # the 5 s before it arrives).
    by_person: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for b in quality["buckets"]:
        if b["source"] != "client":
            continue
        start = datetime.fromisoformat(b["start"])
        person = by_person.setdefault(b["participant"]["display_name"], {"clean": [], "lossy": []})
        if start >= relay_ready and start + BUCKET <= impaired_from:
            person["clean"].append(b)
        elif start + BUCKET > impaired_from + REPORT_EVERY and start < impaired_until:
            person["lossy"].append(b)
    assert len(by_person) == 2, by_person
    worse: list[dict[str, Any]] = []
    for name, part in by_person.items():
        for stretch in ("clean", "lossy"):
            figures = [(b["rating"], b["loss_pct"], b["at_s"]) for b in part[stretch]]
            print(f"{name} {stretch}: (rating, loss %, at s) {figures}")
        assert part["clean"] and part["lossy"], part
        assert all(b["at_s"] is not None for b in part["lossy"]), "the lossy stretch was recorded"
        clean_rank = max(RANK[b["rating"]] for b in part["clean"])
        clean_loss = max(b["loss_pct"] for b in part["clean"])
        # Each page measured the loss (it receives through the lossy relay leg) ...
        assert max(b["loss_pct"] for b in part["lossy"]) > max(clean_loss, 5), part
        # ... and for at least one of them the lossy stretch is rated worse than any clean cell
        # (a clean cell right after the move to the relay may be `poor` for its freezes).
        worst = max(part["lossy"], key=lambda b: (RANK[b["rating"]], b["loss_pct"]))
        if RANK[worst["rating"]] > clean_rank and worst["loss_pct"] > clean_loss:
            worse.append(worst)
    assert worse, "no participant's lossy stretch was rated worse, with more loss, than clean"

    supervisor = new_person(inside_browser, "desktop")
    try:
        page = supervisor.pages[0] if supervisor.pages else supervisor.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in_page(page, netns_server, "supervisor")
        page.goto(f"{netns_server.url}/review.html?consult={call.consult_id}")
        expect(page.get_by_test_id("quality-person")).to_have_count(2, timeout=20_000)
        timeline = page.get_by_test_id("quality-timeline")
        for name in by_person:
            expect(timeline).to_contain_text(name)
        # The worse cells are shown as such, their loss figure in their title.
        for bucket in worse:
            person = page.get_by_test_id("quality-person").filter(
                has_text=bucket["participant"]["display_name"]
            )
            cells = person.locator(f'.quality-cell[data-rating="{bucket["rating"]}"]')
            titles = cells.evaluate_all("(cells) => cells.map((c) => c.title)")
            shown = [float(m[1]) for title in titles if (m := LOSS_IN_TITLE.search(title))]
            assert any(abs(loss - bucket["loss_pct"]) < 0.05 for loss in shown), titles
        ratings = page.locator(".quality-cell").evaluate_all(
            "(cells) => cells.map((c) => c.dataset.rating)"
        )
        print(f"review page cells: {ratings}")
        assert_accessible(page, "review page of a consult recorded under loss (zh-CN)")
    finally:
        supervisor.close()

    month = datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m")
    consult = netns_server.request(
        "GET", f"/api/consults/{call.consult_id}", token=netns_server.token("supervisor")
    )
    assert consult.status == 200, consult.body
    booked_by = consult.body["requesting_institution"]["id"]
    reply = netns_server.request(
        "GET",
        f"/api/statistics?from={month}&to={month}&institution={booked_by}",
        token=netns_server.token("supervisor"),
    )
    assert reply.status == 200, reply.body
    rows = [r for r in reply.body["rows"] if r["institution_id"] == booked_by]
    print(f"statistics of institution {booked_by}: {[r['quality'] for r in rows]}")
    quality_rows = [r["quality"] for r in rows if r["quality"]["consults"] >= 1]
    assert quality_rows, rows
    figures = quality_rows[0]
    assert figures["hours"] > 0
    assert figures["median_bitrate_kbps"] is not None and figures["median_bitrate_kbps"] > 0
    assert figures["freezes_per_hour"] is not None
    assert figures["audio_only_share"] is not None
    assert not errors, errors
