"""A trainee on stage, on a real server with real aiortc peers (loopback, no ICE servers): the
lecturer publishes over REST as the lecturer's page does; a trainee raises a hand, is brought
on stage, publishes H.264 camera and Opus microphone (`stage-publish`); the relay offers each
side the other's media (`stage-offer`, answered with `stage-answer`) and both decode it; the
viewers get the trainee as the broadcast's `stage` stream (fetched and decoded with PyAV); the
lecturer takes them off. Every refusal: a non-lecturer inviting, a trainee publishing without
being invited (or after being taken off), a malformed offer, an invitation to somebody not
attending; each audited."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import av
import pytest
import pytest_asyncio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from tests.integration.test_trainings import add_trainee, audit_entries, institution_of
from tests.support.hls_check import decode, parse_playlist
from tests.support.inprocess import InProcessServer, connected
from tests.support.peer import Participant, eventually, eventually_async

pytestmark = pytest.mark.asyncio(loop_scope="module")

STAGE_EVENTS = ("stage-changed", "stage-hands")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600", "ICE_SERVERS": "[]"})
    await running.start()
    await add_trainee(running, "stage.a", await institution_of(running, "doctor.a"))
    yield running
    await running.cleanup()


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


@dataclass
class StageSide:
    """A page's socket and its receiving connection: answers `stage-offer` as the pages do and
    counts the frames decoded per source of the other side."""

    person: Participant
    training_id: str
    pc: RTCPeerConnection = field(default_factory=new_pc)
    frames: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    offers: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        self.person.sio.on("stage-offer", self.offers.put)
        self.tasks.append(asyncio.create_task(self._answer_offers()))

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
            self.tasks.append(asyncio.create_task(self._count(mid, track)))

    async def _answer_offers(self) -> None:
        while True:
            offer = await self.offers.get()
            if offer["training_id"] != self.training_id:
                continue
            self.sources = offer["sources"]
            await self.pc.setRemoteDescription(
                RTCSessionDescription(offer["description"]["sdp"], "offer")
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            ack = await self.person.call(
                "stage-answer",
                {
                    "training_id": self.training_id,
                    "description": {"type": "answer", "sdp": self.pc.localDescription.sdp},
                },
            )
            assert ack == {"ok": True}, ack

    async def _count(self, mid: str | None, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                source = self.sources.get(mid or "", "?")
                self.frames[source] = self.frames.get(source, 0) + 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


@pytest_asyncio.fixture(loop_scope="module")
async def closing() -> AsyncIterator[list[Any]]:
    """Sockets, stage sides and peer connections a test opens, closed when it ends."""
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        await thing.close()


async def watching(
    server: InProcessServer, closing: list[Any], username: str, training_id: str
) -> Participant:
    person = await connected(server, closing, username)
    for name in STAGE_EVENTS:
        person.sio.on(name, person._recorder(name))
    ack = await person.call("training-watch", {"training_id": training_id})
    assert ack["ok"], ack
    return person


async def live_training(server: InProcessServer) -> str:
    now = server.clock.now
    county_a = await institution_of(server, "doctor.a")
    status, made = await server.request(
        "POST",
        "/api/trainings",
        {
            "title": "Neonatal resuscitation, on stage",
            "lecturer_ids": [await server.user_id("obstetrician")],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "audience": {"kind": "subtree", "institution_ids": [county_a]},
        },
        token=await server.token("admin"),
    )
    assert status == 201, made
    return str(made["id"])


async def offer(pc: RTCPeerConnection, *sources: str) -> dict[str, Any]:
    """An offer sending `sources` (camera and microphone; the lecturer adds `second`)."""
    named = []
    for source in sources:
        track = AudioStreamTrack() if source == "microphone" else VideoStreamTrack()
        named.append((pc.addTransceiver(track, direction="sendonly"), source))
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before it returns
    return {
        "description": {"type": "offer", "sdp": pc.localDescription.sdp},
        "sources": {t.mid: source for t, source in named},
    }


async def present(server: InProcessServer, training_id: str, closing: list[Any]) -> None:
    pc = new_pc()
    closing.append(pc)
    body = await offer(pc, "camera", "microphone")
    status, answer = await server.request(
        "POST",
        f"/api/trainings/{training_id}/broadcast",
        body,
        token=await server.token("obstetrician"),
    )
    assert status == 200, answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["description"]["sdp"], "answer"))


def refusal(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    assert ack["error"]["message"]
    return str(ack["error"]["code"])


async def fetch(server: InProcessServer, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as reply:
        return reply.status, await reply.read()


async def streams(server: InProcessServer, prefix: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}{prefix}streams.json") as r:
        return dict((await r.json())["streams"])


async def training_audit(server: InProcessServer, action: str, training_id: str) -> list[Any]:
    """The audit entries `action` of this training (the module's server holds others too)."""
    return [r for r in await audit_entries(server, action) if r.detail["training"] == training_id]


async def refusals_audited(server: InProcessServer, training_id: str) -> list[str]:
    refused = await training_audit(server, "stage.refused", training_id)
    return [str(r.detail["action"]) for r in refused]


async def test_a_trainee_is_brought_on_stage_talks_with_the_lecturer_and_is_broadcast(
    server: InProcessServer, closing: list[Any]
) -> None:
    training_id = await live_training(server)
    await present(server, training_id, closing)
    lecturer = await watching(server, closing, "obstetrician", training_id)
    trainee = await watching(server, closing, "doctor.a", training_id)
    other = await watching(server, closing, "stage.a", training_id)
    lecturer_side = StageSide(lecturer, training_id)
    trainee_side = StageSide(trainee, training_id)
    closing += [lecturer_side, trainee_side]

    raised = await trainee.call("stage-hand", {"training_id": training_id, "raised": True})
    assert raised == {"ok": True, "raised": True}
    doctor_a = await server.user_id("doctor.a")
    await eventually(lambda: len(lecturer.events_named("stage-hands")) >= 1)
    assert [p["id"] for p in lecturer.events_named("stage-hands")[-1]["hands"]] == [doctor_a]
    assert other.events_named("stage-hands") == []  # the moderators' news only

    invited = await lecturer.call("stage-invite", {"training_id": training_id, "user_id": doctor_a})
    assert invited["ok"], invited
    assert (invited["stage"]["on_stage"]["id"], invited["stage"]["joined"]) == (doctor_a, False)
    await eventually(lambda: len(other.events_named("stage-changed")) >= 1)

    pc = new_pc()
    closing.append(pc)
    published = await trainee.call(
        "stage-publish", {"training_id": training_id, **await offer(pc, "camera", "microphone")}
    )
    assert published["ok"], published
    await pc.setRemoteDescription(RTCSessionDescription(published["description"]["sdp"], "answer"))
    await eventually(lambda: other.events_named("stage-changed")[-1]["joined"] is True)

    # each side decodes the other: the lecturer the trainee, the trainee the lecturer
    await eventually(
        lambda: (
            lecturer_side.frames.get("camera", 0) >= 10
            and lecturer_side.frames.get("microphone", 0) >= 10
        ),
        within=30,
    )
    await eventually(
        lambda: (
            trainee_side.frames.get("camera", 0) >= 10
            and trainee_side.frames.get("microphone", 0) >= 10
        ),
        within=30,
    )

    # every viewer gets the trainee in the broadcast: the `stage` stream, with their voice
    status, admitted = await server.request(
        "POST", f"/api/trainings/{training_id}/admission", token=await server.token("stage.a")
    )
    assert status == 200, admitted
    prefix = admitted["viewer_url"]

    async def stage_live() -> bool:
        return (await streams(server, prefix)).get("stage") == "live"

    await eventually_async(stage_live, within=30)
    status, init = await fetch(server, f"{prefix}stage/init.mp4")
    assert status == 200
    status, text = await fetch(server, f"{prefix}stage/live.m3u8")
    playlist = parse_playlist(text.decode())
    parts = [await fetch(server, f"{prefix}stage/{part[1]}") for part in playlist.parts]
    assert parts and all(status == 200 for status, _ in parts)
    frames = decode(init, *[data for _, data in parts])
    assert frames and frames[0].width > 0
    with av.open(io.BytesIO(init + b"".join(d for _, d in parts))) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]

    # the lecturer takes the trainee off: everybody is told, the stream ends, no more publishing
    removed = await lecturer.call("stage-remove", {"training_id": training_id})
    assert removed["ok"] and removed["stage"]["on_stage"] is None, removed
    await eventually(lambda: other.events_named("stage-changed")[-1]["on_stage"] is None)
    assert (await streams(server, prefix)).get("stage") != "live"
    again = new_pc()
    closing.append(again)
    late = await trainee.call(
        "stage-publish", {"training_id": training_id, **await offer(again, "camera", "microphone")}
    )
    assert refusal(late) == "not_on_stage"

    first_live = parse_playlist((await fetch(server, f"{prefix}stage/live.m3u8"))[1].decode())
    assert first_live.ended

    # a second appearance, a minute later (the server's clock stands still unless moved):
    # the lecturer brings on stage somebody who never raised a hand
    server.clock.advance(timedelta(minutes=1))
    stage_a = await server.user_id("stage.a")
    other_side = StageSide(other, training_id)
    closing.append(other_side)
    invited = await lecturer.call("stage-invite", {"training_id": training_id, "user_id": stage_a})
    assert invited["ok"], invited
    second_pc = new_pc()
    closing.append(second_pc)
    published = await other.call(
        "stage-publish",
        {"training_id": training_id, **await offer(second_pc, "camera", "microphone")},
    )
    assert published["ok"], published
    await second_pc.setRemoteDescription(
        RTCSessionDescription(published["description"]["sdp"], "answer")
    )

    async def second_run_closed_a_segment() -> bool:
        status, text = await fetch(server, f"{prefix}stage/live.m3u8")
        live = parse_playlist(text.decode()) if status == 200 else None
        return live is not None and not live.ended and bool(live.segments)

    await eventually_async(second_run_closed_a_segment, within=30)
    status, text = await fetch(server, f"{prefix}stage/live.m3u8")
    second_live = parse_playlist(text.decode())
    # its names are new: a cache holding the first appearance's files serves nothing stale
    first_numbers = {uri for _, uri in first_live.segments} | {u for _, u, _ in first_live.parts}
    second_numbers = {uri for _, uri in second_live.segments} | {u for _, u, _ in second_live.parts}
    assert not first_numbers & second_numbers
    assert second_live.map_uri is not None and second_live.map_uri.startswith("init-")
    assert second_live.media_sequence > int(sorted(first_numbers)[-1].split(".")[0][1:])
    assert (await lecturer.call("stage-remove", {"training_id": training_id}))["ok"]
    await eventually_async(lambda: stage_not_live(server, prefix), within=10)

    # the end: the replay of the stage has both appearances, on the lecturer's wall clock
    status, _ = await server.request(
        "POST", f"/api/trainings/{training_id}/end", token=await server.token("obstetrician")
    )
    assert status == 200
    await stage_replay_matches_the_camera(server, prefix)

    for action, expected in (
        ("stage.invited", [doctor_a, stage_a]),
        ("stage.left", [doctor_a, stage_a]),
    ):
        rows = await training_audit(server, action, training_id)
        assert [r.detail["trainee"] for r in rows] == expected, action
    joined = await training_audit(server, "stage.joined", training_id)
    assert [r.actor_id for r in joined] == [doctor_a, stage_a]
    assert "publish on stage" in await refusals_audited(server, training_id)


