"""Recording by stream copy: each received track, as it was encoded, into its own file.

What it does
    The relay hands a `TrackRecorder` every RTP packet of one track (RTX already unwrapped) in
    the event loop thread. The recorder reassembles encoded frames and muxes them unchanged with
    PyAV: VP8 -> WebM, Opus -> WebM (audio only), H.264 -> Matroska. Nothing is decoded or
    encoded, so a recorded 720p stream costs a fraction of a percent of a core. Playback puts
    the per-track files side by side; `FinishedTrack.started_offset_s` places each on the
    session's timeline.

From packets to frames (`frames.FrameAssembler`)
    One frame per RTP timestamp; a frame is whole when every sequence number from its first
    packet (VP8: S bit and partition 0; H.264: the NAL unit that begins an access unit) to its
    marker packet is there. Frames leave strictly in timestamp order. A frame still incomplete
    when the stream is `VIDEO_REORDER_WINDOW_S` (0.4 s) past it is dropped (retransmissions
    come within a round trip); so is a sequence gap where a frame vanished whole. Duplicates and
    late packets are ignored, padding-only packets are not gaps, sequence numbers and
    timestamps are unwrapped. Timestamps in the file are RTP timestamps counted from the
    track's first packet. An SSRC change (or timestamps that jump back for good) starts a new
    stream, placed on the file's timeline by the wall clock.

Key frames
    Video is written from its first key frame on; a key frame is requested (the
    `request_keyframe` callback, a PLI upstream) on the first packet and again after any lost
    frame, at most once per second while one is awaited. After a loss the recorder skips to the
    next key frame rather than write frames that decode as smeared garbage: a frozen picture is
    the honest one in a medical record (it is also what the browsers in the call showed).
    VP8's picture size comes from its key frame header; H.264's from the SPS, and its SPS/PPS
    go in-band with the first IDR (kept and re-inserted if a later IDR lacks them), from which
    PyAV builds the Matroska CodecPrivate (avcC).

Crash safety (`container.LIVE_MUXER_OPTIONS`)
    While recording, the file is ``<partial_dir>/<recording_id>.<ext>.part``, beside its
    sidecar ``<recording_id>.json`` (consult, participant, source, kind, codec, container,
    clock rate, wall-clock start, start offset), written atomically (temp file, fsync, rename,
    fsync of the folder) before the first media byte. The muxer runs in live mode (append
    only: any prefix of the file is a valid file), closes a cluster every 500 ms of media or
    64 KiB, and flushes to the OS after each packet (``flush_packets``): a SIGKILL loses at most
    the open cluster, under a second even while a frame is waited for. The file is also fsynced
    at most once a second, in the executor, so that a power cut loses about as much.

Finalizing (`finalize.finalize_track`)
    `TrackRecorder.finish` closes the muxer, then, in the executor: remux (stream copy) into a
    staging file beside the final place, which rebuilds the index (Cues) and duration; SHA-256
    and size; fsync; atomic rename to ``<consult_id>/<recording_id>.<webm|mkv>`` in the
    `RecordingStorage`; only then the partial file and sidecar are removed. The final remux is
    bit-exact, so finalizing the same partial file twice gives the same hash.

Recovery (`finalize.recover`)
    At start-up, each leftover ``.part`` with its sidecar is finalized the same way (the remux
    keeps everything readable and stops at the torn last cluster) and marked ``recovered``.
    A ``.part`` without a sidecar, or without one readable frame, and a sidecar whose track
    wrote no media, are moved to ``<partial_dir>/quarantine/`` with a warning: recording files
    are never deleted. Running it twice does nothing more.
"""

from media.recording.errors import (
    EmptyRecording,
    NothingDecodable,
    RecordingError,
    RecordingFailed,
    UnsupportedTrack,
    is_storage_full,
)
from media.recording.finalize import recover, recover_blocking
from media.recording.model import FORMATS, FinishedTrack
from media.recording.recorder import TrackRecorder

__all__ = [
    "FORMATS",
    "EmptyRecording",
    "FinishedTrack",
    "NothingDecodable",
    "RecordingError",
    "RecordingFailed",
    "TrackRecorder",
    "UnsupportedTrack",
    "is_storage_full",
    "recover",
    "recover_blocking",
]
