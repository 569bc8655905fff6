"""A consult participant on the relay: socket.io + a publish and a subscribe aiortc connection.

It speaks the relay protocol of docs/protocol.md exactly as the web client does: it offers its
own tracks on the publish connection (`relay-publish`, candidates trickled with
`relay-candidate`), answers the server's `relay-offer` on the subscribe connection, and counts
the frames it decodes per (peer, source) using the offer's `tracks` map.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from tests.support.peer import split_candidates


@dataclass
class RelayParticipant:
    name: str
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    peer_id: str = ""
    consult_id: str = ""
    join_ack: dict[str, Any] = field(default_factory=dict)
    publish_pc: RTCPeerConnection | None = None
    subscribe_pc: RTCPeerConnection | None = None
    frames: dict[tuple[str, str], int] = field(default_factory=dict)
    """(peer_id, source) → frames decoded."""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The latest `relay-offer` tracks map: mid → {peer_id, user, source, kind}."""
    direct_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    """How this participant answers `p2p-check` about a direct link to a peer id: `{state,
    generation}`; a peer not listed is answered `failed` at generation 0."""
    republish_on_restart: bool = True
    """On `relay-restart`, publish again on fresh connections, as the web client does."""
    published: tuple[MediaStreamTrack | None, MediaStreamTrack | None] | None = None
    """What the last `publish` sent (video, second), to send again after a relay restart."""
    restarted_at: list[float] = field(default_factory=list)
    """`time.monotonic()` of each `relay-restart` received."""
    publish_answer: dict[str, Any] = field(default_factory=dict)
    """The server's ack of the last `relay-publish`."""
    _offers: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in (
            "peer-joined",
            "peer-left",
            "consult-state",
            "media-path",
            "recording-consent-requested",
            "recording-state",
            "replaced",
            "removed-from-consult",
            "session-ended",
        ):
            self.sio.on(name, self._recorder(name))
        self.sio.on("relay-offer", self._on_offer)
        self.sio.on("relay-restart", self._on_relay_restart)
        self.sio.on("p2p-check", self._on_p2p_check)

    async def _on_p2p_check(self, data: dict[str, Any]) -> dict[str, Any]:
        self.events.append(("p2p-check", data))
        return self.direct_links.get(data["peer_id"], {"state": "failed", "generation": 0})

    async def report_p2p_failed(self, peer_id: str, generation: int = 0) -> dict[str, Any]:
        """Say the direct link to `peer_id` failed (`p2p-failed`); the server's ack."""
        return await self.call(
            "p2p-failed",
            {"consult_id": self.consult_id, "peer_id": peer_id, "generation": generation},
        )

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.events.append((name, data))

        return record

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    async def connect(self, url: str, token: str) -> None:
        await self.sio.connect(url, auth={"token": token}, transports=["websocket"])
        self._tasks.append(asyncio.create_task(self._offer_loop()))

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, payload, timeout=20)
        return reply

    async def join(self, consult_id: str) -> dict[str, Any]:
        reply = await self.call("join", {"consult_id": consult_id})
        assert reply.get("ok"), reply
        self.peer_id, self.consult_id, self.join_ack = reply["peer_id"], consult_id, reply
        return reply

    # ---- publishing ---------------------------------------------------------------------------

    async def publish(
        self, video: MediaStreamTrack | None = None, second: MediaStreamTrack | None = None
    ) -> dict[str, Any]:
        """Offer camera + microphone (and a second source) on the publish connection."""
        self.published = (video, second)
        pc = self.publish_pc = self.publish_pc or RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        named: list[tuple[Any, str]] = [
            (pc.addTransceiver(video or VideoStreamTrack(), direction="sendonly"), "camera"),
            (pc.addTransceiver(AudioStreamTrack(), direction="sendonly"), "microphone"),
        ]
        if second is not None:
            named.append((pc.addTransceiver(second, direction="sendonly"), "second"))
        await pc.setLocalDescription(await pc.createOffer())
        sdp, candidates = split_candidates(pc.localDescription.sdp)
        sources = {t.mid: source for t, source in named}
        reply = await self.call(
            "relay-publish",
            {
                "consult_id": self.consult_id,
                "description": {"type": "offer", "sdp": sdp},
                "sources": sources,
            },
        )
        assert reply.get("ok"), reply
        self.publish_answer = reply
        await pc.setRemoteDescription(
            RTCSessionDescription(reply["description"]["sdp"], reply["description"]["type"])
        )
        for mid, mline, line in candidates:
            sent = await self.call(
                "relay-candidate",
                {
                    "consult_id": self.consult_id,
                    "leg": "publish",
                    "candidate": {"candidate": line, "sdpMid": mid, "sdpMLineIndex": mline},
                },
            )
            assert sent == {"ok": True}, sent
        return reply

    async def _on_relay_restart(self, data: dict[str, Any]) -> None:
        self.events.append(("relay-restart", data))
        self.restarted_at.append(time.monotonic())
        if self.republish_on_restart:
            self._tasks.append(asyncio.create_task(self.republish()))

    async def republish(self) -> dict[str, Any] | None:
        """Drop both relay connections and publish again (the subscribe connection is made
        afresh by the next `relay-offer`); the frame counts start again from zero.

        The counts are reset before the old connections are closed (closing yields to the
        loop): a test waiting for frames after a relay restart must not see those counted
        before it."""
        old = (self.publish_pc, self.subscribe_pc)
        self.publish_pc = self.subscribe_pc = None
        self.frames = {}
        for pc in old:
            if pc is not None:
                await pc.close()
        self.frames = {}  # and none a closing connection counted meanwhile
        if self.published is None:
            return None
        video, second = self.published
        return await self.publish(video, second)

    # ---- subscribing --------------------------------------------------------------------------

    async def _on_offer(self, data: dict[str, Any]) -> None:
        await self._offers.put(data)

    async def _offer_loop(self) -> None:
        while True:
            data = await self._offers.get()
            self.events.append(("relay-offer", data))
            self.tracks = data["tracks"]
            if self.subscribe_pc is None:
                pc = self.subscribe_pc = RTCPeerConnection(
                    RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
                )

                @pc.on("track")
                def on_track(track: MediaStreamTrack, pc: RTCPeerConnection = pc) -> None:
                    mid = next(
                        (t.mid for t in pc.getTransceivers() if t.receiver.track is track), None
                    )
                    self._tasks.append(asyncio.create_task(self._count(mid, track)))

            pc = self.subscribe_pc
            desc = data["description"]
            await pc.setRemoteDescription(RTCSessionDescription(desc["sdp"], desc["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
            reply = await self.call(
                "relay-answer",
                {
                    "consult_id": self.consult_id,
                    "description": {"type": "answer", "sdp": pc.localDescription.sdp},
                },
            )
            assert reply == {"ok": True}, reply

    async def _count(self, mid: str | None, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                info = self.tracks.get(mid or "")
                if info is not None:
                    key = (info["peer_id"], info["source"])
                    self.frames[key] = self.frames.get(key, 0) + 1

    def frames_from(self, other: RelayParticipant, source: str) -> int:
        return self.frames.get((other.peer_id, source), 0)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def relay_person_in(
    people: list[Any],
    url: str,
    token: str,
    username: str,
    consult_id: str | None,
    *,
    also_recorded: tuple[str, ...] = (),
) -> RelayParticipant:
    """A relay participant connected as `username` (added to `people`, which the test's fixture
    closes) and, with `consult_id`, joined; `also_recorded`: server events it records besides
    its own."""
    person = RelayParticipant(username)
    for event in also_recorded:
        person.sio.on(event, person._recorder(event))
    people.append(person)
    await person.connect(url, token)
    if consult_id is not None:
        await person.join(consult_id)
    return person
