"""A consult participant in Python: a python-socketio client with a real aiortc peer connection.

Candidates are stripped from the session descriptions and trickled as separate `signal` events,
so a test that gets media flowing proves the server relays offers, answers and candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from aiortc.sdp import candidate_from_sdp

from media.network import announce_only

# aioice leaves 127.0.0.1 out of host candidates; every test peer announces only loopback.
announce_only(["127.0.0.1"])


def split_candidates(sdp: str) -> tuple[str, list[tuple[str, int, str]]]:
    """The SDP without candidate lines, and the candidates as (mid, mline index, line)."""
    kept: list[str] = []
    found: list[tuple[str, int, str]] = []
    mline, mid = -1, ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline += 1
            mid = str(mline)
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            found.append((mid, mline, line[len("a=") :]))
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", found


@dataclass
class Participant:
    """One participant: connect, join a consult, call the others, count frames received."""

    name: str
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    peer_id: str = ""
    consult_id: str = ""
    pcs: dict[str, RTCPeerConnection] = field(default_factory=dict)
    video_frames: dict[str, int] = field(default_factory=dict)
    audio_frames: dict[str, int] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connect_error: Any = None
    _signals: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in (
            "peer-joined",
            "peer-left",
            "consult-state",
            "consult-requested",
            "request-closed",
        ):
            self.sio.on(name, self._recorder(name))
        self.sio.on("signal", self._on_signal)
        self.sio.on("connect_error", self._on_connect_error)

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.events.append((name, data))

        return record

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def _on_signal(self, data: dict[str, Any]) -> None:
        # Handled one at a time, in order: a candidate must not overtake its description.
        await self._signals.put(data)

    async def connect(self, url: str, token: str | None) -> None:
        auth = {"token": token} if token is not None else None
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
        self._tasks.append(asyncio.create_task(self._signal_loop()))

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, payload, timeout=10)
        return reply

    async def join(self, consult_id: str) -> dict[str, Any]:
        reply = await self.call("join", {"consult_id": consult_id})
        if reply.get("ok"):
            self.peer_id, self.consult_id = reply["peer_id"], consult_id
        return reply

    def _pc(self, remote: str) -> RTCPeerConnection:
        if remote not in self.pcs:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())
            self.video_frames[remote] = self.audio_frames[remote] = 0

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._tasks.append(asyncio.create_task(self._count(remote, track)))

            self.pcs[remote] = pc
        return self.pcs[remote]

    async def _count(self, remote: str, track: MediaStreamTrack) -> None:
        counts = self.video_frames if track.kind == "video" else self.audio_frames
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                counts[remote] += 1

    async def _send_description(self, remote: str, pc: RTCPeerConnection) -> None:
        sdp, candidates = split_candidates(pc.localDescription.sdp)
        base = {"consult_id": self.consult_id, "to": remote}
        reply = await self.call(
            "signal", {**base, "description": {"type": pc.localDescription.type, "sdp": sdp}}
        )
        assert reply == {"ok": True}, reply
        for mid, mline, line in candidates:
            reply = await self.call(
                "signal",
                {**base, "candidate": {"candidate": line, "sdpMid": mid, "sdpMLineIndex": mline}},
            )
            assert reply == {"ok": True}, reply
        reply = await self.call("signal", {**base, "end_of_candidates": True})
        assert reply == {"ok": True}, reply

    async def offer_to(self, remote: str) -> None:
        pc = self._pc(remote)
        await pc.setLocalDescription(await pc.createOffer())
        await self._send_description(remote, pc)

    async def _signal_loop(self) -> None:
        while True:
            data = await self._signals.get()
            remote = data["from"]
            pc = self._pc(remote)
            if "description" in data:
                desc = data["description"]
                await pc.setRemoteDescription(RTCSessionDescription(desc["sdp"], desc["type"]))
                if desc["type"] == "offer":
                    await pc.setLocalDescription(await pc.createAnswer())
                    await self._send_description(remote, pc)
            elif "candidate" in data:
                c = data["candidate"]
                candidate = candidate_from_sdp(c["candidate"].removeprefix("candidate:"))
                candidate.sdpMid, candidate.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
                await pc.addIceCandidate(candidate)
            elif data.get("end_of_candidates"):
                await pc.addIceCandidate(None)

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pc in self.pcs.values():
            await pc.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def eventually(predicate: Any, within: float = 20.0, interval: float = 0.1) -> None:
    """Wait until `predicate()` is true; fail the test with a clear message otherwise."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[Any]], within: float = 20.0, interval: float = 0.1
) -> Any:
    """Wait until `await check()` is truthy (e.g. an HTTP answer); its value, or fail the test
    with the last value seen."""
    deadline = asyncio.get_running_loop().time() + within
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {value!r}")
        await asyncio.sleep(interval)
    return value
