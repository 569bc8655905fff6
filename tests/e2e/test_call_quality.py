"""Call quality in real browsers: during a call between the exam room (desktop) and the
specialist's phone, both pages report `quality-report` every 5 s and show the server's rating
as a small signal indicator (axe-clean, zh-CN and English); after the consult the supervisor's
review page shows each participant's quality timeline."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import Client
from tests.e2e.flows import end_consult, open_call_link, sign_in, wait_for_remote_video
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

RATED = re.compile("^(good|fair|poor|audio_only)$")


def test_both_call_pages_report_quality_and_the_review_shows_the_timeline(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=20)

    # The first pass of getStats is the baseline; the report after it is rated by the server.
    for client in (exam_room, specialist):
        indicator = client.page.get_by_test_id("signal-indicator")
        expect(indicator).to_be_visible(timeout=20_000)
        expect(indicator).to_have_attribute("data-rating", RATED, timeout=1)
        expect(indicator).to_contain_text("信号")
        assert_accessible(client.page, f"{client.name} with the signal indicator (zh-CN)")
    exam_room.screenshot("quality-01-exam-room-signal")
    specialist.screenshot("quality-02-phone-signal")

    room.get_by_test_id("lang-switch").select_option("en")
    expect(room.get_by_test_id("signal-indicator")).to_contain_text("Signal:")
    assert_accessible(room, "exam room with the signal indicator (English)")

    supervisor_token = server.token("supervisor")

    def people_stored() -> int:
        timeline = server.request(
            "GET", f"/api/consults/{consult['id']}/quality", token=supervisor_token
        )
        assert timeline.status == 200, timeline.body
        return len({b["participant"]["id"] for b in timeline.body["buckets"]})

    # Each participant fills at least one whole bucket during the call (written every 10 s):
    # the review reads what is stored when it opens.
    until(lambda: people_stored() == 2, within=40, what="a whole quality bucket of each person")
    end_consult(phone, "胎心正常 继续观察")

    supervisor = open_client("desktop", "supervisor")
    page = sign_in(supervisor, server, "supervisor", live=False)
    page.goto(f"{server.url}/review.html?consult={consult['id']}")
    people = page.get_by_test_id("quality-person")
    expect(people).to_have_count(2)
    strips = page.get_by_test_id("quality-strip")
    expect(strips.first).to_be_visible()
    assert page.locator(".quality-cell").count() >= 2
    names = page.get_by_test_id("quality-timeline").inner_text()
    assert "良好" in names or "一般" in names or "差" in names, names
    assert_accessible(page, "review page with the quality timeline (zh-CN)")
    supervisor.screenshot("quality-03-review-timeline")
    page.get_by_test_id("lang-switch").select_option("en")
    expect(page.get_by_test_id("quality-timeline")).to_contain_text("median receive")
    assert_accessible(page, "review page with the quality timeline (English)")
    for client in (exam_room, specialist, supervisor):
        client.assert_clean()
