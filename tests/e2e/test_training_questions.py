"""Questions during a live training in real Chromium: a trainee asks from the player page, the
question appears as pending on the lecturer's page, the lecturer shows it, and it appears on
both trainees' pages (desktop in Chinese, phone in English); each state checked by axe."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.test_training import open_page, schedule_for_the_city
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def test_a_question_goes_from_a_trainee_to_the_lecturer_and_back_to_every_trainee(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    training = schedule_for_the_city(server)
    started = server.request(
        "POST", f"/api/trainings/{training['id']}/start", token=server.token("obstetrician")
    )
    assert started.status == 200, started.body
    lecturer = open_client("desktop", "questions-lecturer")
    desk = open_client("desktop", "questions-trainee-desktop")
    phone = open_client("phone", "questions-trainee-phone")
    phone.context.add_init_script("localStorage.setItem('teleconsult.lang', 'en')")
    stage = open_page(lecturer, server, "training-lecturer.html", training["id"], "obstetrician")
    expect(stage.get_by_test_id("questions")).to_be_visible()
    asker = open_page(desk, server, "training.html", training["id"], "doctor.a")
    other = open_page(phone, server, "training.html", training["id"], "doctor.b")
    for page in (asker, other):
        expect(page.get_by_test_id("question-form")).to_be_visible()

    text = "胸外按压的深度是多少 How deep are the compressions"
    asker.get_by_label("向讲者提问").fill(text)
    asker.get_by_test_id("question-send").click()
    expect(asker.get_by_test_id("question-note")).to_contain_text("已发送")
    desk.screenshot("questions-asked")

    pending = stage.get_by_test_id("pending-questions").get_by_test_id("question")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text(text)
    lecturer.screenshot("questions-pending")
    expect(other.get_by_test_id("shown-questions").get_by_test_id("question")).to_have_count(0)

    pending.get_by_test_id("question-show").click()
    expect(pending).to_have_count(0)
    expect(stage.get_by_test_id("shown-questions")).to_contain_text(text)
    for page in (asker, other):
        shown = page.get_by_test_id("shown-questions").get_by_test_id("question")
        expect(shown).to_have_count(1)
        expect(shown).to_contain_text(text)
    desk.screenshot("questions-shown-desktop")
    phone.screenshot("questions-shown-phone")
    for client in (lecturer, desk, phone):
        client.assert_clean()
