"""Multi-disciplinary consults through the real server: an invited specialist sees the
invitation live and in their list, joins with a real aiortc peer as the third participant (the
consult moves to the relay), declines or is withdrawn; every bad invitation gets its code and
changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer

LIVE_EVENTS = ("consult-invited", "invitation-closed", "removed-from-consult")
IDS: dict[str, int] = {}
"""Ids of the specialists this module adds (the retired one cannot log in any more)."""


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={
            "JOINS_PER_MINUTE": "10000",
            "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
            "INVITED_SPECIALISTS_PER_CONSULT": "2",
        }
    ) as running:
        province = running.request("GET", "/api/me", token=running.token("obstetrician"))
        for username in ("cardiologist", "retired"):
            added = running.cli(
                "user",
                "add",
                "--username",
                username,
                "--role",
                "specialist",
                "--specialty",
                "cardiology",
                "--institution-id",
                str(province.body["institution_id"]),
                "--password-stdin",
                stdin=f"demo-{username}\n",
            )
            assert added.returncode == 0, added.stderr
            IDS[username] = running.request("GET", "/api/me", token=running.token(username)).body[
                "id"
            ]
        with sqlite3.connect(running.data_dir / "teleconsult.db") as db:
            db.execute("UPDATE users SET active = 0 WHERE username = 'retired'")
        yield running


async def connected(
    server: RunningServer, people: list[RelayParticipant], username: str
) -> RelayParticipant:
    person = RelayParticipant(username)
    for name in LIVE_EVENTS:
        person.sio.on(name, person._recorder(name))
    people.append(person)
    await person.connect(server.url, server.token(username))
    return person


def user_id(server: RunningServer, username: str) -> int:
    found: int = server.request("GET", "/api/me", token=server.token(username)).body["id"]
    return found


def invite(
    server: RunningServer, consult_id: str, specialist: str, by: str = "obstetrician"
) -> Any:
    return server.request(
        "POST",
        f"/api/consults/{consult_id}/invitations",
        {"specialist_id": user_id(server, specialist)},
        token=server.token(by),
    )


def audit_actions(server: RunningServer, consult_id: str) -> list[str]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    )
    assert reply.status == 200, reply.body
    return [e["action"] for e in reply.body["entries"]]


def listed_ids(server: RunningServer, username: str) -> list[str]:
    reply = server.request("GET", "/api/consults", token=server.token(username))
    assert reply.status == 200, reply.body
    return [c["id"] for c in reply.body["consults"]]


async def test_an_invited_paediatrician_sees_it_live_joins_third_and_the_relay_takes_over(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = server.book()
    paed = await connected(server, people, "paediatrician")
    exam_room = await connected(server, people, "doctor.a")
    await exam_room.join(consult["id"])
    obst = await connected(server, people, "obstetrician")
    await obst.join(consult["id"])
    assert obst.join_ack["media_path"] == "p2p"
    assert consult["id"] not in listed_ids(server, "paediatrician")

    reply = invite(server, consult["id"], "paediatrician")
    assert reply.status == 201, reply.body
    paed_id = user_id(server, "paediatrician")
    assert reply.body["invited"] == [{"id": paed_id, "display_name": "张伟 (儿科) Zhang Wei"}]
    # Told live, with the consult as they may now see it; and it is in their list.
    await eventually(lambda: paed.events_named("consult-invited"))
    assert paed.events_named("consult-invited")[0]["consult"]["id"] == consult["id"]
    assert consult["id"] in listed_ids(server, "paediatrician")
    # Everyone in the room sees the new invitee list.
    await eventually(
        lambda: any(e["consult"]["invited"] for e in exam_room.events_named("consult-state"))
    )

    await paed.join(consult["id"])
    assert paed.join_ack["media_path"] == "relay"
    assert paed.join_ack["media_path_reason"] == "participants"
    assert len(paed.join_ack["peers"]) == 2
    for person in (exam_room, obst, paed):
        await person.publish()
    await eventually(
        lambda: all(
            a.frames_from(b, "camera") >= 5
            for a in (exam_room, obst, paed)
            for b in (exam_room, obst, paed)
            if a is not b
        ),
        within=40,
    )
    # The invitee takes notes, but may not end or record the consult.
    note = await paed.call("note-add", {"consult_id": consult["id"], "text": "新生儿科会诊意见"})
    assert note.get("ok"), note
    ended = server.request(
        "POST",
        f"/api/consults/{consult['id']}/end",
        {"conclusion": "x"},
        token=server.token("paediatrician"),
    )
    assert ended.status == 403 and ended.body["code"] == "forbidden"
    recording = await paed.call("recording-start", {"consult_id": consult["id"]})
    assert recording["ok"] is False and recording["error"]["code"] == "forbidden"
    assert "consult.invited" in audit_actions(server, consult["id"])


async def test_the_invitee_declines_and_is_taken_out_of_the_room(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = server.book()
    exam_room = await connected(server, people, "doctor.a")
    await exam_room.join(consult["id"])
    paed = await connected(server, people, "paediatrician")
    assert invite(server, consult["id"], "paediatrician").status == 201
    await paed.join(consult["id"])
    paed_id = user_id(server, "paediatrician")
    reply = server.request(
        "DELETE",
        f"/api/consults/{consult['id']}/invitations/{paed_id}",
        token=server.token("paediatrician"),
    )
    assert reply.status == 200, reply.body
    assert reply.body["invited"] == []
    await eventually(lambda: paed.events_named("removed-from-consult"))
    await eventually(lambda: exam_room.events_named("peer-left"))
    assert paed.events_named("invitation-closed")[0] == {
        "consult_id": consult["id"],
        "reason": "declined",
    }
    assert consult["id"] not in listed_ids(server, "paediatrician")
    rejoin = await paed.call("join", {"consult_id": consult["id"]})
    assert rejoin["ok"] is False and rejoin["error"]["code"] == "forbidden"
    assert audit_actions(server, consult["id"])[-2:] == ["consult.invited", "invitation.declined"]


async def test_the_inviter_withdraws_an_invitation(
    server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult = server.book()
    paed = await connected(server, people, "paediatrician")
    assert invite(server, consult["id"], "paediatrician").status == 201
    reply = server.request(
        "DELETE",
        f"/api/consults/{consult['id']}/invitations/{user_id(server, 'paediatrician')}",
        token=server.token("obstetrician"),
    )
    assert reply.status == 200 and reply.body["invited"] == []
    await eventually(lambda: paed.events_named("invitation-closed"))
    assert paed.events_named("invitation-closed")[0]["reason"] == "withdrawn"
    forbidden = server.request(
        "GET", f"/api/consults/{consult['id']}", token=server.token("paediatrician")
    )
    assert forbidden.status == 403
    assert audit_actions(server, consult["id"])[-1] == "invitation.withdrawn"


def bad_invitations(server: RunningServer) -> list[tuple[str, str, Any, str, int, str]]:
    """(what, consult id, body, by, status, code) for each bad invitation."""
    consult = server.book()["id"]
    finished = server.book()["id"]
    ended = server.request(
        "POST",
        f"/api/consults/{finished}/cancel",
        {"reason": "patient transferred"},
        token=server.token("doctor.a"),
    )
    assert ended.status == 200, ended.body
    return [
        (
            "a non-specialist",
            consult,
            {"specialist_id": user_id(server, "doctor.b")},
            "obstetrician",
            422,
            "invalid_invitation",
        ),
        (
            "an inactive specialist",
            consult,
            {"specialist_id": IDS["retired"]},
            "obstetrician",
            422,
            "invalid_invitation",
        ),
        ("a zero id", consult, {"specialist_id": 0}, "obstetrician", 422, "invalid_payload"),
        (
            "oneself",
            consult,
            {"specialist_id": user_id(server, "obstetrician")},
            "obstetrician",
            422,
            "invalid_invitation",
        ),
        (
            "an unknown user",
            consult,
            {"specialist_id": 99999},
            "obstetrician",
            422,
            "invalid_invitation",
        ),
        (
            "by the exam-room doctor",
            consult,
            {"specialist_id": user_id(server, "paediatrician")},
            "doctor.a",
            403,
            "forbidden",
        ),
        (
            "into a finished consult",
            finished,
            {"specialist_id": user_id(server, "paediatrician")},
            "obstetrician",
            409,
            "illegal_transition",
        ),
        (
            "into an unknown consult",
            "f" * 32,
            {"specialist_id": user_id(server, "paediatrician")},
            "obstetrician",
            404,
            "not_found",
        ),
        ("without a specialist", consult, {}, "obstetrician", 422, "invalid_payload"),
        (
            "with an extra field",
            consult,
            {"specialist_id": user_id(server, "paediatrician"), "x": 1},
            "obstetrician",
            422,
            "invalid_payload",
        ),
    ]


def test_bad_invitations_get_their_code_and_change_nothing(server: RunningServer) -> None:
    cases = bad_invitations(server)
    for what, consult_id, body, by, status, code in cases:
        before = audit_actions(server, consult_id) if consult_id != "f" * 32 else []
        reply = server.request(
            "POST", f"/api/consults/{consult_id}/invitations", body, token=server.token(by)
        )
        assert (reply.status, reply.body["code"]) == (status, code), what
        if consult_id != "f" * 32:
            assert audit_actions(server, consult_id) == before, what
            view = server.request(
                "GET", f"/api/consults/{consult_id}", token=server.token("obstetrician")
            )
            assert view.body["invited"] == [], what


def test_the_same_specialist_twice_the_invitee_inviting_and_over_the_limit_are_refused(
    server: RunningServer,
) -> None:
    consult = server.book()["id"]
    assert invite(server, consult, "paediatrician").status == 201
    twice = invite(server, consult, "paediatrician")
    assert (twice.status, twice.body["code"]) == (409, "already_invited")
    by_invitee = invite(server, consult, "obstetrician2", by="paediatrician")
    assert (by_invitee.status, by_invitee.body["code"]) == (403, "forbidden")
    assert invite(server, consult, "obstetrician2").status == 201
    before = audit_actions(server, consult)
    over = invite(server, consult, "cardiologist")  # INVITED_SPECIALISTS_PER_CONSULT=2
    assert (over.status, over.body["code"]) == (409, "too_many_invitations")
    assert audit_actions(server, consult) == before
    view = server.request("GET", f"/api/consults/{consult}", token=server.token("doctor.a"))
    assert len(view.body["invited"]) == 2


def test_bad_withdrawals_and_declines_are_refused(server: RunningServer) -> None:
    consult = server.book()["id"]
    assert invite(server, consult, "paediatrician").status == 201
    paed = user_id(server, "paediatrician")
    before = audit_actions(server, consult)
    for by, target, status, code in [
        ("doctor.a", paed, 403, "forbidden"),
        ("obstetrician2", paed, 403, "forbidden"),
        ("obstetrician", user_id(server, "obstetrician2"), 404, "not_found"),
        ("obstetrician2", user_id(server, "obstetrician2"), 403, "forbidden"),
    ]:
        reply = server.request(
            "DELETE", f"/api/consults/{consult}/invitations/{target}", token=server.token(by)
        )
        assert (reply.status, reply.body["code"]) == (status, code), (by, target)
    unknown = server.request(
        "DELETE", f"/api/consults/{'f' * 32}/invitations/{paed}", token=server.token("obstetrician")
    )
    assert (unknown.status, unknown.body["code"]) == (404, "not_found")
    assert audit_actions(server, consult) == before


def test_the_colleague_picker_lists_active_specialists_of_every_specialty(
    server: RunningServer,
) -> None:
    reply = server.request("GET", "/api/specialists", token=server.token("obstetrician"))
    names = {s["display_name"]: s["specialty"] for s in reply.body["specialists"]}
    assert names["张伟 (儿科) Zhang Wei"] == "paediatrics"
    assert "retired" not in names and "cardiologist" in names
