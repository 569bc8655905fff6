"""A consult in real browsers: booked on a desktop, taken on a phone, talked through, ended."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import (
    cuttable_sockets,
    end_consult,
    fill_booking,
    fill_intake,
    open_call_link,
    sign_in,
    submit_booking,
    unique_patient,
    wait_for_remote_video,
    wait_until_live,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

LOCAL_AUDIO_ENABLED = (
    "document.querySelector('[data-testid=\"local-video\"]').srcObject.getAudioTracks()[0].enabled"
)


def test_booked_consult_appears_live_on_phone_and_hang_up_ends_it_for_both(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = sign_in(exam_room, server, "doctor.a")
    phone = sign_in(specialist, server, "obstetrician")
    patient = unique_patient()
    fill_booking(
        room,
        patient,
        sex="female",
        age=31,
        summary="孕 34 周 血压 150/96",
        reason="妊娠期高血压 请产科会诊",
        intake={},
    )
    # The obstetric intake form: the browser refuses a missing gestational week itself ...
    week = room.get_by_test_id("intake-gestational_week")
    expect(week).to_have_attribute("required", "")
    room.get_by_test_id("book-submit").click()
    assert week.evaluate("(el) => el.validity.valueMissing")
    # ... and a value past the browser's check comes back from the server next to its field.
    week.evaluate("(el) => el.removeAttribute('max')")
    week.fill("45")
    room.get_by_test_id("book-submit").click()
    expect(room.get_by_test_id("intake-error-gestational_week")).to_contain_text("42")
    expect(week).to_have_attribute("aria-invalid", "true")
    # Chromium logs the deliberate 422 as a failed resource load.
    exam_room.page_errors = [e for e in exam_room.page_errors if "422" not in e]
    fill_intake(
        room,
        {
            "gestational_week": "34",
            "bp_systolic": "150",
            "bp_diastolic": "96",
            "fetal_presentation": "cephalic",
        },
    )
    submit_booking(room, patient)

    request_card = (
        phone.get_by_test_id("incoming-list")
        .get_by_test_id("consult-item")
        .filter(has_text=patient)
    )
    expect(request_card).to_be_visible(timeout=10_000)
    # The specialist sees the intake with the form's labels and units.
    expect(request_card.get_by_test_id("consult-intake")).to_contain_text("孕周")
    expect(request_card.get_by_test_id("consult-intake-gestational_week")).to_have_text("34 周")
    expect(request_card.get_by_test_id("consult-intake-fetal_presentation")).to_have_text("头位")
    # Only the `consult-requested` socket event announces a request; a list reload does not.
    expect(phone.get_by_test_id("specialist-message")).to_contain_text(patient)
    specialist.screenshot("01-specialist-incoming-request")
    request_card.get_by_test_id("consult-accept").click()

    my_card = (
        phone.get_by_test_id("my-list").get_by_test_id("consult-item").filter(has_text=patient)
    )
    expect(my_card).to_have_attribute("data-status", "accepted")
    room_card = room.get_by_test_id("consult-item").filter(has_text=patient)
    expect(room_card).to_have_attribute("data-status", "accepted")  # told by consult-state
    exam_room.screenshot("02-exam-room-consult-accepted")

    room_card.get_by_test_id("consult-join").click()
    my_card.get_by_test_id("consult-join").click()
    wait_for_remote_video([room, phone], within_s=10)
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        expect(page.get_by_test_id("remote-video")).to_have_count(1)
        expect(page.get_by_test_id("local-video")).to_be_visible()
    exam_room.screenshot("03-exam-room-in-call")
    specialist.screenshot("04-specialist-in-call")

    end_consult(phone, "建议住院观察 监测血压")
    for page in (room, phone):
        expect(page.get_by_test_id("call-ended")).to_be_visible()
        expect(page.get_by_test_id("call-ended")).to_contain_text("会诊已结束")
        expect(page.get_by_test_id("remote-video")).to_have_count(0)
    exam_room.screenshot("05-exam-room-ended")
    specialist.screenshot("06-specialist-ended")
    consult_id = room_card.get_attribute("data-consult-id")
    record = server.request("GET", f"/api/consults/{consult_id}", token=server.token("doctor.a"))
    assert record.body["status"] == "ended"
    assert record.body["closing_note"] == "建议住院观察 监测血压"
    exam_room.assert_clean()
    specialist.assert_clean()


def test_demo_links_open_straight_into_a_working_call(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = exam_room.page
    phone = specialist.page
    room.goto(server.exam_room_url)
    phone.goto(server.specialist_url)

    wait_for_remote_video([room, phone], within_s=15)
    for client in (exam_room, specialist):
        page = client.page
        assert "token" not in page.url, "the token must not stay in the address bar"
        assert page.evaluate("sessionStorage.getItem('teleconsult.token')")
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
        expect(page.get_by_test_id("call-title")).to_contain_text("演示患者")
    room.get_by_test_id("mute-button").click()
    expect(room.get_by_test_id("mute-button")).to_have_text("取消静音")
    assert room.evaluate(LOCAL_AUDIO_ENABLED) is False
    room.get_by_test_id("mute-button").click()
    expect(room.get_by_test_id("mute-button")).to_have_text("静音")
    assert room.evaluate(LOCAL_AUDIO_ENABLED) is True
    exam_room.screenshot("07-demo-link-exam-room")
    specialist.screenshot("08-demo-link-specialist")

    # Step out rather than end: the demo consult stays joinable for whoever uses the links next.
    phone.get_by_test_id("leave-button").click()
    expect(room.get_by_test_id("call-message")).to_contain_text("已离开")
    expect(room.get_by_test_id("remote-video")).to_have_count(0)
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-call-state", "waiting")
    exam_room.assert_clean()
    specialist.assert_clean()


def test_call_recovers_by_itself_after_the_signaling_connection_drops(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    cut_signaling = cuttable_sockets(exam_room)
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=10)
    old_peer = phone.get_by_test_id("remote-video").get_attribute("data-peer-id")

    cut_signaling()
    expect(room.locator("html")).to_have_attribute("data-socket", "disconnected")
    wait_until_live(room)

    # The exam room rejoined under a new peer id; the phone dropped the stale connection.
    new_video = phone.locator(f'[data-testid="remote-video"]:not([data-peer-id="{old_peer}"])')
    expect(new_video).to_have_count(1, timeout=10_000)
    expect(phone.get_by_test_id("remote-video")).to_have_count(1)
    expect(room.get_by_test_id("remote-video")).to_have_count(1)
    wait_for_remote_video([room, phone], within_s=10)
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
    exam_room.screenshot("09-exam-room-after-reconnect")
    exam_room.assert_clean()
    specialist.assert_clean()


def test_denied_camera_still_joins_to_see_and_hear_with_a_clear_message(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    # The specialist refuses camera and microphone, as with a "Block" in the browser prompt.
    specialist.context.add_init_script(
        "navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied by the e2e test', 'NotAllowedError'));"
    )
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])

    expect(phone.get_by_test_id("call-message")).to_contain_text("未获得摄像头或麦克风权限")
    wait_for_remote_video([phone], within_s=10)  # receive-only still sees the exam room
    expect(phone.get_by_test_id("mute-button")).to_be_disabled()
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
    specialist.screenshot("10-specialist-camera-denied")
    exam_room.assert_clean()
    specialist.assert_clean()
