"""Recordings in an S3-compatible bucket: a real SeaweedFS on loopback (`tests/support/s3.py`).

A recorded consult runs through the real server with real aiortc participants on its relay;
its finished files must end up in the bucket (same SHA-256 as the recording row, decodable by
PyAV), play back by byte ranges from the bucket with the permission check and the audit, and
survive the bucket being down when they are finalized.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import av
import pytest
from prometheus_client.parser import text_string_to_metric_families

from media.object_storage import Bucket, BucketConfig, S3RecordingStorage
from media.storage import RecordingNotFound
from rooms.calls.media_port import RecordingStorageUnavailable
from rooms.consults.people import User
from signaling.auth import PlaybackTokens
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, S3Server
from tests.support.server import RunningServer, free_port


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_server(s3: S3Server) -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides=s3.env(
            RECORDINGS_S3_RETRY_SECONDS="1",
            RECORDINGS_S3_TIMEOUT_SECONDS="2",
            JOINS_PER_MINUTE="10000",
            LOGIN_ATTEMPTS_PER_MINUTE="10000",
        )
    ) as running:
        yield running


def bucket_of(s3: S3Server, part_mb: int = 16) -> Bucket:
    return Bucket(
        BucketConfig(
            endpoint=s3.endpoint,
            bucket=s3.bucket,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            part_bytes=part_mb * 1024 * 1024,
            timeout_seconds=2,
        )
    )


def stored_object(s3: S3Server, key: str) -> bytes:
    response = s3.client().get_object(s3.bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def fetch(server: RunningServer, url: str, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(server.url + url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def scrape(server: RunningServer) -> dict[str, float]:
    """`/metrics` of the server, `name{labels but node}` → value."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if k != "node")
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def decoded_frames(data: bytes, where: Path) -> int:
    where.write_bytes(data)
    with av.open(str(where)) as container:
        return sum(1 for _ in container.decode(container.streams[0]))


def test_a_large_file_goes_up_in_parts_and_its_local_copy_goes_only_once_checked(
    s3: S3Server, tmp_path: Path
) -> None:
    storage = S3RecordingStorage(tmp_path, bucket_of(s3, part_mb=5))
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB: three parts of 5 MiB at most
    staged = storage.staging_path("c1/r1.webm")
    staged.write_bytes(data)

    storage.commit("c1/r1.webm", staged)

    assert not storage.outbox.path("c1/r1.webm").exists()
    assert storage.uploads.pending() == []
    stat = s3.client().stat_object(s3.bucket, "c1/r1.webm")
    assert stat.etag is not None and stat.etag.endswith("-3"), stat.etag  # a multipart upload
    assert stat.metadata["x-amz-meta-sha256"] == hashlib.sha256(data).hexdigest()
    assert storage.size("c1/r1.webm") == len(data)
    assert storage.open_range("c1/r1.webm", 5_000_000, 5_000_100) == data[5_000_000:5_000_100]
    with pytest.raises(RecordingNotFound):
        storage.size("c1/nope.webm")


async def recording_consult(
    server: RunningServer, people: list[RelayParticipant]
) -> tuple[str, RelayParticipant]:
    """A consult on the relay being recorded, its two people's video flowing; the specialist."""
    consult = server.book()
    exam_room = RelayParticipant("doctor.a")
    specialist = RelayParticipant("obstetrician")
    people += [exam_room, specialist]
    for person in (exam_room, specialist):
        await person.connect(server.url, server.token(person.name))
        await person.join(consult["id"])
    started = await specialist.call("recording-start", {"consult_id": consult["id"]})
    assert started["ok"], started
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
    return str(consult["id"]), specialist


async def record_a_consult(server: RunningServer, people: list[RelayParticipant]) -> str:
    consult_id, specialist = await recording_consult(server, people)
    stopped = await specialist.call("recording-stop", {"consult_id": consult_id})
    assert stopped["ok"], stopped
    return consult_id


def listed(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/recordings", token=server.token("doctor.a")
    )
    assert reply.status == 200, reply.body
    return cast(list[dict[str, Any]], reply.body["recordings"])


