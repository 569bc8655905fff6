"""A consult on the relay through a running server: participants, a consented recording."""

from __future__ import annotations

from typing import Any

from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer


async def joined(
    server: RunningServer, people: list[RelayParticipant], consult_id: str, username: str
) -> RelayParticipant:
    person = RelayParticipant(username)
    people.append(person)
    await person.connect(server.url, server.token(username))
    await person.join(consult_id)
    return person


async def recording_consult(
    server: RunningServer, people: list[RelayParticipant], consult_id: str
) -> tuple[RelayParticipant, RelayParticipant, dict[str, Any]]:
    """Exam room and specialist in the consult, recording with consent, both publishing; the
    exam room's publish answer."""
    exam_room = await joined(server, people, consult_id, "doctor.a")
    specialist = await joined(server, people, consult_id, "obstetrician")
    started = await specialist.call("recording-start", {"consult_id": consult_id})
    assert started["ok"], started
    await eventually(lambda: exam_room.events_named("recording-consent-requested"))
    consent = await exam_room.call("recording-consent", {"consult_id": consult_id, "granted": True})
    assert consent["ok"] and consent["recording"]["state"] == "recording", consent
    await eventually(lambda: exam_room.events_named("media-path"))
    answer = await exam_room.publish()
    await specialist.publish()
    await both_see_each_other(exam_room, specialist)
    return exam_room, specialist, answer


async def both_see_each_other(
    a: RelayParticipant, b: RelayParticipant, frames: int = 10, within: float = 40
) -> None:
    await eventually(
        lambda: a.frames_from(b, "camera") >= frames and b.frames_from(a, "camera") >= frames,
        within=within,
    )


def ready_recordings(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/recordings", token=server.token("doctor.a")
    )
    assert reply.status == 200, reply.body
    recordings: list[dict[str, Any]] = reply.body["recordings"]
    return recordings
