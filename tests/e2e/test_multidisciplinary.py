"""A multi-disciplinary consult in real browsers: the obstetrician, in a call with the exam room,
invites the paediatrician from the phone; the paediatrician's page shows the invitation live,
joins, and all three see each other through the relay. Also: declining an invitation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import end_consult, open_call_link, sign_in, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

PAEDIATRICIAN = "张伟 (儿科) Zhang Wei"
INVITED_ROLE = "受邀专家\uff08多学科会诊\uff09"  # the record's role label, full-width brackets


def user_id(server: RunningServer, username: str) -> int:
    found: int = server.request("GET", "/api/me", token=server.token(username)).body["id"]
    return found


def test_the_obstetrician_invites_the_paediatrician_who_joins_and_all_three_see_each_other(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    obstetrician = open_client("phone", "obstetrician")
    paediatrician = open_client("phone", "paediatrician")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(obstetrician, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=15)
    paed = sign_in(paediatrician, server, "paediatrician")
    expect(paed.get_by_test_id("invited-empty")).to_be_visible()

    # The obstetrician picks the colleague in the call view on the phone and invites them.
    call = phone.get_by_test_id("call-view")
    panel = call.get_by_test_id("invite-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("邀请其他专家")
    panel.get_by_label("选择专家").select_option(str(user_id(server, "paediatrician")))
    panel.get_by_test_id("invite-send").click()
    expect(panel.get_by_test_id("invited-person")).to_have_text([f"{PAEDIATRICIAN} 撤回邀请"])
    expect(call.get_by_test_id("call-message")).to_contain_text(f"已邀请{PAEDIATRICIAN}")
    # The exam room is not the inviter: it sees no invite panel.
    expect(room.get_by_test_id("invite-panel")).to_be_hidden()

    # The paediatrician's page shows the invitation live, under its own heading.
    invited = paed.get_by_test_id("invited-list").get_by_test_id("consult-item")
    expect(invited).to_have_count(1)
    expect(invited).to_have_attribute("data-consult-id", consult["id"])
    expect(paed.get_by_test_id("specialist-message")).to_contain_text("邀请您参加会诊")
    expect(invited).to_contain_text("由王芳 (产科) Wang Fang邀请")
    paediatrician.screenshot("70-paediatrician-invited")
    obstetrician.screenshot("71-obstetrician-invited-colleague")
    invited.get_by_test_id("consult-join").click()

    # Three participants: the consult moves to the relay, and everyone sees both others.
    pages = [room, phone, paed]
    for page in pages:
        expect(page.get_by_test_id("remote-video")).to_have_count(2, timeout=30_000)
        expect(page.get_by_test_id("call-view")).to_have_attribute(
            "data-media-path", "relay", timeout=30_000
        )
    wait_for_remote_video(pages, within_s=40)
    for page in pages:
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "connected")
    # The invitee takes part but does not end the consult.
    expect(paed.get_by_test_id("hangup-button")).to_be_hidden()
    expect(paed.get_by_test_id("leave-button")).to_be_visible()
    expect(paed.get_by_test_id("record-start-button")).to_be_hidden()
    expect(paed.get_by_test_id("call-view").get_by_test_id("invite-panel")).to_be_hidden()
    exam_room.screenshot("72-exam-room-multidisciplinary")
    obstetrician.screenshot("73-obstetrician-multidisciplinary")
    paediatrician.screenshot("74-paediatrician-multidisciplinary")

    # The obstetrician ends it for all; the invitee keeps reading the record they took part in.
    end_consult(phone, None)
    for page in pages:
        expect(page.get_by_test_id("call-ended")).to_be_visible()
    paed.goto(f"{server.url}/consult-record.html#consult={consult['id']}")
    expect(paed.get_by_test_id("record-participants")).to_contain_text(
        f"{PAEDIATRICIAN} · {INVITED_ROLE}"
    )
    for client in (exam_room, obstetrician, paediatrician):
        client.assert_clean()


def test_the_invited_specialist_declines_and_the_consult_leaves_their_page(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    paediatrician = open_client("phone", "paediatrician")
    paed = sign_in(paediatrician, server, "paediatrician")
    reply = server.request(
        "POST",
        f"/api/consults/{consult['id']}/invitations",
        {"specialist_id": user_id(server, "paediatrician")},
        token=server.token("obstetrician"),
    )
    assert reply.status == 201, reply.body
    card = paed.get_by_test_id("invited-list").locator(
        f'[data-testid="consult-item"][data-consult-id="{consult["id"]}"]'
    )
    expect(card).to_be_visible()
    card.get_by_test_id("invitation-decline").click()
    expect(card).to_have_count(0)
    expect(paed.get_by_test_id("specialist-message")).to_contain_text("已谢绝邀请")
    view = server.request("GET", f"/api/consults/{consult['id']}", token=server.token("doctor.a"))
    assert view.body["invited"] == []
    paediatrician.assert_clean()
