"""Encoded frames into WebM/Matroska with PyAV, as they are (no decoding, no encoding).

While recording, a track is written to its partial file by FFmpeg's Matroska muxer in *live*
mode (`LIVE_MUXER_OPTIONS`), so that whatever prefix of the file exists when the process is
killed is a readable file missing at most the last half second. On stop (or at start-up after a
crash) `remux` copies the packets into a fresh, seekable file, which is where the index (Cues),
the duration and the SeekHead are written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

from media.recording.errors import NothingDecodable

log = logging.getLogger(__name__)

CLUSTER_TIME_LIMIT_MS = 500
"""The muxer keeps the current cluster in memory and writes it whole when the next packet is
past this much media time: a SIGKILL loses at most this (plus one frame). Below a second so
that the loss stays under one second even when the reorder wait is added."""

CLUSTER_SIZE_LIMIT_BYTES = 64 * 1024
"""Same, by size: bounds the memory held per track, about 0.25 s of a 2 Mbit/s 720p stream."""

LIVE_MUXER_OPTIONS: dict[str, str] = {
    # Append-only output: no SeekHead/Cues/Duration placeholders that the trailer would seek
    # back to patch (a kill in the middle of that patching could tear the header), no cue
    # points piling up in memory. Every prefix of the file is a valid file. The index is
    # rebuilt by `remux` when the file is finalized.
    "live": "1",
    "cluster_time_limit": str(CLUSTER_TIME_LIMIT_MS),
    "cluster_size_limit": str(CLUSTER_SIZE_LIMIT_BYTES),
    # Flush FFmpeg's I/O buffer (32 KiB+) to the OS after every muxed packet: a finished
    # cluster reaches the kernel at once rather than when the buffer happens to fill.
    "flush_packets": "1",
}

FINAL_MUXER_OPTIONS: dict[str, str] = {
    # No random UIDs or library version in the output: finalizing the same partial file twice
    # (a crash between the rename and the clean-up) gives the same bytes, so the same SHA-256.
    "fflags": "+bitexact",
}

OPUS_SAMPLE_RATE = 48000


class LiveTrackFile:
    """One track being muxed into its partial file. Not thread-safe: one thread at a time."""

    def __init__(
        self,
        path: Path,
        container: str,
        codec: str,
        clock_rate: int,
        size: tuple[int, int] | None = None,
    ) -> None:
        self._time_base = Fraction(1, clock_rate)
        self._output = av.open(
            str(path), mode="w", format=container, container_options=LIVE_MUXER_OPTIONS
        )
        try:
            self._stream = self._add_stream(codec, size)
        except BaseException:
            self._output.close()
            raise

    def _add_stream(self, codec: str, size: tuple[int, int] | None) -> av.stream.Stream:
        if codec == "opus":
            # WebM requires Opus's identification header (OpusHead) as the track's CodecPrivate,
            # and a mux-only stream has no way to set it. A libopus encoder context makes exactly
            # that header when the file header is written (48 kHz, stereo as WebRTC signals it,
            # pre-skip 312: libopus's look-ahead, which the sending browser's libopus has too).
            # The encoder itself is never fed.
            return self._output.add_stream("libopus", rate=OPUS_SAMPLE_RATE)
        if size is None:
            raise ValueError(f"{codec} needs the picture size for its track header")
        # H.264: Matroska wants its parameter sets as CodecPrivate (avcC). PyAV extracts them
        # from the first packet (which the recorder makes an IDR carrying SPS/PPS in-band) and
        # the muxer then converts every Annex B packet to length-prefixed NAL units.
        name = {"VP8": "vp8", "H264": "h264"}[codec]
        return self._output.add_mux_stream(name, width=size[0], height=size[1])

    def write(self, data: bytes, pts: int, keyframe: bool) -> None:
        """Mux one encoded frame; `pts` is in units of the RTP clock."""
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        self._output.mux(packet)

    def close(self) -> None:
        self._output.close()


@dataclass(frozen=True, slots=True)
class RemuxResult:
    frames: int
    duration_s: float
    """From file time 0 to the end of the last frame."""
    damaged: bool
    """The source ended in damaged or truncated data (a crash's cut); all before it was kept."""


def remux(source: Path, target: Path, container: str) -> RemuxResult:
    """Copy every readable packet of `source`'s first stream into a new, indexed `target`.

    Blocking; run it in a thread. Raises `NothingDecodable` if `source` is not a media file
    or has no packet (then `target` is not left behind).
    """
    try:
        src = av.open(str(source), mode="r")
    except (av.FFmpegError, OSError) as e:
        raise NothingDecodable(f"{source.name}: {e}") from None
    try:
        if not src.streams:
            raise NothingDecodable(f"{source.name}: no stream")
        return _copy(src, src.streams[0], target, container)
    finally:
        src.close()


def _copy(
    src: av.container.InputContainer, stream: av.stream.Stream, target: Path, container: str
) -> RemuxResult:
    frames = 0
    damaged = False
    end = 0.0
    first_pts = last_pts = None
    dst = av.open(str(target), mode="w", format=container, container_options=FINAL_MUXER_OPTIONS)
    try:
        out = dst.add_stream_from_template(stream)
        try:
            for packet in src.demux(stream):
                if packet.pts is None or packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                tb = packet.time_base
                start = float(packet.pts * tb)
                end = max(end, start + float(packet.duration * tb) if packet.duration else start)
                if first_pts is None:
                    first_pts = start
                last_pts = start
                packet.stream = out
                dst.mux(packet)
                frames += 1
        except av.FFmpegError as e:
            # A crash cuts the last cluster short; everything before it is whole.
            log.info("%s: stopped reading at damaged data (%s)", target.name, e)
            damaged = True
        if frames and first_pts is not None and last_pts is not None and end <= last_pts:
            # Video packets carry no duration: count the last frame as long as the average one.
            end = last_pts + ((last_pts - first_pts) / (frames - 1) if frames > 1 else 0.0)
    finally:
        try:
            dst.close()
        except av.FFmpegError:
            if frames:
                raise
    if not frames:
        target.unlink(missing_ok=True)
        raise NothingDecodable("no readable frame")
    return RemuxResult(frames=frames, duration_s=end, damaged=damaged)
