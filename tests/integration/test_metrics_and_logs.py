"""`/metrics` after a real call, its protection, and JSON log lines that name their consult.

The call is real: two python-socketio participants with real aiortc connections to the
server's relay, recorded; the counters are read from the server's own `/metrics` text.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import ClientSession
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from teleconsult.metrics import serve_metrics
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import REPO, RunningServer, free_port


@pytest.fixture(scope="module")
def json_server() -> Iterator[RunningServer]:
    with RunningServer(env_overrides={"LOG_FORMAT": "json"}) as running:
        yield running


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`: (name, sorted labels) → value."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def a_recorded_call(
    server: RunningServer, people: list[RelayParticipant]
) -> tuple[str, RelayParticipant, RelayParticipant]:
    consult = server.book()
    exam_room = RelayParticipant("doctor.a")
    specialist = RelayParticipant("obstetrician")
    people += [exam_room, specialist]
    for person in (exam_room, specialist):
        await person.connect(server.url, server.token(person.name))
        await person.join(consult["id"])
    assert (await specialist.call("recording-start", {"consult_id": consult["id"]}))["ok"]
    await eventually(lambda: exam_room.events_named("recording-consent-requested"))
    consent = await exam_room.call(
        "recording-consent", {"consult_id": consult["id"], "granted": True}
    )
    assert consent["ok"], consent
    await eventually(lambda: specialist.events_named("media-path"))
    await exam_room.publish()
    await specialist.publish()
    await eventually(
        lambda: (
            exam_room.frames_from(specialist, "camera") >= 30
            and specialist.frames_from(exam_room, "camera") >= 30
        ),
        within=40,
    )
    return str(consult["id"]), exam_room, specialist


async def test_the_counters_move_with_a_real_call_on_the_relay(
    json_server: RunningServer, people: list[RelayParticipant]
) -> None:
    before = scrape(json_server)
    consult_id, exam_room, specialist = await a_recorded_call(json_server, people)

    during = scrape(json_server)
    assert value(during, "teleconsult_socket_connections") >= 2
    assert value(during, "teleconsult_live_consults") >= 1
    assert value(during, "teleconsult_people_in_consults") >= 2
    assert value(during, "teleconsult_relay_consults", node="") >= 1
    assert value(during, "teleconsult_relay_participants", node="") >= 2
    assert value(during, "teleconsult_relay_streams", node="") >= 4  # two cameras, two mics
    assert value(during, "teleconsult_recording_tracks", node="") >= 4
    joins = value(during, "teleconsult_joins_total", outcome="ok") - value(
        before, "teleconsult_joins_total", outcome="ok"
    )
    assert joins == 2
    assert (
        value(during, "teleconsult_join_seconds_count", outcome="ok")
        - value(before, "teleconsult_join_seconds_count", outcome="ok")
        == 2
    )
    assert value(during, "teleconsult_join_seconds_sum", outcome="ok") > value(
        before, "teleconsult_join_seconds_sum", outcome="ok"
    )
    forwarded = value(during, "teleconsult_relay_packets_forwarded_total", node="")
    assert forwarded - value(before, "teleconsult_relay_packets_forwarded_total", node="") >= 60
    assert value(during, "teleconsult_relay_forwarded_bytes_total", node="") > forwarded
    assert value(during, "teleconsult_relay_packets_received_total", node="") >= forwarded / 2
    # New subscribers ask for keyframes: PLIs went upstream.
    assert value(during, "teleconsult_relay_plis_sent_total", node="") >= 1
    assert value(during, "process_cpu_seconds_total") > 0

    # Refusals are counted by code, over socket.io and over HTTP.
    bad = await exam_room.call("relay-candidate", {"consult_id": consult_id, "leg": "nowhere"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
    missing = json_server.request(
        "GET", "/api/consults/" + "0" * 32, token=json_server.token("doctor.a")
    )
    assert missing.status == 404

    assert (await specialist.call("recording-stop", {"consult_id": consult_id}))["ok"]

    def listed() -> list[dict[str, Any]]:
        reply = json_server.request(
            "GET", f"/api/consults/{consult_id}/recordings", token=json_server.token("doctor.a")
        )
        return list(reply.body["recordings"])

    await eventually(lambda: len(listed()) == 4, within=30)
    after = scrape(json_server)
    assert (
        value(after, "teleconsult_recording_tracks_finalized_total", node="")
        - value(before, "teleconsult_recording_tracks_finalized_total", node="")
        == 4
    )
    finalized = value(after, "teleconsult_recording_finalized_bytes_total", node="") - value(
        before, "teleconsult_recording_finalized_bytes_total", node=""
    )
    assert finalized == sum(r["bytes"] for r in listed())
    assert value(after, "teleconsult_errors_total", code="invalid_payload", via="socketio") >= 1
    assert value(after, "teleconsult_errors_total", code="not_found", via="http") >= 1
    assert value(after, "teleconsult_recording_failures_total", node="", reason="finalize") == 0

    # Counters never go down when the consult's relay closes.
    for person in (exam_room, specialist):
        assert (await person.call("leave", {"consult_id": consult_id}))["ok"]
    await eventually(lambda: value(scrape(json_server), "teleconsult_relay_consults", node="") == 0)
    closed = scrape(json_server)
    assert value(closed, "teleconsult_relay_packets_forwarded_total", node="") >= value(
        after, "teleconsult_relay_packets_forwarded_total", node=""
    )


S3_ONLY = {"teleconsult_recording_bucket_up", "teleconsult_recording_uploads_waiting"}
REDIS_ONLY = {
    "teleconsult_fanout_waiting_messages",
    "teleconsult_fanout_high_water_messages",
    "teleconsult_fanout_high_water_bytes",
    "teleconsult_fanout_dropped_full_messages",
}
"""The Redis fan-out's figures (`REDIS_URL` only) that docs/deployment.md names in full."""


