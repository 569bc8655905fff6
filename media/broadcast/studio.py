"""Where a lecturer's media arrives: a relay per live training, tapped by the HLS packagers.

The lecturer publishes to the training's own `ConsultRelay` (the consults' relay transports:
ICE, DTLS, SRTP, NACK, PLI), negotiated in H.264 (constrained baseline, packetization-mode 1)
whatever `RELAY_VIDEO_CODEC` the consults use, so that the broadcast is a stream copy: the
relay hands the tap each RTP packet, `FrameAssembler` makes access units of them, and
`HlsPackager` muxes them into fMP4 as they are. Nobody subscribes on the relay: viewers fetch
HTTP. The tap asks the lecturer's browser for a key frame once per segment (a PLI through the
relay) and after a loss.

Camera and shared screen (`second`) are packaged as two streams, `camera` and `screen`
(`rooms.training.broadcast.STREAMS`). The microphone goes into the camera stream as Opus, by
stream copy too, on the camera's timeline (both streams' first packets' arrival times tie
their RTP clocks together: on a LAN that is within a few milliseconds).

The trainee the lecturer brings on stage (`rooms.training.stage`) publishes to the same relay
as `stage-<id>`: the relay offers the lecturer their tracks and them the lecturer's
(`offer_stage`, delivered by signaling as `stage-offer`), and the tap packages their camera
and microphone the same way as a third stream, `stage`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiortc.rtp import RtpPacket

from media.broadcast.hls import HlsPackager
from media.broadcast.registry import Broadcasts
from media.node import refusals
from media.recording.bitstream import h264_parameter_sets, h264_sps_dimensions
from media.recording.frames import FrameAssembler, H264Depacketizer, OpusDepacketizer
from media.relay import ConsultRelay, PublishedTrack, RelayConfig
from media.relay.room import SendOffer
from rooms.consults.errors import MediaRefused

log = logging.getLogger(__name__)

REORDER_WINDOW_S = 0.3
"""How long an incomplete frame is waited for (a NACKed packet's retransmission)."""

AUDIO_REORDER_WINDOW_S = 0.1
"""Browsers do not retransmit audio; this only absorbs reordering."""

OPUS_FRAME = 960
"""20 ms at 48 kHz: what WebRTC's Opus sends per packet."""

STREAM_OF_SOURCE = {"camera": "camera", "second": "screen"}

LECTURER_PEER = "lecturer"
STAGE_PEER = "stage"
"""The on-stage trainee's participant id on the relay is `stage-<user id>`."""


class _StreamIngest:
    """One video track of the lecturer into one stream's packager."""

    def __init__(
        self,
        training_id: str,
        stream: str,
        track: PublishedTrack,
        relay: ConsultRelay,
        broadcasts: Broadcasts,
        with_audio: Callable[[], bool] = lambda: False,
    ) -> None:
        self.training_id = training_id
        self.stream = stream
        self.track = track
        self.relay = relay
        self.broadcasts = broadcasts
        self.assembler = FrameAssembler(H264Depacketizer(), track.clock_rate, REORDER_WINDOW_S)
        self.packager: HlsPackager | None = None
        self.parameter_sets: tuple[bytes, bytes] | None = None
        self.waiting_for_keyframe = True
        self.frames = 0
        self.with_audio = with_audio
        self.began: tuple[int, float] | None = None
        """(RTP timestamp, monotonic arrival) of the first frame packaged: the timeline the
        microphone's packets are put on."""
        relay.request_keyframe(track.key)

    def push(self, packet: RtpPacket) -> None:
        for frame in self.assembler.push(packet):
            if frame.after_loss and not frame.keyframe:
                self.waiting_for_keyframe = True
                self.relay.request_keyframe(self.track.key)
            if self.waiting_for_keyframe and not frame.keyframe:
                continue
            data = self._with_parameter_sets(frame.data) if frame.keyframe else frame.data
            if data is None:
                self.relay.request_keyframe(self.track.key)
                continue
            self.waiting_for_keyframe = False
            packager = self.packager or self._start()
            if packager is None:
                continue
            if self.began is None:
                self.began = (frame.timestamp, time.monotonic())
            packager.add(data, frame.timestamp, frame.keyframe)
            self.frames += 1
            if packager.wants_keyframe(frame.timestamp):
                self.relay.request_keyframe(self.track.key)

    def _with_parameter_sets(self, access_unit: bytes) -> bytes | None:
        sps, pps = h264_parameter_sets(access_unit)
        if sps is not None and pps is not None:
            self.parameter_sets = (sps, pps)
            return access_unit
        if self.parameter_sets is None:
            return None
        start = b"\x00\x00\x00\x01"
        return start + self.parameter_sets[0] + start + self.parameter_sets[1] + access_unit

    def _start(self) -> HlsPackager | None:
        assert self.parameter_sets is not None
        try:
            size = h264_sps_dimensions(self.parameter_sets[0])
        except ValueError:
            return None
        self.packager = self.broadcasts.start(
            self.training_id, self.stream, size, asyncio.get_running_loop(), self.with_audio()
        )
        log.info("training %s: %s stream %dx%d", self.training_id, self.stream, *size)
        return self.packager

    def close(self) -> None:
        if self.packager is not None:
            self.packager.close()
            self.broadcasts.forget(self.training_id, self.stream)
            self.packager = None


class _AudioIngest:
    """The lecturer's microphone into the camera stream (Opus, as it arrives)."""

    def __init__(self, track: PublishedTrack) -> None:
        self.assembler = FrameAssembler(
            OpusDepacketizer(), track.clock_rate, AUDIO_REORDER_WINDOW_S
        )
        self.began: tuple[int, float] | None = None
        self.last_pts = -1

    def push(self, packet: RtpPacket, camera: _StreamIngest | None) -> None:
        frames = self.assembler.push(packet)
        if camera is None or camera.packager is None or camera.began is None:
            return
        video_ts, video_arrival = camera.began
        for frame in frames:
            if self.began is None:
                self.began = (frame.timestamp, time.monotonic())
            audio_ts, audio_arrival = self.began
            seconds = (audio_arrival - video_arrival) + (frame.timestamp - audio_ts) / 48_000
            pts = round(video_ts * 48_000 / 90_000 + seconds * 48_000)
            if pts <= self.last_pts:
                continue
            self.last_pts = pts
            camera.packager.add_audio(frame.data, pts, OPUS_FRAME)


def _stream_of(track: PublishedTrack) -> str | None:
    """Which stream a video track feeds: the lecturer's camera and screen, the on-stage
    trainee's camera (`stage`)."""
    if track.participant_id.startswith(STAGE_PEER + "-"):
        return "stage" if track.source == "camera" else None
    return STREAM_OF_SOURCE.get(track.source)


class _BroadcastTap:
    """The relay's tap (`media.relay.TrackTap`): each video track to its stream, each
    microphone into its participant's camera stream (the lecturer's `camera`, the trainee's
    `stage`)."""

    def __init__(self, training_id: str, relay: ConsultRelay, broadcasts: Broadcasts) -> None:
        self.training_id = training_id
        self.relay = relay
        self.broadcasts = broadcasts
        self.ingests: dict[str, _StreamIngest] = {}
        self.microphones: dict[str, tuple[str, _AudioIngest]] = {}
        """Microphone track key → (its participant, its ingest)."""

    def _camera_of(self, participant_id: str) -> _StreamIngest | None:
        return next(
            (
                i
                for i in self.ingests.values()
                if i.track.participant_id == participant_id and i.stream in ("camera", "stage")
            ),
            None,
        )

    def _has_microphone(self, participant_id: str) -> bool:
        return any(who == participant_id for who, _ in self.microphones.values())

    def track_added(self, track: PublishedTrack) -> None:
        if track.source == "microphone" and track.codec == "opus":
            self.microphones[track.key] = (track.participant_id, _AudioIngest(track))
            return
        stream = _stream_of(track)
        if stream is None or track.codec != "H264":
            return
        # Whether the camera stream carries the sound is settled when its first key frame
        # comes: the relay announces an offer's tracks one by one, the microphone after it.
        who = track.participant_id
        with_audio = (lambda: self._has_microphone(who)) if stream in ("camera", "stage") else None
        self.ingests[track.key] = _StreamIngest(
            self.training_id,
            stream,
            track,
            self.relay,
            self.broadcasts,
            with_audio or (lambda: False),
        )

    def rtp(self, track_key: str, packet: RtpPacket) -> None:
        ingest = self.ingests.get(track_key)
        if ingest is not None:
            ingest.push(packet)
            return
        microphone = self.microphones.get(track_key)
        if microphone is not None:
            microphone[1].push(packet, self._camera_of(microphone[0]))

    def track_removed(self, track_key: str) -> None:
        if self.microphones.pop(track_key, None) is not None:
            return
        ingest = self.ingests.pop(track_key, None)
        if ingest is not None:
            ingest.close()

    def close(self) -> None:
        for key in list(self.ingests):
            self.track_removed(key)


StageOffer = Callable[[str, int, str, dict[str, str]], Awaitable[None]]
"""(training_id, user_id, offer_sdp, mid → source): deliver the relay's offer of the other
side's media to the lecturer's or the on-stage trainee's page (`stage-offer`)."""


async def _nowhere(_training_id: str, _user_id: int, _sdp: str, _sources: dict[str, str]) -> None:
    """No page to offer to (a studio without signaling: the tests of the packaging)."""


class TrainingStudio:
    """`rooms.training.ports.BroadcastStudio` in this process."""

    def __init__(self, config: RelayConfig, broadcasts: Broadcasts) -> None:
        self.config = replace(config, video_codec="H264")
        self.broadcasts = broadcasts
        self._relays: dict[str, tuple[ConsultRelay, _BroadcastTap]] = {}
        self.offer_stage: StageOffer = _nowhere
        """Where the relay's offers to the lecturer and the on-stage trainee go (signaling)."""

    def _send_offer(self, training_id: str) -> SendOffer:
        async def send(participant_id: str, sdp: str, tracks: dict[str, PublishedTrack]) -> None:
            _kind, _, user = participant_id.partition("-")
            sources = {mid: track.source for mid, track in tracks.items()}
            await self.offer_stage(training_id, int(user), sdp, sources)

        return send

    async def publish(
        self, training_id: str, lecturer_id: int, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        found = self._relays.get(training_id)
        if found is None:
            relay = ConsultRelay(
                f"training-{training_id}", self.config, self._send_offer(training_id)
            )
            tap = _BroadcastTap(training_id, relay, self.broadcasts)
            relay.add_tap(tap)
            found = self._relays[training_id] = (relay, tap)
        relay, _tap = found
        with refusals():
            return await relay.publish(f"{LECTURER_PEER}-{lecturer_id}", offer_sdp, sources)

    async def stage_publish(
        self, training_id: str, trainee_id: int, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        found = self._relays.get(training_id)
        if found is None:
            raise MediaRefused("the lecturer is not presenting: nothing to go on stage with")
        relay, _tap = found
        with refusals():
            return await relay.publish(f"{STAGE_PEER}-{trainee_id}", offer_sdp, sources)

    async def stage_answer(
        self, training_id: str, user_id: int, lecturer: bool, answer_sdp: str
    ) -> None:
        found = self._relays.get(training_id)
        if found is None:
            raise MediaRefused("the training's relay is gone")
        participant = f"{LECTURER_PEER if lecturer else STAGE_PEER}-{user_id}"
        with refusals():
            await found[0].subscriber_answer(participant, answer_sdp)

    async def stage_off(self, training_id: str, trainee_id: int) -> None:
        found = self._relays.get(training_id)
        if found is not None:
            await found[0].remove(f"{STAGE_PEER}-{trainee_id}")

    async def end(self, training_id: str) -> None:
        found = self._relays.pop(training_id, None)
        if found is None:
            return
        relay, tap = found
        tap.close()
        await relay.close()

    async def close(self) -> None:
        for training_id in list(self._relays):
            await self.end(training_id)
