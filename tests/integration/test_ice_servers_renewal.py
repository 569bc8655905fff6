"""`ice-servers` through the real server: a page in a consult room gets freshly minted TURN
credentials before those of its join expire, and learns from each ack when to ask again
(TURN_RENEW_PERCENT of TURN_TTL_SECONDS); strangers, bad payloads and floods are refused with
`{code, message}`. Participants are python-socketio clients (tests/support/relay_peer.py); no
TURN server is needed to mint (coturn's acceptance is tests/e2e/test_turn.py's)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import pytest

from signaling.events import ICE_SERVERS_PER_MINUTE
from tests.support.relay_peer import RelayParticipant, relay_person_in
from tests.support.server import RunningServer

SECRET = "coturns-static-auth-secret"
TURN_URL = "turn:127.0.0.1:3478?transport=udp"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    env = {
        "TURN_URLS": TURN_URL,
        "TURN_SECRET": SECRET,
        "TURN_TTL_SECONDS": "600",
        "TURN_RENEW_PERCENT": "75",
        "JOINS_PER_MINUTE": "10000",
        "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
    }
    with RunningServer(env_overrides=env) as running:
        yield running


async def person_in(
    server: RunningServer, people: list[Any], username: str, consult_id: str | None
) -> RelayParticipant:
    return await relay_person_in(people, server.url, server.token(username), username, consult_id)


def turn_entry(servers: list[dict[str, Any]]) -> dict[str, Any]:
    (entry,) = [s for s in servers if s["urls"] == [TURN_URL]]
    return entry


async def test_a_participant_gets_fresh_credentials_and_when_to_ask_again(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    assert room.join_ack["ice_renew_after_seconds"] == 450  # 75 % of 600 s
    joined = turn_entry(room.join_ack["ice_servers"])
    ack = await room.call("ice-servers", {"consult_id": consult_id})
    assert ack["ok"] is True, ack
    assert ack["ice_transport_policy"] == "all"
    assert ack["ice_renew_after_seconds"] == 450
    fresh = turn_entry(ack["ice_servers"])
    expiry, user_id = fresh["username"].split(":")
    assert user_id == joined["username"].split(":")[1]
    # Minted now (to the second) for the whole TTL, not the join's copy.
    assert int(expiry) >= int(joined["username"].split(":")[0])
    assert 590 <= int(expiry) - time.time() <= 600
    digest = hmac.new(SECRET.encode(), fresh["username"].encode(), hashlib.sha1).digest()
    assert fresh["credential"] == base64.b64encode(digest).decode()  # coturn's REST scheme


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_payload"),
        ({"consult_id": "not-a-consult"}, "invalid_payload"),
        ("consult", "invalid_payload"),
        ({"consult_id": None, "extra": 1}, "invalid_payload"),
        ({"consult_id": "x" * 70_000}, "message_too_large"),
    ],
)
async def test_a_bad_ice_servers_request_is_refused(
    server: RunningServer, people: list[RelayParticipant], payload: Any, code: str
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    reply = await room.call("ice-servers", payload)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    assert (await room.call("ice-servers", {"consult_id": consult_id}))["ok"] is True


async def test_only_a_participant_of_the_consult_room_gets_its_credentials(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    await person_in(server, people, "obstetrician", consult_id)
    outsider = await person_in(server, people, "doctor.a", None)  # connected, not joined
    reply = await outsider.call("ice-servers", {"consult_id": consult_id})
    assert reply["ok"] is False and reply["error"]["code"] == "not_in_consult", reply
    assert "ice_servers" not in reply


async def test_a_flood_of_ice_servers_requests_is_rate_limited(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id = server.book()["id"]
    room = await person_in(server, people, "doctor.a", consult_id)
    payload = {"consult_id": consult_id}
    replies = [await room.call("ice-servers", payload) for _ in range(ICE_SERVERS_PER_MINUTE + 1)]
    assert all(r["ok"] for r in replies[:ICE_SERVERS_PER_MINUTE])
    assert replies[-1]["ok"] is False and replies[-1]["error"]["code"] == "rate_limited"
