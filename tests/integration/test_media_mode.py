"""`media-mode` through the real server: a page that goes audio-only (or back) tells the others
(`peer-media-mode`); bad payloads, strangers and floods are refused with `{code, message}` and
nobody is told. Participants are python-socketio clients (tests/support/relay_peer.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from signaling.events import MEDIA_MODE_PER_MINUTE
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant, relay_person_in
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as running:
        yield running


async def person_in(
    server: RunningServer, people: list[Any], username: str, consult_id: str | None
) -> RelayParticipant:
    return await relay_person_in(
        people,
        server.url,
        server.token(username),
        username,
        consult_id,
        also_recorded=("peer-media-mode",),
    )


async def test_going_audio_only_and_back_is_told_to_the_others_not_to_the_sender(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    phone = await person_in(server, people, "obstetrician", consult_id)
    payload = {"consult_id": consult_id, "audio_only": True, "reason": "link"}
    assert await room.call("media-mode", payload) == {"ok": True}
    await eventually(lambda: len(phone.events_named("peer-media-mode")) == 1)
    assert phone.events_named("peer-media-mode")[0] == {
        "consult_id": consult_id,
        "peer_id": room.peer_id,
        "audio_only": True,
        "reason": "link",
    }
    back = {"consult_id": consult_id, "audio_only": False, "reason": "chosen"}
    assert await room.call("media-mode", back) == {"ok": True}
    await eventually(lambda: len(phone.events_named("peer-media-mode")) == 2)
    assert phone.events_named("peer-media-mode")[1]["audio_only"] is False
    assert room.events_named("peer-media-mode") == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audio_only": "yes"}, "invalid_payload"),
        ({"reason": "bored"}, "invalid_payload"),
        ({"extra": 1}, "invalid_payload"),
        ({"consult_id": "not-a-consult"}, "invalid_payload"),
        ({"reason": "x" * 70_000}, "message_too_large"),
    ],
)
async def test_a_bad_media_mode_is_refused_and_nobody_is_told(
    server: RunningServer, people: list[RelayParticipant], change: dict[str, Any], code: str
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    phone = await person_in(server, people, "obstetrician", consult_id)
    payload = {"consult_id": consult_id, "audio_only": True, "reason": "link", **change}
    reply = await room.call("media-mode", payload)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    ok = {"consult_id": consult_id, "audio_only": True, "reason": "chosen"}
    assert (await room.call("media-mode", ok))["ok"] is True  # the next good one passes
    await eventually(lambda: len(phone.events_named("peer-media-mode")) == 1)
    assert phone.events_named("peer-media-mode")[0]["reason"] == "chosen"


async def test_only_a_participant_of_the_consult_room_may_say_it(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    phone = await person_in(server, people, "obstetrician", consult_id)
    outsider = await person_in(server, people, "doctor.a", None)  # connected, not joined
    payload = {"consult_id": consult_id, "audio_only": True, "reason": "link"}
    reply = await outsider.call("media-mode", payload)
    assert reply["ok"] is False and reply["error"]["code"] == "not_in_consult", reply
    assert phone.events_named("peer-media-mode") == []


async def test_a_flood_of_media_mode_is_rate_limited(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    payload = {"consult_id": consult_id, "audio_only": True, "reason": "link"}
    replies = [await room.call("media-mode", payload) for _ in range(MEDIA_MODE_PER_MINUTE + 1)]
    assert all(r["ok"] for r in replies[:MEDIA_MODE_PER_MINUTE])
    assert replies[-1]["ok"] is False and replies[-1]["error"]["code"] == "rate_limited"