async def stage_not_live(server: InProcessServer, prefix: str) -> bool:
    return (await streams(server, prefix)).get("stage") != "live"


async def stage_replay_matches_the_camera(server: InProcessServer, prefix: str) -> None:
    """The stage's replay playlist: valid, one run per appearance (each after a
    discontinuity, with its own init section), every run decoding on its own with
    continuous timestamps, and its wall-clock times inside the lecturer's camera replay, in
    the order they happened (the test clock stands still within an appearance: the e2e test,
    on a real clock, checks the times of the segments of one appearance)."""
    status, text = await fetch(server, f"{prefix}camera/vod.m3u8")
    assert status == 200
    camera = parse_playlist(text.decode())
    status, text = await fetch(server, f"{prefix}stage/vod.m3u8")
    assert status == 200
    stage = parse_playlist(text.decode())
    assert stage.ended and stage.playlist_type == "VOD"
    assert [run.map_uri for run in stage.runs][:1] == ["init.mp4"]
    assert len(stage.runs) == 2 and stage.runs[1].map_uri != "init.mp4"
    assert text.decode().count("#EXT-X-DISCONTINUITY\n") == 1
    names = [uri for _, uri in stage.segments]
    assert len(names) == len(set(names))
    camera_from = camera.runs[0].segments[0][0]
    last_date, last_duration, _ = camera.runs[-1].segments[-1]
    assert camera_from is not None and last_date is not None
    camera_to = last_date + timedelta(seconds=last_duration)
    previous_end = None
    for run in stage.runs:
        assert run.map_uri is not None
        status, init = await fetch(server, f"{prefix}stage/{run.map_uri}")
        assert status == 200
        media = [(await fetch(server, f"{prefix}stage/{uri}"))[1] for _, _, uri in run.segments]
        frames = decode(init, *media)
        times = [f.time for f in frames]
        assert frames and times == sorted(times)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 0.5, "a run's pictures are continuous"
        with av.open(io.BytesIO(init + b"".join(media))) as container:
            assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
        began, _, _ = run.segments[0]
        ended_date, ended_duration, _ = run.segments[-1]
        assert began is not None and ended_date is not None
        assert camera_from - timedelta(seconds=1) <= began
        assert ended_date + timedelta(seconds=ended_duration) <= camera_to + timedelta(seconds=2)
        if previous_end is not None:
            assert began >= previous_end, "the appearances in the order they happened"
        previous_end = ended_date + timedelta(seconds=ended_duration)


