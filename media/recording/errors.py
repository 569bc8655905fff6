"""What can go wrong when recording a track, as types the media node can act on."""

from __future__ import annotations

import errno


class RecordingError(Exception):
    """Base of the recorder's errors."""


class UnsupportedTrack(RecordingError):
    """A codec, kind or clock rate the recorder cannot stream-copy into a container."""


class EmptyRecording(RecordingError):
    """`finish()` on a track that never wrote a frame (no packet, or no key frame came)."""


class NothingDecodable(RecordingError):
    """A partial file without a single readable frame: quarantined, not finalized."""


class RecordingFailed(RecordingError):
    """The partial file could not be written (disk full, permissions); see the cause."""


def is_storage_full(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the disk saying "no space left" (ENOSPC, or EDQUOT:
    a quota is a full disk for this process). PyAV's errors carry the errno too."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__
    return False
