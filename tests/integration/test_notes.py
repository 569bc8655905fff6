"""Notes during a consult through the real server: `note-add`, `note-added`, the REST list.

Participants are python-socketio clients (`tests/support/relay_peer.py`); a recording is started
with everyone's consent as in `test_relay_consult.py`, so a note taken then carries its offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_relay_consult import start_consented_recording
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as running:
        yield running


async def connected(
    server: RunningServer, people: list[RelayParticipant], username: str
) -> RelayParticipant:
    person = RelayParticipant(username)
    person.sio.on("note-added", person._recorder("note-added"))
    people.append(person)
    await person.connect(server.url, server.token(username))
    return person


async def joined(
    server: RunningServer, people: list[RelayParticipant], consult_id: str, username: str
) -> RelayParticipant:
    person = await connected(server, people, username)
    await person.join(consult_id)
    return person


async def live_consult(
    server: RunningServer, people: list[RelayParticipant]
) -> tuple[str, RelayParticipant, RelayParticipant]:
    consult_id = server.book()["id"]
    exam_room = await joined(server, people, consult_id, "doctor.a")
    specialist = await joined(server, people, consult_id, "obstetrician")
    await eventually(
        lambda: any(
            e["consult"]["status"] == "live" for e in exam_room.events_named("consult-state")
        )
    )
    return consult_id, exam_room, specialist


def listed(server: RunningServer, consult_id: str, username: str = "supervisor") -> Any:
    return server.request("GET", f"/api/consults/{consult_id}/notes", token=server.token(username))


async def test_both_sides_add_notes_and_both_see_each_note_live(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id, exam_room, specialist = await live_consult(server, people)
    mine = await exam_room.call("note-add", {"consult_id": consult_id, "text": " 血压 148/95 "})
    assert mine["ok"], mine
    note = mine["note"]
    assert note["text"] == "血压 148/95"
    assert note["author"]["id"] == exam_room.join_ack["consult"]["requesting_doctor"]["id"]
    assert note["recording_offset_s"] is None  # nothing is being recorded
    theirs = await specialist.call("note-add", {"consult_id": consult_id, "text": "建议复查超声"})
    assert theirs["ok"], theirs

    expected = [mine["note"], theirs["note"]]
    for person in (exam_room, specialist):
        await eventually(lambda p=person: len(p.events_named("note-added")) == 2)  # type: ignore[misc]
        assert [e["note"] for e in person.events_named("note-added")] == expected
        assert {e["consult_id"] for e in person.events_named("note-added")} == {consult_id}

    # The record as a supervisor reads it, and its audit trail.
    reply = listed(server, consult_id)
    assert reply.status == 200
    assert reply.body["notes"] == expected
    audit = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    )
    added = [e for e in audit.body["entries"] if e["action"] == "note.added"]
    assert [e["detail"]["note"] for e in added] == [n["id"] for n in expected]

    # Whoever joins later (another tab here) finds the notes in the join ack.
    late = await joined(server, people, consult_id, "doctor.a")
    assert late.join_ack["notes"] == expected


async def test_a_note_taken_while_recording_is_pinned_to_the_recording(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id, exam_room, specialist = await live_consult(server, people)
    recording = await start_consented_recording(consult_id, exam_room, specialist)
    assert recording["started_at"]
    reply = await exam_room.call("note-add", {"consult_id": consult_id, "text": "此处胎心减速"})
    assert reply["ok"], reply
    offset = reply["note"]["recording_offset_s"]
    assert offset is not None and 0 <= offset < 30
    stopped = await specialist.call("recording-stop", {"consult_id": consult_id})
    assert stopped["ok"]
    after = await specialist.call("note-add", {"consult_id": consult_id, "text": "录制后"})
    assert after["note"]["recording_offset_s"] is None
    assert [n["recording_offset_s"] for n in listed(server, consult_id).body["notes"]] == [
        offset,
        None,
    ]


async def test_bad_notes_are_refused_with_codes_and_nothing_is_saved(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id, exam_room, _specialist = await live_consult(server, people)
    refusals = {
        "empty": {"consult_id": consult_id, "text": ""},
        "blank": {"consult_id": consult_id, "text": "   \n "},
        "oversized": {"consult_id": consult_id, "text": "字" * 2001},
        "unknown field": {"consult_id": consult_id, "text": "x", "author_id": 1},
        "bad id": {"consult_id": "not-a-consult", "text": "x"},
        "no text": {"consult_id": consult_id},
    }
    for what, payload in refusals.items():
        reply = await exam_room.call("note-add", payload)
        assert reply["ok"] is False, what
        assert reply["error"]["code"] == "invalid_payload", (what, reply)

    # Signed in and permitted, but not in the consult room.
    outside = await connected(server, people, "obstetrician")
    reply = await outside.call("note-add", {"consult_id": consult_id, "text": "x"})
    assert reply["error"]["code"] == "not_in_consult", reply
    # Another county's doctor and a supervisor may not take notes at all.
    for username in ("doctor.b", "supervisor"):
        stranger = await connected(server, people, username)
        reply = await stranger.call("note-add", {"consult_id": consult_id, "text": "x"})
        assert reply["error"]["code"] == "forbidden", (username, reply)
    # An unknown consult.
    reply = await outside.call("note-add", {"consult_id": "f" * 32, "text": "x"})
    assert reply["error"]["code"] == "not_found", reply

    assert listed(server, consult_id).body["notes"] == []
    assert exam_room.events_named("note-added") == []


async def test_no_notes_once_the_consult_has_ended_and_the_list_keeps_to_its_viewers(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id, exam_room, specialist = await live_consult(server, people)
    assert (await exam_room.call("note-add", {"consult_id": consult_id, "text": "ok"}))["ok"]
    ended = server.request(
        "POST",
        f"/api/consults/{consult_id}/end",
        {"conclusion": "随访"},
        token=server.token("obstetrician"),
    )
    assert ended.status == 200
    reply = await specialist.call("note-add", {"consult_id": consult_id, "text": "late"})
    assert reply["error"]["code"] == "illegal_transition", reply

    for username in ("doctor.a", "obstetrician", "supervisor", "admin"):
        assert len(listed(server, consult_id, username).body["notes"]) == 1, username
    refused = listed(server, consult_id, "doctor.b")
    assert (refused.status, refused.body["code"]) == (403, "forbidden")
    missing = listed(server, "f" * 32)
    assert (missing.status, missing.body["code"]) == (404, "not_found")
