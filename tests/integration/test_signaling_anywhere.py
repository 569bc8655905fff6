"""Signaling in any process: two `teleconsult serve` processes on one PostgreSQL and one Redis,
haproxy in front. Participants of one consult connected to different processes meet, signal
and get media flowing (real aiortc peers); SIGKILL of the process that owns the consult's room
brings everyone back into the consult, media flowing, the consult still live."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, SharedCluster
from tests.support.peer import Participant, eventually
from tests.support.reconnecting_page import Page, back_in_the_consult, meet_with_video

pytestmark = pytest.mark.slow

FAILOVER_BOUND_SECONDS = 5.0
"""The issue's bound for a signaling failover (back in the consult, media flowing)."""
SLACK = 3.0
"""This test asserts the bound with generous slack (a shared 2-core machine); the measured time
is printed and reported in docs/deployment.md, never asserted tightly."""


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[SharedCluster]:
    shared = SharedCluster()
    yield shared
    shared.close()


@pytest.fixture
def cluster(shared_cluster: SharedCluster) -> Cluster:
    """The module's cluster, whole: each test books its own consult; a new cluster after a
    test killed one of its processes."""
    return shared_cluster.get()


async def test_participants_on_different_processes_meet_signal_and_get_media_flowing(
    cluster: Cluster,
) -> None:
    one, two = cluster.servers
    consult = one.book()
    exam_room, specialist = Participant("exam room"), Participant("specialist")
    try:
        await exam_room.connect(one.url, one.token("doctor.a"))
        await specialist.connect(two.url, two.token("obstetrician"))
        first = await exam_room.join(consult["id"])
        assert first["ok"] and first["peers"] == [], first
        assert await cluster.owner(consult["id"]) == cluster.node_of(one)

        # The specialist's join goes from the second process to the room's owner, the first.
        second = await specialist.join(consult["id"])
        assert second["ok"], second
        assert second["consult"]["status"] == "live"
        assert [p["peer_id"] for p in second["peers"]] == [exam_room.peer_id]
        await eventually(lambda: exam_room.events_named("peer-joined"), within=10)
        joined = exam_room.events_named("peer-joined")[0]
        assert joined["peer"]["peer_id"] == specialist.peer_id
        assert joined["peer"]["user"]["role"] == "specialist"

        # Offers, answers and candidates cross the processes both ways; media flows.
        await specialist.offer_to(exam_room.peer_id)
        await eventually(
            lambda: (
                exam_room.video_frames.get(specialist.peer_id, 0) >= 10
                and specialist.video_frames.get(exam_room.peer_id, 0) >= 10
            ),
            within=30,
        )

        # A signal to someone not in the room is refused by the owner, and the refusal comes
        # back to the caller on the other process.
        refused = await specialist.call(
            "signal", {"consult_id": consult["id"], "to": "nobody", "end_of_candidates": True}
        )
        assert refused["ok"] is False and refused["error"]["code"] == "unknown_peer"

        # A disconnect on the second process reaches the room on the first.
        await specialist.sio.disconnect()
        await eventually(lambda: exam_room.events_named("peer-left"), within=10)
        left = exam_room.events_named("peer-left")[0]
        assert left == {
            "consult_id": consult["id"],
            "peer_id": specialist.peer_id,
            "reason": "disconnected",
        }
    finally:
        await exam_room.close()
        await specialist.close()


async def test_sigkill_of_the_room_owner_brings_everyone_back_with_media_flowing(
    cluster: Cluster,
) -> None:
    one, two = cluster.servers
    consult = one.book()
    # haproxy balances round robin: the two pages land on different processes.
    exam_room = Page("exam room", cluster.lb.url, one.token("doctor.a"), consult["id"])
    specialist = Page("specialist", cluster.lb.url, one.token("obstetrician"), consult["id"])
    try:
        ack = await meet_with_video(exam_room, specialist, within=30)
        assert ack["consult"]["status"] == "live"
        owner = await cluster.owning_server(consult["id"])
        survivor = two if owner is one else one

        killed_at = time.monotonic()
        owner.kill()
        # Both pages are back in the consult (one reconnected through haproxy, the other told
        # to rejoin by its own process) and the video flows both ways between the new peers.
        await eventually(
            lambda: back_in_the_consult(exam_room, specialist),
            within=30,
            interval=0.05,
        )
        back_after = time.monotonic() - killed_at
        print(f"\nsignaling failover: back in the consult, media flowing, {back_after:.2f} s")
        assert len(exam_room.rejoin_events) + len(specialist.rejoin_events) == 1
        assert await cluster.owner(consult["id"]) == cluster.node_of(survivor)
        assert back_after < FAILOVER_BOUND_SECONDS + SLACK
        status = survivor.request(
            "GET", f"/api/consults/{consult['id']}", token=survivor.token("doctor.a")
        )
        assert status.body["status"] == "live"
    finally:
        await exam_room.close()
        await specialist.close()
