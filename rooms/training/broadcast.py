"""What a training's broadcast serves, as the edge sees it (`media.broadcast` makes it).

The names are the broadcast's own and nothing else (`FILE_NAME`): no path, no temporary file,
no leading zeros; anything else is never looked up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

FILE_NAME = re.compile(
    r"^(init(-[1-9][0-9]{0,8})?\.mp4|live\.m3u8|vod\.m3u8"
    r"|s(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,3}))?\.m4s)$"
)
"""The only names a broadcast serves: `init.mp4` (`init-N.mp4`: the initialization section of
a later run of the stream, beginning at segment N), the playlists, segments `sN.m4s` and their
low-latency parts `sN.P.m4s`."""

TRAINING_ID = re.compile(r"^[0-9a-f]{32}$")

STREAMS = ("camera", "screen", "stage")
"""A broadcast's renditions, each its own HLS stream by stream copy: the lecturer's camera and,
when shared, the screen (slides). Two pictures, not one composed: composing would decode and
re-encode (a transcode per training, and softer slides); two streams cost the player one more
playlist and keep each picture exactly as the lecturer's browser encoded it. `stage`: the
trainee the lecturer brought on stage, camera and voice (Opus), while they are there."""


@dataclass(frozen=True, slots=True)
class BroadcastFile:
    data: bytes
    etag: str
    """A strong validator: `"<sha256 prefix>"` of the bytes."""
    immutable: bool
    """Never changes once it exists (segments, parts, init): cacheable for a year."""
    live: bool = False
    """A playlist of a broadcast still running (changes every part)."""


class TooFarAhead(ValueError):
    """A blocking playlist request for a segment more than two ahead of the last one."""


class BroadcastReader(Protocol):
    async def read(self, training_id: str, stream: str, name: str) -> BroadcastFile | None:
        """The file, or None; `stream` must be one of `STREAMS` and `name` match `FILE_NAME`."""
        ...

    async def streams(self, training_id: str) -> dict[str, str]:
        """Which of the training's `STREAMS` can be played now: `live` (a part exists) or
        `replay` (its replay playlist is on disk); a stream not begun is absent."""
        ...

    async def wait_for(self, training_id: str, stream: str, msn: int, part: int | None) -> None:
        """Return once segment `msn` (its part `part`) of the live broadcast exists, after
        three target durations at most, or at once when nothing is live. `TooFarAhead` for a
        segment more than two ahead of the last."""
        ...
