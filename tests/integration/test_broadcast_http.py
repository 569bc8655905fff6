"""A training's broadcast over HTTP on a real server: the signed viewer URL from admission,
the live and replay playlists valid, every segment decoded with PyAV, cache validators and
ranges, LL-HLS blocking reload, and forged, expired or tricky requests refused {code, message}.

The lecturer's frames come from libx264 here (tests/support/h264.py), fed to the server's own
packager as the relay's frame assembler feeds it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from multidict import CIMultiDict

from media.broadcast.hls import HlsPackager
from rooms.consults.people import Role
from signaling.passwords import hash_password
from teleconsult.bootstrap import BROADCASTS, build_repositories
from tests.support.h264 import FPS, h264_frames
from tests.support.hls_check import decode, parse_playlist
from tests.support.inprocess import InProcessServer

H = timedelta(hours=1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600"})
    await running.start()
    assert running.settings is not None
    _, me = await running.request("GET", "/api/me", token=await running.token("doctor.b"))
    repos = build_repositories(running.settings)
    try:
        await repos.consults.add_user(
            "trainee.b",
            "Trainee B",
            Role.TRAINEE,
            me["institution_id"],
            None,
            hash_password("demo-trainee.b"),
        )
    finally:
        await repos.close()
    yield running
    await running.cleanup()


async def live_training(server: InProcessServer) -> dict[str, Any]:
    now = server.clock.now
    _, county_a = await server.request("GET", "/api/me", token=await server.token("doctor.a"))
    status, made = await server.request(
        "POST",
        "/api/trainings",
        {
            "title": "Broadcast test",
            "lecturer_ids": [await server.user_id("obstetrician")],
            "starts_at": now.isoformat(),
            "ends_at": (now + H).isoformat(),
            "audience": {"kind": "subtree", "institution_ids": [county_a["institution_id"]]},
        },
        token=await server.token("admin"),
    )
    assert status == 201, made
    status, _ = await server.request(
        "POST", f"/api/trainings/{made['id']}/start", token=await server.token("obstetrician")
    )
    assert status == 200
    return dict(made)


async def admitted(server: InProcessServer, training_id: str, who: str = "doctor.a") -> str:
    """The camera stream's playlist under the signed viewer URL admission gives."""
    status, body = await server.request(
        "POST", f"/api/trainings/{training_id}/admission", token=await server.token(who)
    )
    assert status == 200, body
    return f"{body['viewer_url']}camera/{body['playlist']}"


def packager_of(server: InProcessServer, training_id: str) -> HlsPackager:
    assert server.app is not None
    return server.app[BROADCASTS].start(
        training_id, "camera", (320, 240), asyncio.get_running_loop()
    )


async def get(
    server: InProcessServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + path, headers=headers or {}) as reply,
    ):
        return reply.status, CIMultiDict(reply.headers), await reply.read()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_trainee_plays_the_live_broadcast_and_then_its_replay(
    server: InProcessServer,
) -> None:
    training = await live_training(server)
    url = await admitted(server, training["id"])
    assert url.startswith(f"/hls/{training['id']}/") and url.endswith("/live.m3u8")
    status, _, body = await get(server, url)
    assert status == 404  # nothing broadcast yet
    prefix = url.rsplit("/", 2)[0] + "/"
    status, headers, body = await get(server, prefix + "streams.json")
    assert (status, json.loads(body)) == (200, {"streams": {}})
    assert headers["Cache-Control"] == "public, max-age=1"
    packager = packager_of(server, training["id"])
    frames = list(h264_frames(9))
    for frame in frames[: 7 * FPS]:
        packager.add(*frame)
    status, _, body = await get(server, prefix + "streams.json")
    assert json.loads(body) == {"streams": {"camera": "live"}}  # no screen shared
    status, headers, body = await get(server, url)
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["Cache-Control"] == "public, max-age=1"
    live = parse_playlist(body.decode())
    assert not live.ended and live.parts
    base = url.rsplit("/", 1)[0] + "/"
    status, headers, init = await get(server, base + "init.mp4")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    media = []
    for _, uri in live.segments:
        status, headers, segment = await get(server, base + uri)
        assert (status, headers["Content-Type"]) == (200, "video/iso.segment")
        media.append(segment)
    assert len(decode(init, *media)) == len(live.segments) * 2 * FPS
    # LL-HLS: a blocking reload for the next part returns once the lecturer has sent it
    next_msn = len(packager.segments) - 1
    next_part = len(packager.segments[-1].parts)

    async def lecturer_goes_on() -> None:
        await asyncio.sleep(0.2)
        for frame in frames[7 * FPS :]:
            packager.add(*frame)

    sending = asyncio.create_task(lecturer_goes_on())
    status, _, body = await get(server, f"{url}?_HLS_msn={next_msn}&_HLS_part={next_part}")
    await sending
    assert status == 200
    assert f"s{next_msn}.{next_part}.m4s" in body.decode()
    # the end: the replay is the same segments, every one of them
    packager.close()
    assert server.app is not None
    server.app[BROADCASTS].forget(training["id"], "camera")
    status, _ = await server.request(
        "POST", f"/api/trainings/{training['id']}/end", token=await server.token("obstetrician")
    )
    assert status == 200
    replay_url = await admitted(server, training["id"])
    assert replay_url.endswith("/vod.m3u8")
    status, _, body = await get(server, replay_url.rsplit("/", 2)[0] + "/streams.json")
    assert json.loads(body) == {"streams": {"camera": "replay"}}
    status, headers, body = await get(server, replay_url)
    vod = parse_playlist(body.decode())
    assert vod.ended and vod.playlist_type == "VOD"
    assert [u for _, u in vod.segments] == [f"s{n}.m4s" for n in range(len(vod.segments))]
    base = replay_url.rsplit("/", 1)[0] + "/"
    media = [(await get(server, base + uri))[2] for _, uri in vod.segments]
    assert len(decode(init, *media)) == 9 * FPS