async def test_who_may_invite_publish_and_be_invited_and_bad_offers_are_refused(
    server: InProcessServer, closing: list[Any]
) -> None:
    training_id = await live_training(server)
    await present(server, training_id, closing)
    lecturer = await watching(server, closing, "obstetrician", training_id)
    trainee = await watching(server, closing, "doctor.a", training_id)
    doctor_a = await server.user_id("doctor.a")

    # a trainee (not a lecturer) inviting: forbidden, audited
    by_trainee = await trainee.call(
        "stage-invite", {"training_id": training_id, "user_id": doctor_a}
    )
    assert refusal(by_trainee) == "forbidden"
    # an invitation to somebody of the audience who is not attending (no page follows it)
    absent = await lecturer.call(
        "stage-invite", {"training_id": training_id, "user_id": await server.user_id("stage.a")}
    )
    assert refusal(absent) == "not_attending"
    # ... or to somebody outside the audience, or nobody at all
    outsider = await lecturer.call(
        "stage-invite", {"training_id": training_id, "user_id": await server.user_id("doctor.b")}
    )
    assert refusal(outsider) == "not_attending"
    nobody = await lecturer.call("stage-invite", {"training_id": training_id, "user_id": 999_999})
    assert refusal(nobody) == "not_attending"
    # a trainee publishing without being invited
    pc = new_pc()
    closing.append(pc)
    uninvited = await trainee.call(
        "stage-publish", {"training_id": training_id, **await offer(pc, "camera", "microphone")}
    )
    assert refusal(uninvited) == "not_on_stage"
    assert (await lecturer.call("stage-remove", {"training_id": training_id}))["ok"]
    assert refusal(await trainee.call("stage-leave", {"training_id": training_id})) == (
        "not_on_stage"
    )
    audited = await refusals_audited(server, training_id)
    assert "invite_to_stage" in audited and "publish on stage" in audited
    assert sum(a.startswith("invite ") for a in audited) == 3

    # invited, a malformed offer: refused before the relay sees it; schema errors too
    assert (await lecturer.call("stage-invite", {"training_id": training_id, "user_id": doctor_a}))[
        "ok"
    ]
    garbage = await trainee.call(
        "stage-publish",
        {
            "training_id": training_id,
            "description": {"type": "offer", "sdp": "v=0\r\nthis is not an offer"},
            "sources": {"0": "camera"},
        },
    )
    assert refusal(garbage) == "invalid_sdp"
    for bad in (
        {"training_id": training_id, "description": {"type": "answer", "sdp": "v=0"}},
        {
            "training_id": training_id,
            "description": {"type": "offer", "sdp": "v=0"},
            "sources": {"0": "second"},
        },
        {
            "training_id": "../etc",
            "description": {"type": "offer", "sdp": "v=0"},
            "sources": {"0": "camera"},
        },
        "not an object",
    ):
        assert refusal(await trainee.call("stage-publish", bad)) == "invalid_payload", bad
    assert refusal(await lecturer.call("stage-hand", {"training_id": training_id})) == (
        "invalid_payload"
    )
    # an answer from somebody neither the lecturer nor on stage
    stranger = await watching(server, closing, "stage.a", training_id)
    spare = new_pc()
    closing.append(spare)
    sdp = (await offer(spare, "camera"))["description"]["sdp"]
    answer = await stranger.call(
        "stage-answer",
        {"training_id": training_id, "description": {"type": "answer", "sdp": sdp}},
    )
    assert refusal(answer) == "not_on_stage"
    # the invited trainee closes their page: off the stage, everybody told, audited
    await trainee.sio.disconnect()
    await eventually(
        lambda: any(
            e["on_stage"] is None and e["training_id"] == training_id
            for e in lecturer.events_named("stage-changed")[-1:]
        )
    )
    rows = await training_audit(server, "stage.left", training_id)
    assert [r.detail["reason"] for r in rows] == ["disconnected"]


