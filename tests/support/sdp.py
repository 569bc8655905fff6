"""The smallest SDP `signaling/sdp.py` accepts: one VP8 video section, for tests that need a
valid offer rather than a browser's."""

from __future__ import annotations


def video_sdp(*, pad: int = 0, bundle: bool = False) -> str:
    """One `m=video` section; `pad` adds an `a=x-pad:` line of that many characters (a large
    offer), `bundle` an `a=group:BUNDLE 0` line."""
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    if bundle:
        lines.append("a=group:BUNDLE 0")
    lines += ["m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0"]
    lines.append("a=rtpmap:96 VP8/90000")
    if pad:
        lines.append("a=x-pad:" + "x" * pad)
    return "\r\n".join([*lines, ""])
