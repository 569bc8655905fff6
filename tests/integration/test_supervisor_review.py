"""Supervisor review through the real server: filtered consult lists, the review (audited),
review comments, and each bad query or comment refused with its code.

Consults across two counties, three specialties, several statuses and scheduled days are booked
over REST; one is really recorded on the relay (python-socketio + aiortc participants) with a
note taken while recording, so the review's timeline and markers are the server's own. They are
booked for tomorrow and the day after in China (UTC+8): the server expires consults whose time
has long passed, so the test's day is taken from the wall clock, never written down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.test_relay_consult import start_consented_recording
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import HttpReply, RunningServer

CHINA = timezone(timedelta(hours=8))


@dataclass
class World:
    server: RunningServer
    day: date
    """The consults' day in China: tomorrow there when the world was built."""
    recorded: str
    """County A, obstetrics, `day` 10:00 +08:00, ended, recorded, one note recorded."""
    county_b: str
    """County B, paediatrics, the day after `day`, 09:00 +08:00, accepted."""
    township: str
    """Township under county A, child growth, `day` 07:00 +08:00, requested."""
    cancelled: str
    """County A, obstetrics, `day` 15:00 +08:00, cancelled."""
    institutions: dict[str, int]
    note_offset: float


def at(day: date, hour: int, tz: timezone = CHINA) -> datetime:
    """`hour` o'clock on `day`, in `tz`."""
    return datetime.combine(day, time(hour), tz)


def book(
    server: RunningServer, username: str, specialty: str, when: datetime, specialist: str | None
) -> str:
    """A consult booked by `username` for `when`, accepted by `specialist` if named; its id."""
    booked = server.book(username, specialty, specialist, scheduled_at=when.isoformat())
    consult_id: str = booked["id"]
    return consult_id