def outbox_files(server: RunningServer) -> list[Path]:
    return [p for p in (server.data_dir / "media" / "outbox").rglob("*") if p.is_file()]


async def test_a_recorded_consult_is_in_the_bucket_and_plays_back_by_ranges_for_permitted_users(
    s3: S3Server, s3_server: RunningServer, people: list[RelayParticipant], tmp_path: Path
) -> None:
    consult_id = await record_a_consult(s3_server, people)
    await eventually(lambda: len(listed(s3_server, consult_id)) == 4, within=30)
    recordings = listed(s3_server, consult_id)

    for rec in recordings:
        ext = "webm" if rec["container"] == "webm" else "mkv"
        data = stored_object(s3, f"{consult_id}/{rec['id']}.{ext}")
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
        assert len(data) == rec["bytes"]
        assert decoded_frames(data, tmp_path / f"{rec['id']}.{ext}") > 0
    assert outbox_files(s3_server) == []  # nothing kept locally once the bucket has it
    assert not list((s3_server.data_dir / "media").glob("recordings/*/*.webm"))

    video = next(r for r in recordings if r["kind"] == "video")
    in_bucket = stored_object(s3, f"{consult_id}/{video['id']}.webm")
    doctor = s3_server.token("doctor.a")
    grant = s3_server.request("POST", f"/api/recordings/{video['id']}/playback", {}, token=doctor)
    assert grant.status == 200, grant.body
    status, headers, body = fetch(s3_server, grant.body["url"], {"Range": "bytes=100-1099"})
    assert status == 206 and body == in_bucket[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{video['bytes']}"
    status, _headers, whole = fetch(s3_server, grant.body["url"])
    assert status == 200 and whole == in_bucket

    # Another county's doctor: no link, and a link made for them anyway serves no byte.
    other = s3_server.token("doctor.b")
    refused = s3_server.request("POST", f"/api/recordings/{video['id']}/playback", {}, token=other)
    assert refused.status == 403 and refused.body["code"] == "forbidden"
    me = s3_server.request("GET", "/api/me", token=other).body
    secret = (s3_server.data_dir / "jwt_secret").read_text().strip()
    forged, _ = PlaybackTokens(secret, "teleconsult", timedelta(minutes=5)).issue(
        cast(User, SimpleNamespace(id=me["id"])), video["id"]
    )
    status, headers, body = fetch(
        s3_server, f"/api/recordings/{video['id']}/media?access={forged}", {"Range": "bytes=0-"}
    )
    assert status == 403 and headers["Content-Type"].startswith("application/json")
    assert b"forbidden" in body and in_bucket[:64] not in body

    trail = s3_server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=s3_server.token("supervisor")
    ).body["entries"]
    accessed = [e for e in trail if e["action"] == "recording.accessed"]
    assert [e["detail"]["range"] for e in accessed] == [[100, 1099], [0, video["bytes"] - 1]]
    assert {e["actor_id"] for e in accessed} == {
        s3_server.request("GET", "/api/me", token=doctor).body["id"]
    }


