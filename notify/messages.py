"""What each push notification says: its texts in both languages and the page it opens.

No patient data, ever: a push may show on a locked phone (see `push_messages`).
"""

from __future__ import annotations

from notify.push import PushMessage
from rooms.consults.consult import Consult
from rooms.consults.people import Specialty
from rooms.duty.escalation import Notice, NoticeKind

SPECIALTY_NAMES: dict[Specialty, tuple[str, str]] = {
    Specialty.OBSTETRICS: ("产科", "Obstetrics"),
    Specialty.PAEDIATRICS: ("儿科", "Paediatrics"),
    Specialty.CHILD_GROWTH: ("儿童生长发育", "Child growth"),
    Specialty.REPRODUCTIVE_MEDICINE: ("生殖医学", "Reproductive medicine"),
    Specialty.ULTRASOUND: ("超声", "Ultrasound"),
    Specialty.OPHTHALMOLOGY: ("眼科", "Ophthalmology"),
    Specialty.IMAGING: ("影像", "Imaging"),
    Specialty.CARDIOLOGY: ("心内科", "Cardiology"),
    Specialty.NEUROLOGY: ("神经内科", "Neurology"),
    Specialty.GENERAL_MEDICINE: ("全科", "General medicine"),
}
"""Specialty names for push texts (the web client has its own in web_client/locales/*.json)."""


def specialist_link(consult_id: str) -> str:
    return f"/specialist.html?consult={consult_id}"


def push_messages(consult: Consult, notice: Notice) -> list[tuple[list[int], PushMessage]]:
    """The push texts of a notice, by recipient group.

    Lock-screen privacy: a push may show on a locked phone, so it names the specialty and the
    kind of notice only — never the patient, the reason or the booking institution; the page it
    opens shows the details after login.
    """
    zh, en = SPECIALTY_NAMES[consult.specialty]
    cid = consult.id
    if notice.kind in (NoticeKind.NOTIFY, NoticeKind.NEXT_ON_DUTY):
        waiting = notice.kind is NoticeKind.NEXT_ON_DUTY
        return [
            (
                list(notice.recipients),
                PushMessage(
                    kind=notice.kind.value,
                    consult_id=cid,
                    url=specialist_link(cid),
                    title=f"{'会诊请求待接受' if waiting else '新的会诊请求'} · {zh}",
                    body="点按查看并接受",
                    title_en=f"{'Consult request waiting' if waiting else 'New consult request'}"
                    f" · {en}",
                    body_en="Tap to view and accept",
                ),
            )
        ]
    if notice.kind is NoticeKind.SUPERVISORS:
        return [
            (
                list(notice.recipients),
                PushMessage(
                    kind=notice.kind.value,
                    consult_id=cid,
                    url=f"/supervisor.html?consult={cid}",
                    title=f"会诊请求无人接受 · {zh}",
                    body="值班专家均未接受, 请协调",
                    title_en=f"Consult request not accepted · {en}",
                    body_en="Nobody on duty has accepted it; please follow up",
                ),
            )
        ]
    # The reminder: each side to the page it works in; invited specialists (everyone reminded
    # but the assigned specialist and the booking doctor) to the specialist page, like the
    # assigned specialist.
    sides = (consult.specialist_id, consult.requesting_doctor_id)
    invitees = [r for r in notice.recipients if r not in sides]
    messages = []
    for who, url in (
        ([consult.specialist_id], specialist_link(cid)),
        ([consult.requesting_doctor_id], f"/exam-room.html?consult={cid}"),
        (invitees, specialist_link(cid)),
    ):
        people = [r for r in who if r is not None and r in notice.recipients]
        if people:
            messages.append(
                (
                    people,
                    PushMessage(
                        kind=notice.kind.value,
                        consult_id=cid,
                        url=url,
                        title=f"会诊即将开始 · {zh}",
                        body="预约时间",
                        title_en=f"Consult starts soon · {en}",
                        body_en="Scheduled for",
                        scheduled_at=consult.scheduled_at.isoformat(),
                    ),
                )
            )
    return messages


def invited_push(consult: Consult) -> PushMessage:
    """The invitee's notification: the specialty only, no patient data (a locked screen)."""
    zh, en = SPECIALTY_NAMES[consult.specialty]
    return PushMessage(
        kind="invited",
        consult_id=consult.id,
        url=specialist_link(consult.id),
        title=f"邀请您参加多学科会诊 · {zh}",
        body="点按查看并加入",
        title_en=f"You are invited to a multi-disciplinary consult · {en}",
        body_en="Tap to view and join",
    )
