"""The live consult room against a real server: people (not connections) make the consult, late
reports change nothing, the join limit never locks a person out, sockets follow their user."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from signaling.auth import ALGORITHM
from teleconsult.config import load_settings, resolved_jwt_secret
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def live_server() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={
            "JOINS_PER_MINUTE": "3",
            "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
            "MAX_PARTICIPANTS_PER_CONSULT": "2",
            "SOCKET_RECHECK_SECONDS": "1",
        }
    ) as running:
        running.add_colleague_of("doctor.a", "doctor.a2")
        yield running


async def connected(
    server: RunningServer, people: list[Any], username: str, token: str | None = None
) -> RelayParticipant:
    person = RelayParticipant(username)
    people.append(person)
    await person.connect(server.url, token or server.token(username))
    return person


async def joined(
    server: RunningServer, people: list[Any], consult_id: str, username: str
) -> RelayParticipant:
    person = await connected(server, people, username)
    await person.join(consult_id)
    return person


def media_path(server: RunningServer, consult_id: str) -> str:
    view = server.request("GET", f"/api/consults/{consult_id}", token=server.token("doctor.a"))
    path: str = view.body["media_mode"]
    return path


async def test_a_second_device_of_the_specialist_takes_over_without_moving_the_consult(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    exam_room = await joined(live_server, people, consult, "doctor.a")
    phone = await joined(live_server, people, consult, "obstetrician")
    tablet = await joined(live_server, people, consult, "obstetrician")

    await eventually(lambda: phone.events_named("replaced"))
    assert phone.events_named("replaced") == [{"consult_id": consult, "reason": "replaced"}]
    await eventually(lambda: len(exam_room.events_named("peer-joined")) == 2)
    assert exam_room.events_named("peer-left") == [
        {"consult_id": consult, "peer_id": phone.peer_id, "reason": "replaced"}
    ]
    assert [p["peer_id"] for p in tablet.join_ack["peers"]] == [exam_room.peer_id]
    assert media_path(live_server, consult) == "p2p"  # two people: still a direct call
    # The replaced connection is out: it can no longer signal into the consult.
    reply = await phone.call(
        "signal",
        {"consult_id": consult, "to": exam_room.peer_id, "description": {"type": "rollback"}},
    )
    assert reply["error"]["code"] == "not_in_consult"


async def test_the_room_is_full_by_people_not_by_connections(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    await joined(live_server, people, consult, "doctor.a")
    await joined(live_server, people, consult, "obstetrician")
    colleague = await connected(live_server, people, "doctor.a2")
    reply = await colleague.call("join", {"consult_id": consult})
    assert reply["error"]["code"] == "consult_full"
    # The same doctor on a new connection is not a third person.
    again = await connected(live_server, people, "doctor.a")
    assert (await again.call("join", {"consult_id": consult}))["ok"]


async def test_a_late_p2p_report_after_the_link_recovered_leaves_the_direct_path(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    exam_room = await joined(live_server, people, consult, "doctor.a")
    specialist = await joined(live_server, people, consult, "obstetrician")
    # The report waited in a stalled socket; by the time it arrives the link is back up.
    exam_room.direct_links[specialist.peer_id] = {"state": "connected", "generation": 3}
    reply = await exam_room.report_p2p_failed(specialist.peer_id, generation=3)
    assert reply == {"ok": True, "media_path": "p2p", "ignored": "recovered"}
    assert exam_room.events_named("p2p-check") == [
        {"consult_id": consult, "peer_id": specialist.peer_id, "generation": 3}
    ]
    # An even older report is stale: not even asked about.
    reply = await exam_room.report_p2p_failed(specialist.peer_id, generation=2)
    assert reply == {"ok": True, "media_path": "p2p", "ignored": "stale"}
    assert len(exam_room.events_named("p2p-check")) == 1
    assert media_path(live_server, consult) == "p2p"
    assert not specialist.events_named("media-path")


async def test_p2p_reports_about_nobody_or_in_the_old_shape_change_nothing(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    exam_room = await joined(live_server, people, consult, "doctor.a")
    await joined(live_server, people, consult, "obstetrician")
    old_shape = await exam_room.call("p2p-failed", {"consult_id": consult})
    assert old_shape["error"]["code"] == "invalid_payload"
    negative = await exam_room.report_p2p_failed("someone", generation=-1)
    assert negative["error"]["code"] == "invalid_payload"
    nobody = await exam_room.report_p2p_failed("not-a-participant", generation=0)
    assert nobody == {"ok": True, "media_path": "p2p", "ignored": "gone"}
    assert media_path(live_server, consult) == "p2p"


async def test_a_person_whose_device_flaps_is_never_locked_out_by_the_join_limit(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    await joined(live_server, people, consult, "doctor.a")
    for _ in range(5):  # JOINS_PER_MINUTE is 3: counted per connection
        flapping = await connected(live_server, people, "obstetrician")
        assert (await flapping.call("join", {"consult_id": consult}))["ok"]
        await flapping.close()
    # One connection looping on join is still held back.
    looping = await connected(live_server, people, "obstetrician")
    replies = [await looping.call("join", {"consult_id": consult}) for _ in range(4)]
    assert [r["ok"] for r in replies] == [True, True, True, False]
    assert replies[-1]["error"]["code"] == "rate_limited"


def expiring_token(server: RunningServer, username: str, seconds: int) -> str:
    """The user's token, signed again with the server's secret to expire `seconds` from now.
    Made in-process at the last moment: a CLI-minted short token could expire while the CLI
    still starts on a busy machine."""
    secret = resolved_jwt_secret(load_settings(server.env()))
    claims = jwt.decode(server.token(username), options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now, exp=now + seconds)
    return str(jwt.encode(claims, secret, algorithm=ALGORITHM))


async def test_a_connection_whose_token_expires_is_ended_with_the_reason(
    live_server: RunningServer, people: list[Any]
) -> None:
    consult = live_server.book()["id"]
    exam_room = await joined(live_server, people, consult, "doctor.a")
    short = await connected(
        live_server, people, "obstetrician", expiring_token(live_server, "obstetrician", 4)
    )
    await short.join(consult)
    await eventually(lambda: short.events_named("session-ended"), within=15)
    assert short.events_named("session-ended")[0]["code"] == "token_expired"
    await eventually(lambda: not short.sio.connected, within=10)
    await eventually(
        lambda: any(
            e["peer_id"] == short.peer_id and e["reason"] == "disconnected"
            for e in exam_room.events_named("peer-left")
        )
    )


async def test_a_disabled_user_is_disconnected_with_the_reason(
    live_server: RunningServer, people: list[Any]
) -> None:
    colleague = await connected(live_server, people, "obstetrician2")
    disabled = live_server.cli("user", "disable", "--username", "obstetrician2")
    assert disabled.returncode == 0, disabled.stderr
    try:
        await eventually(lambda: colleague.events_named("session-ended"), within=15)
        assert colleague.events_named("session-ended")[0]["code"] == "user_disabled"
        await eventually(lambda: not colleague.sio.connected, within=10)
        login = live_server.request(
            "POST",
            "/api/auth/login",
            {"username": "obstetrician2", "password": "demo-obstetrician2"},
        )
        assert login.status == 401
    finally:
        live_server.cli("user", "enable", "--username", "obstetrician2")
