"""Audio-only by hand: the call bar's button stops our video, says so on both pages (zh-CN and
English), and brings it back; every state axe-clean (docs/network.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def test_a_participant_chooses_audio_only_and_both_pages_say_so(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult_id = server.book()["id"]
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    specialist.context.add_init_script("localStorage.setItem('teleconsult.lang', 'en')")
    room = open_call_link(exam_room, server, "doctor.a", consult_id)
    phone = open_call_link(specialist, server, "obstetrician", consult_id)
    wait_for_remote_video([room, phone], within_s=20)

    button = room.get_by_test_id("audio-only-button")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(button).to_have_text("仅音频")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).to_have_text("开视频")
    view = room.get_by_test_id("call-view")
    expect(view).to_have_attribute("data-media-mode", "audio-only")
    expect(view).to_have_attribute("data-media-mode-reason", "chosen")
    expect(room.get_by_test_id("media-mode")).to_contain_text("您没有发送视频")
    # The specialist (in English) sees it on the exam room's tile, and is told.
    badge = phone.get_by_test_id("peer-audio-only")
    expect(badge).to_have_text("Audio only")
    expect(phone.get_by_test_id("call-message")).to_contain_text("switched to audio only")
    assert room.evaluate("window.teleconsultLink().mode") == "audio-only"
    exam_room.screenshot("audio-only-01-exam-room-chosen")
    specialist.screenshot("audio-only-02-specialist-sees-it")

    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(view).to_have_attribute("data-media-mode", "video")
    expect(room.get_by_test_id("media-mode")).to_be_hidden()
    expect(badge).to_be_hidden()
    expect(phone.get_by_test_id("call-message")).to_contain_text("sending video again")
    wait_for_remote_video([phone], within_s=15)
    specialist.screenshot("audio-only-03-specialist-video-again")
    exam_room.assert_clean()
    specialist.assert_clean()