def test_the_grafana_dashboard_and_the_docs_name_only_metrics_the_server_has(
    json_server: RunningServer,
) -> None:
    assert json_server.request("GET", "/api/no-such-thing").status == 404  # an error counted
    served = {name for name, _labels in scrape(json_server)}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in served}
    dashboard = (REPO / "docs" / "grafana-dashboard.json").read_text()
    named = set(re.findall(r"\bteleconsult_[a-z_]+", dashboard)) - S3_ONLY
    assert named, "the dashboard names no metric"
    missing = {
        n for n in named if n not in served and re.sub(r"_(total|bucket)$", "", n) not in families
    }
    assert not missing, missing
    docs = (REPO / "docs" / "deployment.md").read_text()
    documented = set(re.findall(r"`(teleconsult_[a-z_]+)", docs)) - S3_ONLY - REDIS_ONLY
    assert not {
        n
        for n in documented
        if n not in served and re.sub(r"_(total|bucket)$", "", n) not in families
    }


async def test_json_log_lines_parse_and_name_the_consult_they_concern(
    json_server: RunningServer, people: list[RelayParticipant]
) -> None:
    consult_id, _exam_room, specialist = await a_recorded_call(json_server, people)
    assert (await specialist.call("recording-stop", {"consult_id": consult_id}))["ok"]

    def finalized_lines() -> list[dict[str, Any]]:
        lines = [
            json.loads(line)
            for line in json_server.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        return [
            line
            for line in lines
            if "finalized" in line["message"] and consult_id in line["message"]
        ]

    await eventually(lambda: len(finalized_lines()) == 4, within=30)
    for line in finalized_lines():
        assert line["consult_id"] == consult_id
        assert {"ts", "level", "logger", "message"} <= set(line)
    records = [
        line for line in json_server.log_path.read_text().splitlines() if line.startswith("{")
    ]
    assert records and all(isinstance(json.loads(line), dict) for line in records)


async def test_metrics_on_a_port_of_their_own_want_the_token_when_one_is_set() -> None:
    registry = CollectorRegistry()
    Counter("teleconsult_test_things", "things", registry=registry).inc(3)
    port = free_port()
    runner = await serve_metrics(registry, "127.0.0.1", port, token="a-long-metrics-token")
    try:
        async with ClientSession() as http:
            url = f"http://127.0.0.1:{port}/metrics"
            async with http.get(url) as resp:
                assert resp.status == 401
                assert (await resp.json())["code"] == "token_missing"
            async with http.get(url, headers={"Authorization": "Bearer wrong"}) as resp:
                assert resp.status == 401
                assert (await resp.json())["code"] == "token_invalid"
            headers = {"Authorization": "Bearer a-long-metrics-token"}
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 200
                assert "teleconsult_test_things_total 3.0" in await resp.text()
    finally:
        await runner.cleanup()
