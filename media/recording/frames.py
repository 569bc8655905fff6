"""Encoded frames from RTP packets: reorder, reassemble, and give up on what cannot be completed.

Packets arrive as the relay got them: out of order, duplicated, some lost for good and some
repaired late by a retransmission. `FrameAssembler` groups them by RTP timestamp (one frame per
timestamp), knows a frame is whole when it holds every sequence number from the packet that
starts it (codec-specific: VP8's S bit with partition 0, an H.264 access unit's first NAL unit)
to the one with the marker bit, and hands frames out strictly in timestamp order, each exactly
once. A frame still incomplete when the stream has moved `reorder_window_s` past it is given up;
so is a gap in sequence numbers between two frames (a frame lost whole). The frame handed out
next says so (`after_loss`), so that the recorder can wait for a key frame.

The codec-specific part (`Depacketizer`) uses aiortc's payload descriptors (RFC 7741 for VP8,
RFC 6184 for H.264), which strip the RTP payload header and give the codec's own bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import RtpPacket

from media.recording.bitstream import (
    NAL_IDR,
    h264_rtp_nal_types,
    h264_rtp_starts_access_unit,
    vp8_is_keyframe,
)

MAX_PENDING_PACKETS = 2048
"""Packets held while waiting for missing ones; past this the oldest frame is given up.
About 10 s of a 720p stream: only reached if timestamps stop advancing."""


class Unpacked(NamedTuple):
    data: bytes
    """The codec bytes this packet contributes to its frame."""
    starts_frame: bool
    keyframe: bool
    """This packet shows its frame is a key frame."""


class Depacketizer(Protocol):
    one_packet_frames: bool
    """Every packet is a whole frame (audio); the marker bit means something else there."""

    def unpack(self, payload: bytes) -> Unpacked:
        """Raises ValueError for a malformed payload."""
        ...


class Vp8Depacketizer:
    one_packet_frames = False

    def unpack(self, payload: bytes) -> Unpacked:
        descriptor, data = VpxPayloadDescriptor.parse(payload)
        starts = bool(descriptor.partition_start) and descriptor.partition_id == 0
        return Unpacked(data, starts, starts and vp8_is_keyframe(data))


class H264Depacketizer:
    one_packet_frames = False

    def unpack(self, payload: bytes) -> Unpacked:
        _descriptor, data = H264PayloadDescriptor.parse(payload)  # Annex B bytes
        return Unpacked(
            data,
            h264_rtp_starts_access_unit(payload),
            NAL_IDR in h264_rtp_nal_types(payload),
        )


class OpusDepacketizer:
    one_packet_frames = True

    def unpack(self, payload: bytes) -> Unpacked:
        return Unpacked(payload, True, True)


DEPACKETIZERS: dict[str, type[Vp8Depacketizer | H264Depacketizer | OpusDepacketizer]] = {
    "VP8": Vp8Depacketizer,
    "H264": H264Depacketizer,
    "opus": OpusDepacketizer,
}


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    timestamp: int
    """RTP timestamp, unwrapped, counted from the stream's first packet."""
    data: bytes
    keyframe: bool
    after_loss: bool
    """Frames were lost between the previous frame handed out and this one."""


@dataclass(slots=True)
class _PendingFrame:
    parts: dict[int, bytes] = field(default_factory=dict)
    """Codec bytes by extended sequence number."""
    first_seq: int | None = None
    last_seq: int | None = None
    keyframe: bool = False


