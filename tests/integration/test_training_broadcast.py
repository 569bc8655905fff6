"""The lecturer's broadcast end to end without a browser: a real aiortc peer publishes camera,
microphone and screen in H.264 to a real server over WebRTC (REST offer/answer, loopback, no
ICE servers); the server packages camera and screen by stream copy; a trainee fetches the HLS
under the signed URL and every segment decodes with PyAV; the end makes the replay."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import av
import pytest
import pytest_asyncio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from tests.support.hls_check import decode, parse_playlist
from tests.support.inprocess import InProcessServer

H = timedelta(hours=1)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600", "ICE_SERVERS": "[]"})
    await running.start()
    yield running
    await running.cleanup()


async def scheduled(server: InProcessServer) -> dict[str, Any]:
    now = server.clock.now
    _, county_a = await server.request("GET", "/api/me", token=await server.token("doctor.a"))
    status, made = await server.request(
        "POST",
        "/api/trainings",
        {
            "title": "Postpartum haemorrhage",
            "lecturer_ids": [await server.user_id("obstetrician")],
            "starts_at": now.isoformat(),
            "ends_at": (now + H).isoformat(),
            "audience": {"kind": "subtree", "institution_ids": [county_a["institution_id"]]},
        },
        token=await server.token("admin"),
    )
    assert status == 201, made
    return dict(made)


async def offer_of(pc: RTCPeerConnection) -> tuple[str, dict[str, str]]:
    named = [
        (pc.addTransceiver(VideoStreamTrack(), direction="sendonly"), "camera"),
        (pc.addTransceiver(AudioStreamTrack(), direction="sendonly"), "microphone"),
        (pc.addTransceiver(VideoStreamTrack(), direction="sendonly"), "second"),
    ]
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before it returns
    return pc.localDescription.sdp, {t.mid: source for t, source in named}


async def fetch(server: InProcessServer, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as reply:
        return reply.status, await reply.read()


async def first_playlist(server: InProcessServer, url: str, within_s: float = 30) -> str:
    """The playlist once the stream's first part exists (polled: nothing to block on before)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        status, body = await fetch(server, url)
        if status == 200:
            return body.decode()
        assert asyncio.get_running_loop().time() < deadline, f"{url}: still {status}"
        await asyncio.sleep(0.2)


async def test_a_lecturer_broadcasts_and_a_trainee_plays_camera_and_screen(
    server: InProcessServer,
) -> None:
    training = await scheduled(server)
    path = f"/api/trainings/{training['id']}/broadcast"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        sdp, sources = await offer_of(pc)
        body = {"description": {"type": "offer", "sdp": sdp}, "sources": sources}
        # somebody who is not its lecturer may not publish
        status, refused = await server.request(
            "POST", path, body, token=await server.token("paediatrician")
        )
        assert (status, refused["code"]) == (404, "not_found")  # not even visible to them
        status, refused = await server.request(
            "POST", path, body, token=await server.token("doctor.a")
        )
        assert (status, refused["code"]) == (403, "forbidden")
        status, answer = await server.request(
            "POST", path, body, token=await server.token("obstetrician")
        )
        assert status == 200, answer
        assert "H264" in answer["description"]["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["description"]["sdp"], "answer"))
        status, now = await server.request(
            "GET", f"/api/trainings/{training['id']}", token=await server.token("doctor.a")
        )
        assert now["status"] == "live"  # publishing started it
        status, admission = await server.request(
            "POST",
            f"/api/trainings/{training['id']}/admission",
            token=await server.token("doctor.a"),
        )
        assert status == 200
        prefix = admission["viewer_url"]
        for stream in ("camera", "screen"):
            url = f"{prefix}{stream}/live.m3u8"
            live = parse_playlist(await first_playlist(server, url))
            # LL-HLS blocking reloads, as hls.js does: each answered once the next segment is
            # whole (within three target durations)
            for _ in range(6):
                if len(live.segments) >= 3:
                    break
                status, text = await fetch(server, f"{url}?_HLS_msn={len(live.segments)}")
                assert status == 200
                live = parse_playlist(text.decode())
            assert len(live.segments) >= 3
            status, init = await fetch(server, f"{prefix}{stream}/init.mp4")
            assert status == 200
            media = [
                (await fetch(server, f"{prefix}{stream}/{uri}"))[1] for _, uri in live.segments
            ]
            frames = decode(init, *media)
            assert frames[0].key_frame
            with av.open(io.BytesIO(init + b"".join(media))) as container:
                codecs = [s.codec_context.name for s in container.streams]
                sound = sum(1 for _ in container.decode(audio=0)) if "opus" in codecs else 0
            # the microphone travels with the camera, as Opus (20 ms packets)
            assert codecs == (["h264", "opus"] if stream == "camera" else ["h264"])
            if stream == "camera":
                assert sound >= len(live.segments) * 2 * 50 * 0.8
            assert (frames[0].width, frames[0].height) == (640, 480)
            assert len(frames) >= 3 * 30 * 0.8  # about 30 fps of whole segments
    finally:
        await pc.close()
    status, ended = await server.request(
        "POST", f"/api/trainings/{training['id']}/end", token=await server.token("obstetrician")
    )
    assert (status, ended["status"]) == (200, "ended")
    status, admission = await server.request(
        "POST", f"/api/trainings/{training['id']}/admission", token=await server.token("doctor.a")
    )
    assert admission["playlist"] == "vod.m3u8"
    status, replay = await fetch(server, f"{admission['viewer_url']}camera/vod.m3u8")
    vod = parse_playlist(replay.decode())
    assert vod.ended and vod.playlist_type == "VOD" and len(vod.segments) >= 3


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"description": {"type": "offer", "sdp": "v=0\r\nnonsense"}, "sources": {}},
            400,
            "invalid_sdp",
        ),
        (
            {"description": {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}, "sources": {}},
            413,
            "sdp_too_large",
        ),
        ({"description": {"type": "answer", "sdp": "v=0"}, "sources": {}}, 422, "invalid_payload"),
        (
            {
                "description": {"type": "offer", "sdp": "v=0"},
                "sources": {"0": "camera", "1": "camera"},
            },
            422,
            "invalid_payload",
        ),
        (
            {"description": {"type": "offer", "sdp": "v=0"}, "sources": {"0": "slides"}},
            422,
            "invalid_payload",
        ),
    ],
)
async def test_a_bad_publish_offer_is_refused(
    server: InProcessServer, body: dict[str, Any], status: int, code: str
) -> None:
    training = await scheduled(server)
    got, reply = await server.request(
        "POST",
        f"/api/trainings/{training['id']}/broadcast",
        body,
        token=await server.token("obstetrician"),
    )
    assert (got, reply["code"]) == (status, code), reply
    assert reply["message"]
