"""What a push notification says, by notice: no patient data, the right page to open."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from notify.messages import invited_push, push_messages
from rooms.consults.lifecycle import ConsultStatus
from rooms.duty.escalation import Notice, NoticeKind
from tests.unit.fakes import (
    DOCTOR_A,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    consult_in,
)

CONSULT = replace(
    consult_in(ConsultStatus.REQUESTED, specialist_id=None),
    reason="子痫前期 preeclampsia",
)
CID = CONSULT.id


@pytest.mark.parametrize(
    ("kind", "recipients", "urls"),
    [
        (NoticeKind.NOTIFY, (OBSTETRICIAN.id,), [f"/specialist.html?consult={CID}"]),
        (NoticeKind.NEXT_ON_DUTY, (OBSTETRICIAN.id,), [f"/specialist.html?consult={CID}"]),
        (NoticeKind.SUPERVISORS, (SUPERVISOR.id,), [f"/supervisor.html?consult={CID}"]),
    ],
)
def test_each_step_links_to_the_page_that_acts_on_it(
    kind: NoticeKind, recipients: tuple[int, ...], urls: list[str]
) -> None:
    messages = push_messages(CONSULT, Notice(CID, kind, NOON, recipients))
    assert [m.url for _, m in messages] == urls
    assert [who for who, _ in messages] == [list(recipients)]


def test_a_reminder_sends_each_side_to_its_own_page() -> None:
    accepted = replace(consult_in(ConsultStatus.ACCEPTED), scheduled_at=NOON + timedelta(hours=1))
    notice = Notice(CID, NoticeKind.REMINDER, NOON, (OBSTETRICIAN.id, DOCTOR_A.id))
    assert [(who, m.url) for who, m in push_messages(accepted, notice)] == [
        ([OBSTETRICIAN.id], f"/specialist.html?consult={CID}"),
        ([DOCTOR_A.id], f"/exam-room.html?consult={CID}"),
    ]


def test_a_reminder_sends_the_invited_specialists_to_the_specialist_page() -> None:
    accepted = replace(
        consult_in(ConsultStatus.ACCEPTED),
        scheduled_at=NOON + timedelta(hours=1),
        invited_ids=frozenset({PAEDIATRICIAN.id, OBSTETRICIAN_2.id}),
    )
    recipients = (OBSTETRICIAN.id, DOCTOR_A.id, OBSTETRICIAN_2.id, PAEDIATRICIAN.id)
    notice = Notice(CID, NoticeKind.REMINDER, NOON, recipients)
    assert [(who, m.url) for who, m in push_messages(accepted, notice)] == [
        ([OBSTETRICIAN.id], f"/specialist.html?consult={CID}"),
        ([DOCTOR_A.id], f"/exam-room.html?consult={CID}"),
        ([OBSTETRICIAN_2.id, PAEDIATRICIAN.id], f"/specialist.html?consult={CID}"),
    ]


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_no_notification_names_the_patient_or_the_reason(kind: NoticeKind) -> None:
    consult = (
        replace(CONSULT, status=ConsultStatus.ACCEPTED) if kind is NoticeKind.REMINDER else CONSULT
    )
    notice = Notice(CID, kind, NOON, (OBSTETRICIAN.id, DOCTOR_A.id, SUPERVISOR.id))
    for _, message in push_messages(consult, notice):
        text = json.dumps(message.payload().decode(), ensure_ascii=False)
        for secret in (consult.patient.name, "子痫前期", "preeclampsia", "County A"):
            assert secret not in text
        assert "产科" in message.title and "Obstetrics" in message.title_en


def test_an_invitation_push_names_the_specialty_links_to_the_specialist_page_and_no_patient() -> (
    None
):
    message = invited_push(replace(consult_in(ConsultStatus.LIVE), reason="子痫前期 preeclampsia"))
    assert message.kind == "invited"
    assert message.url == f"/specialist.html?consult={CID}"
    assert "产科" in message.title and "Obstetrics" in message.title_en
    payload = json.loads(message.payload())
    text = json.dumps(payload, ensure_ascii=False)
    assert "Patient" not in text and "preeclampsia" not in text and "子痫" not in text