def add_user(server: RunningServer, username: str, role: str, institution_id: int) -> None:
    added = server.cli(
        "user", "add", "--username", username, "--role", role,
        "--institution-id", str(institution_id), "--password-stdin", stdin=f"demo-{username}\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr


async def record_consult(
    server: RunningServer, consult_id: str, notes: Sequence[str] = ("胎心减速",)
) -> float:
    """Join both sides, record ~2 s with `notes` taken one after the other, end the consult;
    the first note's offset."""
    names = ["doctor.a", "obstetrician"]
    people = [RelayParticipant(name) for name in names]
    try:
        exam_room, specialist = people
        for person, name in zip(people, names, strict=True):
            await person.connect(server.url, server.token(name))
            await person.join(consult_id)
        await eventually(
            lambda: any(
                e["consult"]["status"] == "live" for e in exam_room.events_named("consult-state")
            )
        )
        await start_consented_recording(consult_id, exam_room, specialist)
        await eventually(lambda: specialist.events_named("media-path"))
        await exam_room.publish()
        await specialist.publish()
        await eventually(
            lambda: (
                exam_room.frames_from(specialist, "camera") >= 10
                and specialist.frames_from(exam_room, "camera") >= 10
            ),
            within=40,
        )
        await asyncio.sleep(1)
        added = [
            await exam_room.call("note-add", {"consult_id": consult_id, "text": text})
            for text in notes
        ]
        assert all(a["ok"] for a in added), added
        note = added[0]
        await asyncio.sleep(1)
        ended = server.request(
            "POST",
            f"/api/consults/{consult_id}/end",
            {"conclusion": "随访"},
            token=server.token("obstetrician"),
        )
        assert ended.status == 200, ended.body
    finally:
        for person in people:
            await person.close()
    supervisor = server.token("supervisor")

    def recordings() -> list[Any]:
        reply = server.request("GET", f"/api/consults/{consult_id}/recordings", token=supervisor)
        found: list[Any] = reply.body["recordings"]
        return found

    await eventually(lambda: len(recordings()) == 4, within=30)
    offset: float = note["note"]["recording_offset_s"]
    return offset


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as server:
        listed = server.request("GET", "/api/institutions", token=server.token("supervisor"))
        assert listed.status == 200, listed.body
        ids = {
            key: next(i["id"] for i in listed.body["institutions"] if name in i["name"])
            for key, name in (
                ("province", "Provincial"),
                ("city", "City"),
                ("county_a", "County A"),
                ("county_b", "County B"),
                ("township", "Township"),
            )
        }
        add_user(server, "supervisor.b", "supervisor", ids["county_b"])
        add_user(server, "doctor.t", "exam_room_doctor", ids["township"])
        # Tomorrow in China: every consult is at least seven hours ahead, none expires.
        day = datetime.now(CHINA).date() + timedelta(days=1)
        recorded = book(server, "doctor.a", "obstetrics", at(day, 10), "obstetrician")
        note_offset = asyncio.run(record_consult(server, recorded))
        county_b = book(
            server, "doctor.b", "paediatrics", at(day + timedelta(days=1), 9), "paediatrician"
        )
        township = book(server, "doctor.t", "child_growth", at(day, 7), None)
        cancelled = book(server, "doctor.a", "obstetrics", at(day, 15), None)
        reply = server.request(
            "POST",
            f"/api/consults/{cancelled}/cancel",
            {"reason": "patient unwell"},
            token=server.token("doctor.a"),
        )
        assert reply.status == 200, reply.body
        yield World(server, day, recorded, county_b, township, cancelled, ids, note_offset)


def get(world: World, path: str, username: str = "supervisor") -> HttpReply:
    return world.server.request("GET", path, token=world.server.token(username))


def found(world: World, query: str, username: str = "supervisor") -> list[str]:
    reply = get(world, f"/api/consults?{query}", username)
    assert reply.status == 200, reply.body
    demo = world.server.demo_consult_id
    return [c["id"] for c in reply.body["consults"] if c["id"] != demo]


# ---- filters -----------------------------------------------------------------------------------


def within(start: datetime, end: datetime) -> str:
    """The `from`/`to` query of consults scheduled in `[start, end)`."""
    return f"from={quote(start.isoformat())}&to={quote(end.isoformat())}"


def test_filters_narrow_the_supervisors_subtree(world: World) -> None:
    w, ids = world, world.institutions
    everything = [w.county_b, w.cancelled, w.recorded, w.township]  # newest scheduled first
    assert found(w, "") == everything
    assert found(w, f"institution={ids['county_a']}") == [w.cancelled, w.recorded, w.township]
    assert found(w, f"institution={ids['township']}") == [w.township]
    assert found(w, f"institution={ids['county_b']}") == [w.county_b]
    assert found(w, "specialty=obstetrics&specialty=child_growth") == [
        w.cancelled,
        w.recorded,
        w.township,
    ]
    assert found(w, "status=ended&status=accepted") == [w.county_b, w.recorded]
    assert found(w, "recorded=yes") == [w.recorded]
    assert found(w, "recorded=no") == [w.county_b, w.cancelled, w.township]
    # The consults' day in China: [00:00+08:00, the next day 00:00+08:00).
    day = within(at(w.day, 0), at(w.day + timedelta(days=1), 0))
    assert found(w, day) == [w.cancelled, w.recorded, w.township]
    # The same calendar day in UTC starts eight hours later: 07:00+08:00 is the day before.
    utc_day = within(at(w.day, 0, UTC), at(w.day + timedelta(days=1), 0, UTC))
    assert found(w, utc_day) == [w.cancelled, w.recorded]
    assert found(w, f"{day}&recorded=yes&specialty=obstetrics&status=ended") == [w.recorded]


def test_pages_of_a_search_follow_each_other(world: World) -> None:
    w = world
    # (status: leaves out the demo consult, accepted, also in county A)
    query = f"institution={w.institutions['county_a']}&status=ended&status=cancelled"
    query += "&status=requested&limit=2"
    first = get(w, f"/api/consults?{query}")
    assert [c["id"] for c in first.body["consults"]] == [w.cancelled, w.recorded]
    assert first.body["next_offset"] == 2
    rest = get(w, f"/api/consults?{query}&offset=2")
    assert [c["id"] for c in rest.body["consults"]] == [w.township]
    assert rest.body["next_offset"] is None


def test_a_county_supervisor_finds_only_their_county(world: World) -> None:
    assert found(world, "", "supervisor.b") == [world.county_b]


def test_doctors_and_specialists_keep_their_plain_listing(world: World) -> None:
    w = world
    assert found(w, "", "doctor.a") == [w.cancelled, w.recorded]
    assert found(w, "status=cancelled", "doctor.a") == [w.cancelled]
    assert found(w, "", "paediatrician") == [w.county_b]
    assert get(w, "/api/consults").body["next_offset"] is None


BAD_QUERIES = {
    "unknown status": ("status=done", 422, "invalid_payload"),
    "unknown specialty": ("specialty=dentistry", 422, "invalid_payload"),
    "institution not a number": ("institution=county", 422, "invalid_payload"),
    "institution zero": ("institution=0", 422, "invalid_payload"),
    "unknown institution": ("institution=99999", 422, "invalid_payload"),
    "institution twice": ("institution=1&institution=2", 422, "invalid_payload"),
    "from without offset": ("from=2026-11-23T00:00:00", 422, "invalid_payload"),
    "from not a time": ("from=yesterday", 422, "invalid_payload"),
    "to not later than from": (
        "from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z",
        422,
        "invalid_payload",
    ),
    "recorded neither yes nor no": ("recorded=maybe", 422, "invalid_payload"),
    "limit zero": ("limit=0", 422, "invalid_payload"),
    "limit above the page": ("limit=201", 422, "invalid_payload"),
    "negative offset": ("offset=-1", 422, "invalid_payload"),
    "offset too deep": ("offset=100001", 422, "invalid_payload"),
    "unknown parameter": ("sort=name", 422, "invalid_payload"),
}


@pytest.mark.parametrize("case", BAD_QUERIES)
def test_a_bad_filter_is_refused_with_its_code(world: World, case: str) -> None:
    query, status, code = BAD_QUERIES[case]
    reply = get(world, f"/api/consults?{query}")
    assert (reply.status, reply.body["code"]) == (status, code), reply.body


def test_an_institution_outside_the_subtree_is_forbidden_with_a_clear_message(
    world: World,
) -> None:
    reply = get(
        world, f"/api/consults?institution={world.institutions['county_a']}", "supervisor.b"
    )
    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    assert "not within your institution's subtree" in reply.body["message"]


@pytest.mark.parametrize("username", ["doctor.a", "obstetrician"])
def test_filters_beyond_status_are_for_supervisors_and_admins(world: World, username: str) -> None:
    reply = get(world, "/api/consults?specialty=obstetrics", username)
    assert (reply.status, reply.body["code"]) == (403, "forbidden"), reply.body


def test_admins_filter_too(world: World) -> None:
    assert found(world, "recorded=yes", "admin") == [world.recorded]


# ---- the review ------------------------------------------------------------------------------


def test_the_review_lays_out_the_tracks_and_the_note_and_is_audited(world: World) -> None:
    w = world
    reply = get(w, f"/api/consults/{w.recorded}/review")
    assert reply.status == 200, reply.body
    assert reply.body["consult"]["closing_note"] == "随访"
    timeline = reply.body["timeline"]
    assert len(timeline["sessions"]) == 1
    tracks = timeline["tracks"]
    assert sorted(t["recording"]["kind"] for t in tracks) == ["audio", "audio", "video", "video"]
    for t in tracks:
        assert t["start_s"] == pytest.approx(t["recording"]["started_offset_s"], abs=0.001)
        assert t["end_s"] <= timeline["duration_s"] + 0.001
    (marker,) = timeline["markers"]
    assert marker["note"]["text"] == "胎心减速"
    assert marker["at_s"] == pytest.approx(min(w.note_offset, timeline["duration_s"]))

    audit = get(w, f"/api/consults/{w.recorded}/audit").body["entries"]
    reviewed = [e for e in audit if e["action"] == "consult.reviewed"]
    assert reviewed, audit
    assert reviewed[-1]["actor"]["display_name"] == "李明 (质控) Li Ming"
    assert sorted(reviewed[-1]["detail"]["recordings"]) == sorted(
        t["recording"]["id"] for t in tracks
    )


@pytest.mark.parametrize(
    ("username", "consult", "status", "code"),
    [
        ("doctor.a", "recorded", 403, "forbidden"),
        ("obstetrician", "recorded", 403, "forbidden"),
        ("supervisor.b", "recorded", 403, "forbidden"),
        ("supervisor", "missing", 404, "not_found"),
    ],
)
def test_only_reviewers_of_the_subtree_open_a_review(
    world: World, username: str, consult: str, status: int, code: str
) -> None:
    consult_id = world.recorded if consult == "recorded" else "f" * 32
    before = len(get(world, f"/api/consults/{world.recorded}/audit").body["entries"])
    reply = get(world, f"/api/consults/{consult_id}/review", username)
    assert (reply.status, reply.body["code"]) == (status, code)
    after = len(get(world, f"/api/consults/{world.recorded}/audit").body["entries"])
    assert after == before  # a refused review is not a view


# ---- the one player of a consult card ---------------------------------------------------------


@pytest.mark.parametrize("username", ["doctor.a", "obstetrician", "supervisor", "admin"])
def test_everyone_who_may_play_the_recordings_gets_the_consults_one_timeline(
    world: World, username: str
) -> None:
    review = get(world, f"/api/consults/{world.recorded}/review").body["timeline"]
    before = len(get(world, f"/api/consults/{world.recorded}/audit").body["entries"])
    reply = get(world, f"/api/consults/{world.recorded}/playback", username)
    assert reply.status == 200, reply.body
    timeline = reply.body["timeline"]
    assert timeline["duration_s"] == review["duration_s"]
    assert [t["recording"]["id"] for t in timeline["tracks"]] == [
        t["recording"]["id"] for t in review["tracks"]
    ]
    assert [m["at_s"] for m in timeline["markers"]] == [m["at_s"] for m in review["markers"]]
    # Opening the player is not a view of the media; each track's link and each read are.
    after = len(get(world, f"/api/consults/{world.recorded}/audit").body["entries"])
    assert after == before
    track = timeline["tracks"][0]["recording"]["id"]
    granted = world.server.request(
        "POST", f"/api/recordings/{track}/playback", {}, token=world.server.token(username)
    )
    assert granted.status == 200, granted.body
    audit = get(world, f"/api/consults/{world.recorded}/audit").body["entries"]
    assert audit[-1]["action"] == "recording.playback_granted"
    assert audit[-1]["detail"] == {"recording": track}


@pytest.mark.parametrize(
    ("username", "consult", "status", "code"),
    [
        ("doctor.b", "recorded", 403, "forbidden"),
        ("doctor.t", "recorded", 403, "forbidden"),
        ("paediatrician", "recorded", 403, "forbidden"),
        ("supervisor.b", "recorded", 403, "forbidden"),
        ("doctor.a", "missing", 404, "not_found"),
    ],
)
def test_the_playback_timeline_is_refused_to_whoever_may_not_play_the_recordings(
    world: World, username: str, consult: str, status: int, code: str
) -> None:
    consult_id = world.recorded if consult == "recorded" else "f" * 32
    reply = get(world, f"/api/consults/{consult_id}/playback", username)
    assert (reply.status, reply.body["code"]) == (status, code), reply.body


# ---- comments ----------------------------------------------------------------------------------


def comment(world: World, body: Any, username: str = "supervisor", consult: str = "") -> HttpReply:
    return world.server.request(
        "POST",
        f"/api/consults/{consult or world.county_b}/comments",
        body,
        token=world.server.token(username),
    )


def test_a_supervisor_comments_pinned_and_unpinned_and_each_is_audited(world: World) -> None:
    w = world
    pinned = comment(w, {"text": " 此处应复查 ", "timeline_s": 1.0}, consult=w.recorded)
    assert pinned.status == 201, pinned.body
    assert (pinned.body["text"], pinned.body["timeline_s"]) == ("此处应复查", 1.0)
    assert pinned.body["author"]["display_name"] == "李明 (质控) Li Ming"
    loose = comment(w, {"text": "ok"}, "admin", consult=w.recorded)
    assert loose.status == 201, loose.body
    listed = get(w, f"/api/consults/{w.recorded}/comments").body["comments"]
    assert [c["id"] for c in listed][-2:] == [pinned.body["id"], loose.body["id"]]
    audit = get(w, f"/api/consults/{w.recorded}/audit").body["entries"]
    added = [e["detail"]["comment"] for e in audit if e["action"] == "comment.added"]
    assert added[-2:] == [pinned.body["id"], loose.body["id"]]


BAD_COMMENTS: dict[str, tuple[Any, str, str, int, str]] = {
    # body, username, consult, status, code
    "empty": ({"text": ""}, "supervisor", "county_b", 422, "invalid_payload"),
    "blank": ({"text": "  \n "}, "supervisor", "county_b", 422, "invalid_payload"),
    "oversized": ({"text": "字" * 2001}, "supervisor", "county_b", 422, "invalid_payload"),
    "no text": ({}, "supervisor", "county_b", 422, "invalid_payload"),
    "nul": ({"text": "x\x00y"}, "supervisor", "county_b", 422, "invalid_payload"),
    "escape": ({"text": "x\x1b[2Jy"}, "supervisor", "county_b", 422, "invalid_payload"),
    "unknown field": ({"text": "x", "author": 1}, "supervisor", "county_b", 422, "invalid_payload"),
    "negative pin": ({"text": "x", "timeline_s": -1}, "supervisor", "recorded", 422,
                     "invalid_payload"),
    "pin past the end": ({"text": "x", "timeline_s": 3600}, "supervisor", "recorded", 422,
                         "invalid_payload"),
    "pin without recordings": ({"text": "x", "timeline_s": 1}, "supervisor", "county_b", 422,
                               "invalid_payload"),
    "exam-room doctor": ({"text": "x"}, "doctor.b", "county_b", 403, "forbidden"),
    "specialist": ({"text": "x"}, "paediatrician", "county_b", 403, "forbidden"),
    "other subtree": ({"text": "x"}, "supervisor.b", "recorded", 403, "forbidden"),
    "unknown consult": ({"text": "x"}, "supervisor", "missing", 404, "not_found"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_COMMENTS)
def test_a_bad_comment_is_refused_and_nothing_is_saved(world: World, case: str) -> None:
    body, username, which, status, code = BAD_COMMENTS[case]
    consult = {"county_b": world.county_b, "recorded": world.recorded, "missing": "f" * 32}[which]
    before = {
        c: get(world, f"/api/consults/{c}/comments").body["comments"]
        for c in (world.county_b, world.recorded)
    }
    reply = comment(world, body, username, consult=consult)
    assert (reply.status, reply.body["code"]) == (status, code), reply.body
    for c, comments in before.items():
        assert get(world, f"/api/consults/{c}/comments").body["comments"] == comments


def test_a_body_that_is_not_json_is_refused(world: World) -> None:
    reply = world.server.request(
        "POST",
        f"/api/consults/{world.county_b}/comments",
        raw=b"{not json",
        token=world.server.token("supervisor"),
    )
    assert (reply.status, reply.body["code"]) == (400, "invalid_payload")


@pytest.mark.parametrize("username", ["doctor.b", "paediatrician", "supervisor.b"])
def test_comments_are_read_by_reviewers_of_the_subtree_only(world: World, username: str) -> None:
    consult = world.recorded
    reply = get(world, f"/api/consults/{consult}/comments", username)
    assert (reply.status, reply.body["code"]) == (403, "forbidden")


def test_institutions_of_the_filter_are_the_users_subtree(world: World) -> None:
    ids = world.institutions
    mine = get(world, "/api/institutions", "supervisor.b").body["institutions"]
    assert [i["id"] for i in mine] == [ids["county_b"]]
    county_a = get(world, "/api/institutions", "doctor.a").body["institutions"]
    assert {i["id"] for i in county_a} == {ids["county_a"], ids["township"]}