class FrameAssembler:
    """Whole encoded frames, in order, from the RTP packets of one stream (one SSRC)."""

    def __init__(
        self, depacketizer: Depacketizer, clock_rate: int, reorder_window_s: float
    ) -> None:
        self._depacketizer = depacketizer
        self._one_packet_frames = depacketizer.one_packet_frames
        self._keyframes_reset = not depacketizer.one_packet_frames
        """Video: nothing after a key frame refers to what came before it, so a whole key frame
        need not wait for older frames. (Every audio frame is "key", and yet worth waiting for.)"""
        self._window = round(reorder_window_s * clock_rate)
        self._frames: dict[int, _PendingFrame] = {}
        self._pending_packets = 0
        self._highest_seq = -1
        self._last_ts = 0
        self._first_ts = 0
        self._newest_ts = 0
        self._done_ts = -1
        """Timestamp of the last frame handed out or given up: anything at or before it is late."""
        self._done_last_seq: int | None = None
        """Sequence number that ended that frame, when known: the next frame starts right after."""
        self._fillers: set[int] = set()
        """Sequence numbers of padding-only packets: part of no frame, but not a gap either."""
        self._lost = False
        self.frames_lost = 0
        """Frames given up as incomplete, plus sequence gaps where a frame went missing whole."""
        self.packets_late = 0
        """Packets that came after their frame was handed out or given up, or twice."""
        self.packets_malformed = 0

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        """Take one packet; the frames it made ready (usually none or one)."""
        seq, ts = self._extend(packet.sequence_number, packet.timestamp)
        if not packet.payload:
            # Padding-only (bandwidth probing): takes a sequence number, carries no media.
            if seq > (self._done_last_seq if self._done_last_seq is not None else -1):
                self._fillers.add(seq)
            return []
        if ts <= self._done_ts:
            self.packets_late += 1
            return []
        frame = self._frames.get(ts)
        if frame is not None and seq in frame.parts:
            self.packets_late += 1
            return []
        try:
            data, starts, keyframe = self._depacketizer.unpack(packet.payload)
        except ValueError:
            self.packets_malformed += 1
            return []
        if frame is None:
            frame = self._frames[ts] = _PendingFrame()
        frame.parts[seq] = data
        self._pending_packets += 1
        if starts and (frame.first_seq is None or seq < frame.first_seq):
            # H.264: a parameter set packet and the first slice both begin the access unit.
            frame.first_seq = seq
        if keyframe:
            frame.keyframe = True
        if self._one_packet_frames or packet.marker:
            frame.last_seq = seq
        if ts > self._newest_ts:
            self._newest_ts = ts
        if (
            self._keyframes_reset
            and frame.keyframe
            and len(self._frames) > 1
            and self._is_whole(frame)
        ):
            # A whole key frame needs nothing before it: stop waiting for older frames.
            for older in [t for t in self._frames if t < ts]:
                self._give_up(older)
        return self._drain()

    def flush(self) -> list[EncodedFrame]:
        """At the end of the stream: the frames still waiting that are whole, in order."""
        out: list[EncodedFrame] = []
        while self._frames:
            head_ts = min(self._frames)
            if self._is_whole(self._frames[head_ts]):
                out.append(self._hand_out(head_ts))
            else:
                self._give_up(head_ts)
        return out

    def _extend(self, seq16: int, ts32: int) -> tuple[int, int]:
        """Unwrap 16-bit sequence numbers and 32-bit timestamps into ever-growing integers."""
        if self._highest_seq < 0:
            self._highest_seq = seq16
            self._last_ts = self._first_ts = self._newest_ts = ts32
            self._done_ts = ts32 - 1
            return seq16, ts32
        delta = (seq16 - self._highest_seq) & 0xFFFF
        seq = self._highest_seq + (delta - 0x10000 if delta >= 0x8000 else delta)
        if seq > self._highest_seq:
            self._highest_seq = seq
        delta = (ts32 - self._last_ts) & 0xFFFFFFFF
        ts = self._last_ts + (delta - 0x100000000 if delta >= 0x80000000 else delta)
        self._last_ts = ts
        return seq, ts

    def _is_whole(self, frame: _PendingFrame) -> bool:
        first, last = frame.first_seq, frame.last_seq
        after_previous = None if self._done_last_seq is None else self._done_last_seq + 1
        if first is None and after_previous in frame.parts:
            # The packet right after the previous frame's last one starts this frame.
            first = after_previous
        if first is None or last is None:
            return False
        parts = frame.parts
        return last - first + 1 == len(parts) and min(parts) == first and max(parts) == last

    def _follows_previous(self, frame: _PendingFrame) -> bool:
        """No sequence gap between the previous frame and this (whole) one."""
        if self._done_last_seq is None:
            return True
        first = min(frame.parts)
        return all(s in self._fillers for s in range(self._done_last_seq + 1, first))

    def _drain(self) -> list[EncodedFrame]:
        out: list[EncodedFrame] = []
        while self._frames:
            head_ts = min(self._frames)
            head = self._frames[head_ts]
            overdue = (
                self._newest_ts - head_ts > self._window
                or self._pending_packets > MAX_PENDING_PACKETS
            )
            if self._is_whole(head):
                if (head.keyframe and self._keyframes_reset) or self._follows_previous(head):
                    out.append(self._hand_out(head_ts))
                    continue
                if overdue:  # a frame went missing whole before this one
                    self._lost = True
                    self.frames_lost += 1
                    out.append(self._hand_out(head_ts))
                    continue
            elif overdue:
                self._give_up(head_ts)
                continue
            break
        return out

    def _hand_out(self, ts: int) -> EncodedFrame:
        frame = self._frames.pop(ts)
        self._pending_packets -= len(frame.parts)
        parts = frame.parts
        data = b"".join(parts[s] for s in sorted(parts))
        out = EncodedFrame(ts - self._first_ts, data, frame.keyframe, self._lost)
        self._lost = False
        self._finish(ts, max(parts))
        return out

    def _give_up(self, ts: int) -> None:
        frame = self._frames.pop(ts)
        self._pending_packets -= len(frame.parts)
        self._lost = True
        self.frames_lost += 1
        self._finish(ts, frame.last_seq)

    def _finish(self, ts: int, last_seq: int | None) -> None:
        self._done_ts = ts
        self._done_last_seq = last_seq
        if self._fillers:
            floor = last_seq if last_seq is not None else self._highest_seq
            self._fillers = {s for s in self._fillers if s > floor}
