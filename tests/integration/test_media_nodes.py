"""Media nodes as processes of their own (`teleconsult media-node`, `MEDIA_NODES=redis`).

Everything is real: a redis-server, a `teleconsult serve` signaling process and media node
processes on one data directory, participants with real aiortc publish and subscribe
connections (`tests/support/relay_peer.py`), recordings decoded with PyAV. Which process carries
a consult's media is read off the relay's ICE candidates: each node has its own UDP port range,
and the signaling process has none of its own relays.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.media_node import (
    RunningMediaNode,
    partial_files,
    recording_written,
    start_all,
)
from tests.support.peer import eventually
from tests.support.redis import RedisServer
from tests.support.relay_peer import RelayParticipant
from tests.support.relayed_consult import (
    both_see_each_other,
    joined,
    ready_recordings,
    recording_consult,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow

RELAY_RESTART_BOUND_S = 5.0
"""Issue 10: after a media node is killed, clients republish within 5 s."""

CANDIDATE_PORT = re.compile(r"a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 (\d+) typ host")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture(scope="module")
def signaling(redis: RedisServer) -> Iterator[RunningServer]:
    """A signaling process whose consults' media runs on media nodes."""
    with RunningServer(
        env_overrides={
            "MEDIA_NODES": "redis",
            "REDIS_URL": redis.url,
            "JOINS_PER_MINUTE": "10000",
            "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
        }
    ) as running:
        yield running


@pytest.fixture
def nodes(signaling: RunningServer, redis: RedisServer) -> Iterator[list[RunningMediaNode]]:
    """Two media nodes, each with its own 100 UDP ports, started together; stopped (if alive)
    after the test."""
    base = random.randrange(30000, 59000, 200)
    made = [
        RunningMediaNode(name, signaling.data_dir, redis.url, base + i * 100, base + i * 100 + 99)
        for i, name in enumerate((f"node-a{base}", f"node-b{base}"))
    ]
    start_all(made)
    yield made
    for node in made:
        node.stop()


def carrier(answer: dict[str, Any], nodes: list[RunningMediaNode]) -> RunningMediaNode:
    """The node whose relay answered this publish offer (by its candidates' ports)."""
    ports = {int(p) for p in CANDIDATE_PORT.findall(answer["description"]["sdp"])}
    assert ports, answer["description"]["sdp"]
    owners = [n for n in nodes if all(n.owns_port(p) for p in ports)]
    assert len(owners) == 1, (ports, [(n.port_min, n.port_max) for n in nodes])
    return owners[0]


def decoded_frames(server: RunningServer, consult_id: str, rec: dict[str, Any]) -> int:
    folder = server.data_dir / "media" / "recordings" / consult_id
    files = list(folder.glob(f"{rec['id']}.*"))
    assert len(files) == 1, files
    with av.open(str(files[0])) as container:
        return sum(1 for _ in container.decode(container.streams[0]))


def audit_actions(server: RunningServer, consult_id: str) -> list[str]:
    entries = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    ).body["entries"]
    return [e["action"] for e in entries]


async def some_recording_on(data_dir: Path, node_id: str, tracks: int = 4) -> None:
    await eventually(lambda: recording_written(data_dir, node_id, tracks), within=30)


async def test_a_recorded_consult_runs_on_a_media_node_process_and_lands_where_signaling_serves_it(
    signaling: RunningServer,
    nodes: list[RunningMediaNode],
    people: list[RelayParticipant],
) -> None:
    consult = signaling.book()
    _exam_room, specialist, answer = await recording_consult(signaling, people, consult["id"])
    node = carrier(answer, nodes)
    # The node writes the partial files in its own folder, the signaling process none.
    # (each track's file appears once its sidecar is durable and its first frame is written)
    await eventually(lambda: len(partial_files(signaling.data_dir, node.node_id)) == 4)
    writers = [p.name for p in (signaling.data_dir / "media" / "partial").iterdir() if p.is_dir()]
    assert writers and all(name.startswith("node-") for name in writers), writers
    await some_recording_on(signaling.data_dir, node.node_id)
    stopped = await specialist.call("recording-stop", {"consult_id": consult["id"]})
    assert stopped["ok"] and stopped["recording"]["state"] == "off"

    await eventually(lambda: len(ready_recordings(signaling, consult["id"])) == 4, within=30)
    for rec in ready_recordings(signaling, consult["id"]):
        assert not rec["recovered"]
        assert decoded_frames(signaling, consult["id"], rec) > 0
    # Played back by the signaling process from the same recordings directory.
    video = next(r for r in ready_recordings(signaling, consult["id"]) if r["kind"] == "video")
    grant = signaling.request(
        "POST", f"/api/recordings/{video['id']}/playback", {}, token=signaling.token("doctor.a")
    )
    assert grant.status == 200, grant.body
    assert f"placed on media node {node.node_id}" in signaling.log_path.read_text()


