"""The relay process: the project's forwarding relay, aiortc's transcoding `MediaRelay`, or Janus.

The parent calls `publish` with a publisher's offer (the relay answers) and learns of
subscribe offers through "offer" events (the relay offers, the subscriber answers, the parent
brings the answer back with `subscriber_answer`), the way signaling and browsers do it.

mode "forward": one `media.relay` consult relay per consult, forwarding encoded media; the
recorder (`media.recording`) can be attached to every forwarded track as a tap.

mode "transcode": what aiortc's public API gives: one peer per publisher receives (and
decodes) the track, `aiortc.contrib.media.MediaRelay().subscribe(track, buffered=False)` hands
the decoded frames to one peer per subscriber, whose `RTCRtpSender` re-encodes them with
aiortc's VP8 encoder (500 kbit/s to start, then following the subscriber's REMB up to
1.5 Mbit/s). `buffered=False` keeps only the newest frame per subscriber: with the default
queue an encoder that falls behind would queue decoded 720p frames (1.4 MB each) without bound.

mode "janus": the anchor, a Janus VideoRoom that this process starts and drives (janus.py);
the CPU measured is then Janus's process, not this one.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay

from bench.relay_parts.channel import Channel
from bench.relay_parts.peers import video_codecs_vp8


class TranscodingRelays:
    """aiortc's decode → MediaRelay → re-encode path, for the baseline figures."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.media_relay = MediaRelay()
        self.publish_pcs: dict[str, RTCPeerConnection] = {}
        self.subscribe_pcs: dict[str, RTCPeerConnection] = {}
        self.sources: dict[str, MediaStreamTrack] = {}

    @staticmethod
    def _pc() -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def publish(self, consult: str, participant: str, sdp: str) -> str:
        pc = self.publish_pcs[participant] = self._pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                self.sources[participant] = transceiver.receiver.track
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def subscribe(self, consult: str, participant: str, source: str) -> None:
        pc = self.subscribe_pcs[participant] = self._pc()
        track = self.media_relay.subscribe(self.sources[source], buffered=False)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(video_codecs_vp8())
        await pc.setLocalDescription(await pc.createOffer())
        self.channel.event(
            "offer",
            {"consult": consult, "participant": participant, "sdp": pc.localDescription.sdp},
        )

    async def subscriber_answer(self, consult: str, participant: str, sdp: str) -> None:
        pc = self.subscribe_pcs[participant]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def stats(self) -> dict[str, Any]:
        """aiortc's own statistics, summed: what the relay received and (re-encoded) sent."""
        counters = {"packets_in": 0, "packets_lost_in": 0, "packets_out": 0, "bytes_out": 0}
        for pc in self.subscribe_pcs.values():
            for sender in pc.getSenders():
                for stat in (await sender.getStats()).values():
                    if getattr(stat, "type", "") == "outbound-rtp":
                        counters["packets_out"] += stat.packetsSent
                        counters["bytes_out"] += stat.bytesSent
        for pc in self.publish_pcs.values():
            for receiver in pc.getReceivers():
                for stat in (await receiver.getStats()).values():
                    if getattr(stat, "type", "") == "inbound-rtp":
                        counters["packets_in"] += stat.packetsReceived
                        counters["packets_lost_in"] += stat.packetsLost
        info = {"publishers": len(self.publish_pcs), "subscribers": len(self.subscribe_pcs)}
        return {"counters": counters, "info": info}

    async def close(self) -> None:
        pcs = [*self.subscribe_pcs.values(), *self.publish_pcs.values()]
        await asyncio.gather(
            *(asyncio.wait_for(pc.close(), 10) for pc in pcs), return_exceptions=True
        )


class RelayHost:
    """What the relay process offers the parent; the mode picks the implementation.

    mode "forward": the project's relay; "transcode": aiortc's MediaRelay; "janus": a Janus
    VideoRoom started by this process (janus.py), the anchor.
    """

    def __init__(self, channel: Channel, options: dict[str, Any]) -> None:
        self.mode = str(options["mode"])
        self.impl: Any
        if self.mode == "forward":
            # Imported here: the transcoding baseline needs no project code at all.
            from bench.relay_parts.forwarding import ForwardingRelays

            self.impl = ForwardingRelays(channel, options)
        elif self.mode == "transcode":
            self.impl = TranscodingRelays(channel)
        elif self.mode == "janus":
            from bench.relay_parts.janus import JanusRelays

            self.impl = JanusRelays(channel, options)
        else:
            raise ValueError(f"unknown relay mode {self.mode!r}")

    async def measured_process(self) -> dict[str, Any]:
        """The process whose CPU is the relay's: this one, or Janus (started now)."""
        if self.mode == "janus":
            measured: dict[str, Any] = await self.impl.measured_process()
            return measured
        return {"pid": os.getpid(), "name": "python"}

    async def cpu_clock(self) -> dict[str, float]:
        """CPU time of the measured process (all threads) and this process's monotonic clock."""
        if self.mode == "janus":
            clock: dict[str, float] = await self.impl.cpu_clock()
            return clock
        return {"process_s": time.process_time(), "monotonic": time.monotonic()}

    async def publish(self, consult: str, participant: str, sdp: str) -> str:
        answer: str = await self.impl.publish(consult, participant, sdp)
        return answer

    async def subscribe(self, consult: str, participant: str, source: str) -> None:
        """`participant` receives `source`'s media (joins the consult as a viewer)."""
        await self.impl.subscribe(consult, participant, source)

    async def subscriber_answer(self, consult: str, participant: str, sdp: str) -> None:
        await self.impl.subscriber_answer(consult, participant, sdp)

    async def start_recording(self, directory: str) -> dict[str, Any]:
        if self.mode != "forward":
            raise RuntimeError("only the forwarding relay records")
        started: dict[str, Any] = await self.impl.start_recording(directory)
        return started

    async def stop_recording(self) -> dict[str, Any]:
        if self.mode != "forward":
            raise RuntimeError("only the forwarding relay records")
        stopped: dict[str, Any] = await self.impl.stop_recording()
        return stopped

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.impl.stats()
        return {"t": time.time(), "pid": os.getpid(), **stats}

    async def stop(self) -> dict[str, Any]:
        final = await self.stats()
        if self.mode == "janus":
            final["janus_log_problems"] = self.impl.log_problems()[:20]
        await self.impl.close()
        return final