async def test_the_lecturer_lists_everybody_attending_searches_pages_and_invites_without_a_hand(
    server: InProcessServer, closing: list[Any]
) -> None:
    training_id = await live_training(server)
    status, started = await server.request(
        "POST", f"/api/trainings/{training_id}/start", token=await server.token("obstetrician")
    )
    assert status == 200, started
    county_a = await institution_of(server, "doctor.a")
    for name in ("list.b", "list.c"):
        await add_trainee(server, name, county_a)
    lecturer = await watching(server, closing, "obstetrician", training_id)
    trainee = await watching(server, closing, "doctor.a", training_id)
    list_b = await watching(server, closing, "list.b", training_id)
    await watching(server, closing, "list.c", training_id)
    await watching(server, closing, "list.c", training_id)  # a second page of the same person
    raised = await trainee.call("stage-hand", {"training_id": training_id, "raised": True})
    assert raised["ok"], raised

    everybody = await lecturer.call("stage-attendees", {"training_id": training_id})
    assert everybody["ok"], everybody
    assert everybody["total"] == 3  # the lecturer is not listed, list.c once
    people = {p["id"]: p for p in everybody["attendees"]}
    doctor_a = await server.user_id("doctor.a")
    assert people[doctor_a]["hand_raised"] is True
    assert people[doctor_a]["institution"] == {
        "id": county_a,
        "name": people[doctor_a]["institution"]["name"],
    }
    names = [p["display_name"].casefold() for p in everybody["attendees"]]
    assert names == sorted(names)
    # searched (case ignored) and paged
    found = await lecturer.call("stage-attendees", {"training_id": training_id, "query": "LIST."})
    assert [p["display_name"] for p in found["attendees"]] == ["list.b", "list.c"]
    second = await lecturer.call(
        "stage-attendees", {"training_id": training_id, "query": "list.", "offset": 1, "limit": 1}
    )
    assert (second["total"], [p["display_name"] for p in second["attendees"]]) == (2, ["list.c"])

    # the lecturer brings list.b on stage, who never raised a hand: list.b still consents
    list_b_id = await server.user_id("list.b")
    invited = await lecturer.call(
        "stage-invite", {"training_id": training_id, "user_id": list_b_id}
    )
    assert invited["ok"] and invited["stage"]["on_stage"]["id"] == list_b_id, invited
    assert invited["stage"]["joined"] is False  # nothing is captured before their consent
    listed = await lecturer.call("stage-attendees", {"training_id": training_id, "query": "list.b"})
    assert listed["attendees"][0]["on_stage"] is True
    # who leaves is no longer listed
    await list_b.sio.disconnect()
    await eventually_async(lambda: _total(lecturer, training_id, "list.b", 0), within=10)

    # refusals: a trainee listing (audited), not following, bad payloads
    assert refusal(await trainee.call("stage-attendees", {"training_id": training_id})) == (
        "forbidden"
    )
    assert "list attendees" in await refusals_audited(server, training_id)
    stranger = await connected(server, closing, "stage.a")
    assert refusal(await stranger.call("stage-attendees", {"training_id": training_id})) == (
        "not_watching"
    )
    scheduled = await live_training(server)  # not started: nobody to list yet
    early = await watching(server, closing, "obstetrician", scheduled)
    assert refusal(await early.call("stage-attendees", {"training_id": scheduled})) == (
        "training_not_live"
    )
    for bad in (
        {"training_id": training_id, "limit": 0},
        {"training_id": training_id, "limit": 51},
        {"training_id": training_id, "offset": -1},
        {"training_id": training_id, "query": "x" * 101},
        {"training_id": training_id, "page": 2},
        {"training_id": "../etc"},
        "everybody",
    ):
        assert refusal(await lecturer.call("stage-attendees", bad)) == "invalid_payload", bad


async def _total(lecturer: Participant, training_id: str, query: str, expected: int) -> bool:
    answer = await lecturer.call("stage-attendees", {"training_id": training_id, "query": query})
    return bool(answer["ok"]) and answer["total"] == expected