async def test_a_bucket_down_at_finalize_keeps_the_files_and_uploads_them_when_it_is_back(
    s3: S3Server, s3_server: RunningServer, people: list[RelayParticipant], tmp_path: Path
) -> None:
    s3.stop()
    try:
        consult_id = await record_a_consult(s3_server, people)
        await eventually(lambda: len(listed(s3_server, consult_id)) == 4, within=30)
        recordings = listed(s3_server, consult_id)
        kept = {p.name: p.read_bytes() for p in outbox_files(s3_server)}
        assert len(kept) == 4
        for rec in recordings:  # the finished files are whole and hashed while they wait
            name = next(n for n in kept if n.startswith(rec["id"]))
            assert hashlib.sha256(kept[name]).hexdigest() == rec["sha256"]
        # While they wait, this process plays them from its own copy.
        video = next(r for r in recordings if r["kind"] == "video")
        doctor = s3_server.token("doctor.a")
        grant = s3_server.request(
            "POST", f"/api/recordings/{video['id']}/playback", {}, token=doctor
        )
        status, _h, body = fetch(s3_server, grant.body["url"], {"Range": "bytes=0-99"})
        assert status == 206 and len(body) == 100
        # Two more retries (every second) meet the outage too: the warning is still one line.
        failed = 'teleconsult_recording_failures_total{reason="upload"}'
        met_already = scrape(s3_server)[failed]
        await eventually(lambda: scrape(s3_server)[failed] >= met_already + 2, within=30)
        warnings = [
            line
            for line in s3_server.log_path.read_text().splitlines()
            if "recording bucket" in line and "unreachable" in line
        ]
        assert len(warnings) == 1, warnings  # logged once, not once per retry
        down = scrape(s3_server)
        assert down["teleconsult_recording_uploads_waiting"] == 4
        assert down["teleconsult_recording_bucket_up"] == 0
        assert down['teleconsult_recording_failures_total{reason="upload"}'] >= 1
    finally:
        s3.start()

    await eventually(lambda: outbox_files(s3_server) == [], within=30)
    for rec in recordings:
        ext = "webm" if rec["container"] == "webm" else "mkv"
        data = stored_object(s3, f"{consult_id}/{rec['id']}.{ext}")
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
        assert decoded_frames(data, tmp_path / f"{rec['id']}.{ext}") > 0
    assert "reachable again" in s3_server.log_path.read_text()
    up = scrape(s3_server)
    assert up["teleconsult_recording_uploads_waiting"] == 0
    assert up["teleconsult_recording_bucket_up"] == 1
    uploaded_before = down.get("teleconsult_recording_tracks_uploaded_total", 0)
    assert up["teleconsult_recording_tracks_uploaded_total"] == uploaded_before + 4

    # Now in the bucket only: with the bucket down, playback says so clearly, no bytes.
    s3.stop()
    try:
        status, headers, body = fetch(s3_server, grant.body["url"], {"Range": "bytes=0-99"})
        assert status == 503, body
        assert headers["Content-Type"].startswith("application/json")
        assert b"recording_storage_unavailable" in body
    finally:
        s3.start()
    status, _h, body = fetch(s3_server, grant.body["url"], {"Range": "bytes=0-99"})
    assert status == 206 and body == stored_object(s3, f"{consult_id}/{video['id']}.webm")[:100]


async def test_a_recording_cut_by_sigkill_is_recovered_into_the_bucket_at_the_next_start(
    s3: S3Server, s3_server: RunningServer, people: list[RelayParticipant], tmp_path: Path
) -> None:
    consult_id, _specialist = await recording_consult(s3_server, people)
    s3_server.kill()
    for person in people:
        await person.close()
    people.clear()
    s3_server.launch()

    recordings = listed(s3_server, consult_id)
    assert {(r["kind"], r["recovered"]) for r in recordings} == {
        ("video", True),
        ("audio", True),
    }
    for rec in recordings:
        ext = "webm" if rec["container"] == "webm" else "mkv"
        data = stored_object(s3, f"{consult_id}/{rec['id']}.{ext}")
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
        assert decoded_frames(data, tmp_path / f"{rec['id']}.{ext}") > 0
    assert outbox_files(s3_server) == []
    assert not list((s3_server.data_dir / "media").glob("partial/*.part"))


def test_a_bucket_that_does_not_answer_is_unavailable_not_missing(
    s3: S3Server, tmp_path: Path
) -> None:
    config = bucket_of(s3).config
    dead = Bucket(
        BucketConfig(
            endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
            bucket=config.bucket,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            timeout_seconds=1,
        )
    )
    with pytest.raises(RecordingStorageUnavailable):
        dead.size("c1/r1.webm")
    wrong_key = Bucket(
        BucketConfig(
            endpoint=s3.endpoint,
            bucket=config.bucket,
            access_key=ACCESS_KEY,
            secret_key="not-the-secret-key",
        )
    )
    with pytest.raises(RecordingStorageUnavailable, match=r"AccessDenied|SignatureDoesNotMatch"):
        wrong_key.size("c1/r1.webm")