async def test_a_new_consult_is_placed_on_the_least_loaded_live_node(
    signaling: RunningServer,
    nodes: list[RunningMediaNode],
    people: list[RelayParticipant],
) -> None:
    first = signaling.book()
    a1 = await joined(signaling, people, first["id"], "doctor.a")
    a2 = await joined(signaling, people, first["id"], "obstetrician")
    moved = await a2.report_p2p_failed(a1.peer_id)
    assert moved["media_path"] == "relay", moved
    busy = carrier(await a1.publish(), nodes)
    await a2.publish()
    await both_see_each_other(a1, a2)
    idle = next(n for n in nodes if n is not busy)

    # The busy node's lease now says it forwards 4 streams; the other none.
    second = signaling.book(username="doctor.b", specialist="obstetrician2")
    b1 = await joined(signaling, people, second["id"], "doctor.b")
    b2 = await joined(signaling, people, second["id"], "obstetrician2")
    moved = await b2.report_p2p_failed(b1.peer_id)
    assert moved["media_path"] == "relay", moved
    assert carrier(await b1.publish(), nodes) is idle
    assert carrier(await b2.publish(), nodes) is idle
    await both_see_each_other(b1, b2)


async def test_a_killed_media_node_moves_its_consult_and_the_recording_goes_on_as_a_new_part(
    signaling: RunningServer,
    nodes: list[RunningMediaNode],
    people: list[RelayParticipant],
) -> None:
    consult = signaling.book()
    exam_room, specialist, answer = await recording_consult(signaling, people, consult["id"])
    dead = carrier(answer, nodes)
    survivor = next(n for n in nodes if n is not dead)
    await some_recording_on(signaling.data_dir, dead.node_id)

    killed_at = time.monotonic()
    dead.kill()
    await eventually(
        lambda: exam_room.restarted_at and specialist.restarted_at,
        within=10,
    )
    told_after = max(exam_room.restarted_at[0], specialist.restarted_at[0]) - killed_at
    assert told_after <= RELAY_RESTART_BOUND_S, f"relay-restart {told_after:.1f} s after the kill"
    await both_see_each_other(exam_room, specialist, within=20)
    flowing_after = time.monotonic() - killed_at
    print(f"relay-restart after {told_after:.2f} s, media again after {flowing_after:.2f} s")
    assert carrier(exam_room.publish_answer, nodes) is survivor
    assert carrier(specialist.publish_answer, nodes) is survivor
    await eventually(lambda: len(partial_files(signaling.data_dir, survivor.node_id)) == 4)
    assert len(partial_files(signaling.data_dir, dead.node_id)) == 4, "left for recovery"
    await some_recording_on(signaling.data_dir, survivor.node_id)
    stopped = await specialist.call("recording-stop", {"consult_id": consult["id"]})
    assert stopped["ok"], stopped

    # The new part: the same session's timeline, after the kill, finalized normally.
    await eventually(lambda: len(ready_recordings(signaling, consult["id"])) == 4, within=30)
    new_parts = ready_recordings(signaling, consult["id"])
    assert all(not r["recovered"] and r["started_offset_s"] >= 2 for r in new_parts), new_parts
    assert "recording.resumed" in audit_actions(signaling, consult["id"])

    # The dead node's partial files wait for a recovery; a live node's are never touched.
    refused = signaling.cli("recover", "--node", survivor.node_id)
    assert refused.returncode == 1 and "running" in refused.stderr
    recovered = signaling.cli("recover", "--node", dead.node_id)
    assert recovered.returncode == 0, recovered.stderr
    assert "recovered 4 unfinished recording(s)" in recovered.stdout
    assert not (signaling.data_dir / "media" / "partial" / dead.node_id).exists()
    everything = ready_recordings(signaling, consult["id"])
    assert len(everything) == 8
    old_parts = [r for r in everything if r["recovered"]]
    assert len(old_parts) == 4
    for rec in everything:
        assert decoded_frames(signaling, consult["id"], rec) > 0
    assert "recording.recovered" in audit_actions(signaling, consult["id"])
    # Both parts are one session on the review timeline: the new one starts where the gap ends.
    timeline = signaling.request(
        "GET", f"/api/consults/{consult['id']}/playback", token=signaling.token("doctor.a")
    ).body["timeline"]
    assert len(timeline["sessions"]) == 1, timeline["sessions"]
    assert min(r["started_offset_s"] for r in new_parts) >= max(
        r["started_offset_s"] + r["duration_s"] for r in old_parts if r["kind"] == "video"
    )


async def test_a_restarted_media_node_recovers_what_it_left_when_it_was_killed(
    signaling: RunningServer,
    nodes: list[RunningMediaNode],
    people: list[RelayParticipant],
) -> None:
    consult = signaling.book()
    _exam_room, _specialist, answer = await recording_consult(signaling, people, consult["id"])
    node = carrier(answer, nodes)
    await some_recording_on(signaling.data_dir, node.node_id)
    node.kill()
    for person in people:
        await person.close()
    people.clear()
    assert len(partial_files(signaling.data_dir, node.node_id)) == 4

    node.start()

    assert partial_files(signaling.data_dir, node.node_id) == []
    assert "recovered 4 unfinished recording(s)" in node.log_path.read_text()
    recordings = ready_recordings(signaling, consult["id"])
    assert len(recordings) == 4 and all(r["recovered"] for r in recordings)
    for rec in recordings:
        assert decoded_frames(signaling, consult["id"], rec) > 0
