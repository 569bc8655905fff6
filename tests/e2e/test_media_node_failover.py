"""A media node dies mid-consult: both browsers republish on another node by themselves.

Real Chromium pages, a real redis-server, `teleconsult serve` with `MEDIA_NODES=redis` and two
`teleconsult media-node` processes. The specialist records (which moves the consult onto the
relay, on one node); that node is SIGKILLed; both pages get `relay-restart`, open new relay
connections and show each other again through the other node, while the indicator still says
"recording"; after the consult the recording has parts from both nodes once the dead one's are
recovered.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator

import pytest
import redis as redis_sync
from playwright.sync_api import expect

from media.cluster import leases
from tests.e2e.browser import Client
from tests.e2e.flows import end_consult, open_call_link, wait_for_remote_video
from tests.e2e.test_relay_recording import (
    MARK_STREAMS,
    NEW_STREAMS_SAME_TILES,
    give_consent_if_asked,
    wait_for_recordings,
)
from tests.support.media_node import RunningMediaNode, recording_written, start_all
from tests.support.redis import RedisServer
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[RunningServer, list[RunningMediaNode], RedisServer]]:
    with (
        RedisServer() as redis,
        RunningServer(env_overrides={"MEDIA_NODES": "redis", "REDIS_URL": redis.url}) as server,
    ):
        base = random.randrange(30000, 59000, 200)
        nodes = [
            RunningMediaNode(
                f"e2e-{name}", server.data_dir, redis.url, base + i * 100, base + i * 100 + 99
            )
            for i, name in enumerate(("a", "b"))
        ]
        try:
            start_all(nodes)
            yield server, nodes, redis
        finally:
            for node in nodes:
                node.stop()


def busy_node(redis: RedisServer, nodes: list[RunningMediaNode]) -> RunningMediaNode:
    """The node whose lease says it forwards streams."""
    client = redis_sync.Redis.from_url(redis.url, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for node in nodes:
                raw = client.get(leases.LEASE_PREFIX + node.node_id)
                if raw and json.loads(raw)["streams"] > 0:
                    return node
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError("no media node reports streams")


def test_the_pages_republish_on_another_node_when_theirs_is_killed_and_the_recording_goes_on(
    cluster: tuple[RunningServer, list[RunningMediaNode], RedisServer],
    open_client: Callable[..., Client],
) -> None:
    server, nodes, redis = cluster
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=20)
    for page in (room, phone):
        page.evaluate(MARK_STREAMS)
    phone.get_by_test_id("record-start-button").click()
    expect(room.get_by_test_id("consent-dialog")).to_be_visible()
    give_consent_if_asked(phone)
    room.get_by_test_id("consent-agree").click()
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
        page.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=20_000)
    wait_for_remote_video([room, phone], within_s=20)
    dead = busy_node(redis, nodes)
    until(
        lambda: recording_written(server.data_dir, dead.node_id),
        within=30,
        what="recording on the first node",
    )

    for page in (room, phone):
        page.evaluate(MARK_STREAMS)
    killed_at = time.monotonic()
    dead.kill()
    for page in (room, phone):
        page.wait_for_function(NEW_STREAMS_SAME_TILES, polling=250, timeout=15_000)
    wait_for_remote_video([room, phone], within_s=15)
    back_after = time.monotonic() - killed_at
    print(f"both pages show each other again {back_after:.2f} s after the media node was killed")
    survivor = busy_node(redis, [n for n in nodes if n is not dead])
    assert survivor is not dead
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "relay")
        expect(page.get_by_test_id("recording-indicator")).to_be_visible()
    exam_room.screenshot("60-exam-room-after-media-node-failover")
    specialist.screenshot("61-specialist-after-media-node-failover")
    until(
        lambda: recording_written(server.data_dir, survivor.node_id),
        within=30,
        what="recording on the second node",
    )

    end_consult(phone, None)
    second_parts = wait_for_recordings(server, consult["id"], within_s=30)
    assert all(not r["recovered"] for r in second_parts)
    recovered = server.cli("recover", "--node", dead.node_id)
    assert recovered.returncode == 0, recovered.stderr
    listed = server.request(
        "GET", f"/api/consults/{consult['id']}/recordings", token=server.token("doctor.a")
    ).body["recordings"]
    assert len([r for r in listed if r["recovered"]]) == len(second_parts) == 4
    exam_room.assert_clean()
    specialist.assert_clean()