@pytest.mark.asyncio(loop_scope="module")
async def test_segments_answer_validators_and_byte_ranges(server: InProcessServer) -> None:
    training = await live_training(server)
    packager = packager_of(server, training["id"])
    for frame in h264_frames(5):
        packager.add(*frame)
    base = (await admitted(server, training["id"])).rsplit("/", 1)[0] + "/"
    status, headers, whole = await get(server, base + "s0.m4s")
    assert status == 200 and headers["ETag"].startswith('"')
    assert headers["Accept-Ranges"] == "bytes"
    status, _, _ = await get(server, base + "s0.m4s", {"If-None-Match": headers["ETag"]})
    assert status == 304
    status, ranged, part = await get(server, base + "s0.m4s", {"Range": "bytes=0-99"})
    assert (status, part) == (206, whole[:100])
    assert ranged["Content-Range"] == f"bytes 0-99/{len(whole)}"
    status, _, body = await get(server, base + "s0.m4s", {"Range": f"bytes={len(whole)}-"})
    assert status == 416 and b"range_not_satisfiable" in body
    packager.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_forged_expired_and_tricky_viewer_urls_are_refused(
    server: InProcessServer,
) -> None:
    training = await live_training(server)
    packager = packager_of(server, training["id"])
    for frame in h264_frames(3):
        packager.add(*frame)
    url = await admitted(server, training["id"])
    _, _, training_id, expires, signature, _, _ = url.split("/")

    async def refused(path: str, status: int, code: str) -> None:
        got, _, body = await get(server, path)
        assert got == status, (path, body)
        assert f'"code": "{code}"' in body.decode() or f'"code":"{code}"' in body.decode()

    forged = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    await refused(f"/hls/{training_id}/{expires}/{forged}/streams.json", 403, "viewer_url_invalid")
    await refused(
        f"/hls/{training_id}/{expires}/{forged}/camera/live.m3u8", 403, "viewer_url_invalid"
    )
    later = str(int(expires) + 3600)
    await refused(
        f"/hls/{training_id}/{later}/{signature}/camera/live.m3u8", 403, "viewer_url_invalid"
    )
    other = "f" * 32
    await refused(f"/hls/{other}/{expires}/{signature}/camera/live.m3u8", 403, "viewer_url_invalid")
    await refused(
        f"/hls/{training_id}/x{expires}/{signature}/camera/live.m3u8", 403, "viewer_url_invalid"
    )
    for name in ["s01.m4s", "vod.m3u8.tmp", "init.mp4.tmp", "..%2Finit.mp4", "s0.m4s%00"]:
        await refused(f"/hls/{training_id}/{expires}/{signature}/camera/{name}", 404, "not_found")
    await refused(f"/hls/{training_id}/{expires}/{signature}/camera/s999.m4s", 404, "not_found")
    await refused(f"/hls/{training_id}/{expires}/{signature}/slides/live.m3u8", 404, "not_found")
    await refused(f"/hls/{training_id}/{expires}/{signature}/screen/live.m3u8", 404, "not_found")
    # a dot-dot segment is resolved away before routing: it never reaches a broadcast
    got, _, body = await get(server, f"/hls/{training_id}/{expires}/{signature}/camera/%2e%2e")
    assert got == 404 and b"ftyp" not in body
    await refused(
        f"/hls/{training_id}/{expires}/{signature}/camera/live.m3u8?_HLS_part=1",
        400,
        "invalid_payload",
    )
    await refused(
        f"/hls/{training_id}/{expires}/{signature}/camera/live.m3u8?_HLS_msn=99",
        400,
        "invalid_payload",
    )
    await refused(
        f"/hls/{training_id}/{expires}/{signature}/camera/live.m3u8?_HLS_msn=-1",
        422,
        "invalid_payload",
    )
    # the same URL once its time is up
    server.clock.advance(timedelta(hours=2))
    try:
        await refused(url, 403, "viewer_url_expired")
    finally:
        server.clock.advance(-timedelta(hours=2))
    packager.close()
