"""The duty roster in real browsers: an admin puts a paediatrician on duty on the roster page,
the exam-room doctor books, the on-duty specialist's phone shows it live, the push control
answers with a clear message (this offline Chromium has no push service), the deep link of a
notification opens the request ready to accept, and the booking doctor's card shows who was
notified."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, expect

from tests.e2e.browser import Client
from tests.e2e.flows import book, sign_in, unique_patient
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def test_admin_keeps_the_roster_and_a_booking_reaches_the_specialist_on_duty(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    admin_client = open_client("desktop", "admin")
    admin = sign_in(admin_client, server, "admin", live=False)
    admin.on("dialog", lambda dialog: dialog.accept())  # "Add this shift?" — yes
    expect(admin.get_by_test_id("supervisor-link")).to_have_attribute("href", "/supervisor.html")

    admin.get_by_test_id("shift-specialty").select_option("paediatrics")
    expect(admin.get_by_test_id("shift-specialist")).to_contain_text("张伟")
    # A shift that ends when it starts is refused with the rule it broke, nothing added.
    expect(admin.get_by_test_id("shift-item").first).to_be_visible()  # the demo's week is listed
    before = admin.get_by_test_id("shift-item").count()
    start = admin.get_by_test_id("shift-start").input_value()  # the form's default: now
    admin.get_by_test_id("shift-end").fill(start)
    admin.get_by_test_id("shift-submit").click()
    expect(admin.get_by_test_id("roster-message")).to_contain_text("结束时间必须晚于开始时间")
    expect(admin.get_by_test_id("shift-item")).to_have_count(before)
    admin_client.page_errors = [e for e in admin_client.page_errors if "422" not in e]
    # Now a proper one: from now for eight hours (the form's defaults after a reload).
    admin.reload()
    admin.get_by_test_id("shift-specialty").select_option("paediatrics")
    expect(admin.get_by_test_id("shift-specialist")).to_contain_text("张伟")
    admin.get_by_test_id("shift-submit").click()
    expect(admin.get_by_test_id("roster-message")).to_contain_text("已添加值班")
    expect(
        admin.locator('[data-testid="shift-item"][data-specialty="paediatrics"]').first
    ).to_contain_text("张伟")
    admin_client.screenshot("roster-01-admin-roster")

    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = sign_in(exam_room, server, "doctor.a")
    phone = sign_in(specialist, server, "paediatrician")

    # Notifications refused: the control says how to allow them.
    phone.get_by_test_id("push-enable").click()
    expect(phone.get_by_test_id("push-message")).to_contain_text("通知权限未开启")
    # Allowed, but this offline Chromium has no push service: subscribing fails, said clearly.
    specialist.context.grant_permissions(["notifications"], origin=server.url)
    phone.get_by_test_id("push-enable").click()
    push_message = phone.get_by_test_id("push-message")
    expect(push_message).to_be_visible()
    expect(push_message).to_have_attribute("data-kind", "error")
    expect(push_message).to_contain_text("无法订阅推送通知")
    expect(push_message).to_contain_text("请保持本页打开")
    specialist.page_errors = [e for e in specialist.page_errors if "push" not in e.lower()]

    patient = unique_patient()
    book(
        room,
        patient,
        sex="male",
        specialty="paediatrics",
        reason="发热三天 请儿科会诊",
        intake={"weight_kg": "12.5"},
    )

    request_card = (
        phone.get_by_test_id("incoming-list")
        .get_by_test_id("consult-item")
        .filter(has_text=patient)
    )
    expect(request_card).to_be_visible(timeout=10_000)
    expect(phone.get_by_test_id("specialist-message")).to_contain_text(patient)
    specialist.screenshot("roster-02-specialist-request-live")

    room_card = room.get_by_test_id("consult-item").filter(has_text=patient)
    step0 = room_card.locator('[data-testid="notice-step"][data-step="0"]')
    expect(step0).to_contain_text("已通知值班专家")
    expect(step0).to_contain_text("张伟")
    exam_room.screenshot("roster-03-booking-doctor-sees-step")

    # A notification's deep link opens the request, marked, ready to accept.
    consult_id = room_card.get_attribute("data-consult-id")
    phone.goto(f"{server.url}/specialist.html?consult={consult_id}")
    linked = phone.locator(f'[data-consult-id="{consult_id}"][data-linked="true"]')
    expect(linked).to_be_visible()
    linked.get_by_test_id("consult-accept").click()
    mine = phone.get_by_test_id("my-list").get_by_test_id("consult-item").filter(has_text=patient)
    expect(mine).to_have_attribute("data-status", "accepted")
    expect(room_card).to_have_attribute("data-status", "accepted")

    # The admin's link to the consult records stays there (no bounce back to the roster), and a
    # supervisor-step deep link marks its consult.
    admin.get_by_test_id("supervisor-link").click()
    admin.wait_for_url(f"{server.url}/supervisor.html")
    admin.goto(f"{server.url}/supervisor.html?consult={consult_id}")
    expect(admin.locator(f'tr[data-consult-id="{consult_id}"]')).to_have_attribute(
        "data-linked", "true"
    )

    admin_client.assert_clean()
    exam_room.assert_clean()
    specialist.assert_clean()


def test_roster_changes_are_confirmed_first_and_messages_follow_the_language(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("desktop", "admin", viewport={"width": 1366, "height": 768})
    admin = sign_in(client, server, "admin", live=False)
    asked: list[str] = []
    answer = {"accept": False}

    def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if answer["accept"]:
            dialog.accept()
        else:
            dialog.dismiss()

    admin.on("dialog", confirm)
    admin.get_by_test_id("shift-specialty").select_option("paediatrics")
    expect(admin.get_by_test_id("shift-specialist")).to_contain_text("张伟")
    rows = admin.locator('[data-testid="shift-item"][data-specialty="paediatrics"]')
    expect(admin.get_by_test_id("shift-item").first).to_be_visible()
    before = rows.count()
    ids_before = set(rows.evaluate_all("(rows) => rows.map((r) => r.dataset.shiftId)"))

    # Add asks first, naming who and when; "no" adds nothing.
    admin.get_by_test_id("shift-submit").click()
    assert len(asked) == 1 and "添加这个值班" in asked[0] and "张伟" in asked[0], asked
    expect(rows).to_have_count(before)
    expect(admin.get_by_test_id("roster-message")).to_be_hidden()
    answer["accept"] = True
    admin.get_by_test_id("shift-submit").click()
    message = admin.get_by_test_id("roster-message")
    expect(message).to_have_text("已添加值班。")
    expect(rows).to_have_count(before + 1)
    ids_after = set(rows.evaluate_all("(rows) => rows.map((r) => r.dataset.shiftId)"))
    (added,) = ids_after - ids_before
    added_row = admin.locator(f'[data-testid="shift-item"][data-shift-id="{added}"]')

    # The message says itself again in English after the switch, not left in Chinese.
    admin.get_by_test_id("lang-switch").select_option("en")
    expect(message).to_have_text("Shift added.")
    client.screenshot("roster-04-admin-added-en")

    # Remove asks first too; "no" keeps the shift.
    answer["accept"] = False
    added_row.get_by_test_id("shift-remove").click()
    assert "Remove this shift?" in asked[-1] and "Zhang Wei" in asked[-1], asked
    expect(rows).to_have_count(before + 1)
    answer["accept"] = True
    added_row.get_by_test_id("shift-remove").click()
    expect(message).to_have_text("Shift removed.")
    expect(rows).to_have_count(before)
    admin.get_by_test_id("lang-switch").select_option("zh-CN")
    expect(message).to_have_text("已删除值班。")
    client.screenshot("roster-05-admin-removed-zh")
    client.assert_clean()
