"""The project's forwarding relay (media.relay) and its recorder (media.recording), hosted.

One `ConsultRelay` per consult, configured as `teleconsult serve` would be on loopback
(`RelayConfig(address="127.0.0.1")`, no ICE servers, VP8). A publisher publishes its one video
m-section as `camera`; a subscriber `join`s its consult and is offered the tracks present
(through `send_offer`, passed on to the parent as an "offer" event).

Recording taps every consult relay with `RecorderTap`, which does what
`media.consult_recorder.ConsultRecorder` does per track (a `TrackRecorder` fed from the tap,
keyframe requests through the relay) without the database ledger: the cost measured is the
recorder's, on the relay's event loop and in its executor threads. `stop_recording` finishes
every file (remux, hash, rename into a `LocalRecordingStorage` in a temporary directory) and
reports sizes and timings.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from bench.relay_parts.channel import Channel
from media.recording import TrackRecorder
from media.relay import ConsultRelay, PublishedTrack, RelayConfig
from media.storage import LocalRecordingStorage

SUMMED_ELSEWHERE = ("subscribers", "remb_min")
"""Per-track stats that are not counters."""


class RecorderTap:
    """A relay tap recording every track of one consult (no ledger, no consent: all of them)."""

    def __init__(self, consult: str, relay: ConsultRelay, storage: LocalRecordingStorage) -> None:
        self.consult = consult
        self.relay = relay
        self.storage = storage
        self.started_at = datetime.now(UTC)
        self.recorders: dict[str, TrackRecorder] = {}
        self.finished: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.finishing: set[asyncio.Task[None]] = set()
        self.loop_cpu_s = 0.0

    def track_added(self, track: PublishedTrack) -> None:
        if track.key in self.recorders:
            return
        key = track.key
        recording_id = f"{self.consult}-{track.participant_id}-{track.source}"
        self.recorders[key] = TrackRecorder(
            partial_dir=self.storage.partial_dir,
            recording_id=recording_id,
            kind=track.kind,
            codec=track.codec,
            clock_rate=track.clock_rate,
            metadata={
                "consult_id": self.consult,
                "participant": track.participant_id,
                "source": track.source,
            },
            request_keyframe=lambda: self.relay.request_keyframe(key),
            storage=self.storage,
            session_started_at=self.started_at,
        )

    def rtp(self, track_key: str, packet: RtpPacket) -> None:
        recorder = self.recorders.get(track_key)
        if recorder is not None:
            # CPU of the relay's event-loop thread spent in the recorder (the part of its cost
            # that delays forwarding); its executor work (sidecar, fsync) is not in here.
            started = time.thread_time()
            recorder.add_rtp(packet)
            self.loop_cpu_s += time.thread_time() - started

    def track_removed(self, track_key: str) -> None:
        recorder = self.recorders.pop(track_key, None)
        if recorder is not None:
            task = asyncio.ensure_future(self._finish(recorder))
            self.finishing.add(task)
            task.add_done_callback(self.finishing.discard)

    async def _finish(self, recorder: TrackRecorder) -> None:
        try:
            done = await recorder.finish()
        except Exception as exc:
            self.errors.append(f"{recorder.recording_id}: {exc!r}"[:300])
            return
        self.finished.append(
            {"bytes": done.bytes, "frames": done.frames, "duration_s": done.duration_s}
        )

    async def finish(self) -> None:
        """Stop recording: finish every file."""
        self.relay.remove_tap(self)
        recorders, self.recorders = list(self.recorders.values()), {}
        await asyncio.gather(*(self._finish(r) for r in recorders), *self.finishing)


class ForwardingRelays:
    """The consult relays of the relay process, by consult id."""

    def __init__(self, channel: Channel, options: dict[str, Any]) -> None:
        self.channel = channel
        self.config = RelayConfig(address="127.0.0.1", ice_servers=[], video_codec="VP8")
        self.relays: dict[str, ConsultRelay] = {}
        self.taps: list[RecorderTap] = []
        self.offers = 0
        self.recorder_loop_cpu_s = 0.0
        """CPU seconds of finished taps' recorders on the event loop (see RecorderTap.rtp)."""

    def _relay(self, consult: str) -> ConsultRelay:
        relay = self.relays.get(consult)
        if relay is None:

            async def send_offer(
                participant: str, sdp: str, tracks: dict[str, PublishedTrack]
            ) -> None:
                self.offers += 1
                self.channel.event(
                    "offer", {"consult": consult, "participant": participant, "sdp": sdp}
                )

            relay = self.relays[consult] = ConsultRelay(consult, self.config, send_offer)
        return relay

    async def publish(self, consult: str, participant: str, sdp: str) -> str:
        description = SessionDescription.parse(sdp)
        names = {"video": "camera", "audio": "microphone"}
        sources = {m.rtp.muxId: names[m.kind] for m in description.media if m.kind in names}
        return await self._relay(consult).publish(participant, sdp, sources)

    async def subscribe(self, consult: str, participant: str, source: str) -> None:
        # The relay offers every participant everyone else's tracks: joining is enough.
        await self._relay(consult).join(participant)

    async def subscriber_answer(self, consult: str, participant: str, sdp: str) -> None:
        await self._relay(consult).subscriber_answer(participant, sdp)

    async def start_recording(self, directory: str) -> dict[str, Any]:
        storage = LocalRecordingStorage(Path(directory))
        for consult, relay in self.relays.items():
            tap = RecorderTap(consult, relay, storage)
            relay.add_tap(tap)
            self.taps.append(tap)
        return {"tracks": sum(len(t.recorders) for t in self.taps)}

    async def stop_recording(self) -> dict[str, Any]:
        started = time.perf_counter()
        taps, self.taps = self.taps, []
        await asyncio.gather(*(tap.finish() for tap in taps))
        self.recorder_loop_cpu_s += sum(tap.loop_cpu_s for tap in taps)
        finished = [f for tap in taps for f in tap.finished]
        return {
            "files": len(finished),
            "bytes": sum(f["bytes"] for f in finished),
            "frames": sum(f["frames"] for f in finished),
            "duration_s": [round(f["duration_s"], 2) for f in finished],
            "finish_s": round(time.perf_counter() - started, 3),
            "errors": [e for tap in taps for e in tap.errors],
        }

    async def stats(self) -> dict[str, Any]:
        """Counters summed over every track of every consult (see TrackFanout.stats)."""
        sums: dict[str, float] = {}
        tracks = 0
        remb: list[int] = []
        for relay in self.relays.values():
            stats = relay.stats()
            sums["tap_errors"] = sums.get("tap_errors", 0) + int(stats.get("tap_errors", 0))
            for track in stats.get("tracks", {}).values():
                tracks += 1
                if isinstance(track.get("remb_min"), int):
                    remb.append(track["remb_min"])
                for key, value in track.items():
                    if key not in SUMMED_ELSEWHERE and isinstance(value, int):
                        sums[key] = sums.get(key, 0) + value
        counters = {
            "packets_in": sums.pop("packets_received", 0),
            "bytes_in": sums.pop("bytes_received", 0),
            "packets_out": sums.pop("packets_forwarded", 0),
            "bytes_out": sums.pop("bytes_forwarded", 0),
            **sums,
            "recorder_loop_cpu_s": self.recorder_loop_cpu_s
            + sum(tap.loop_cpu_s for tap in self.taps),
        }
        info = {
            "consults": len(self.relays),
            "tracks": tracks,
            "subscribe_offers": self.offers,
            "remb_min_bps": min(remb, default=None),
        }
        return {"counters": counters, "info": info}

    async def close(self) -> None:
        for tap in self.taps:
            await tap.finish()
        await asyncio.gather(*(relay.close() for relay in self.relays.values()))
