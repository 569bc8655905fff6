"""A structural check of session descriptions before they are relayed to another participant.

The server does not interpret SDP in peer-to-peer mode, but it refuses to forward text that no
browser would accept, so a broken or hostile client gets `invalid_sdp` instead of breaking the
other participant's page.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"^[a-z]=[\x20-\x7e\t]*$")
_REQUIRED_ORDER = ("v=", "o=", "s=")


class SdpProblem(ValueError):
    pass


class SdpTooLarge(SdpProblem):
    pass


def utf8_size(text: str) -> int:
    """`text`'s size in UTF-8 without failing on a lone surrogate (counted as 3 bytes, as
    "surrogatepass" encodes it); ASCII text, the usual case, is measured without encoding."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_PLAINLY_VALID = re.compile(
    r"v=0\r?\no=[\x20-\x7e\t]*\r?\ns=[\x20-\x7e\t]*(?:\r?\n[a-z]=[\x20-\x7e\t]*)+(?:\r?\n)*"
)
"""Every check of `_explain` but the media section's, over the whole text in one scan in C:
`v=0`, `o=`, `s=` and at least one more line, each `<letter>=<printable ASCII or tab>`, lines
ended by CRLF or LF. Only a match counts; anything else goes to `_explain`, which names the
problem."""


def check_sdp(sdp: str, max_bytes: int) -> None:
    """Raise `SdpProblem` unless `sdp` is a plausible RFC 8866 session description."""
    if utf8_size(sdp) > max_bytes:
        raise SdpTooLarge(f"session description is larger than {max_bytes} bytes")
    if "\nm=" in sdp and _PLAINLY_VALID.fullmatch(sdp) is not None:
        return  # a relayed offer is ~100 lines: no regular expression per line on this path
    _explain(sdp.replace("\r\n", "\n").rstrip("\n"))


def _explain(text: str) -> None:
    """Raise `SdpProblem` for the first problem of `text` (line breaks normalized to LF)."""
    # A lone surrogate (JSON "\ud800") is no line of SDP: the line check below refuses it.
    lines = text.split("\n")
    if len(lines) < 4:
        raise SdpProblem("session description is too short")
    for expected, line in zip(_REQUIRED_ORDER, lines, strict=False):
        if not line.startswith(expected):
            raise SdpProblem(f"session description must begin with v=, o=, s= (got {line[:20]!r})")
    if lines[0] != "v=0":
        raise SdpProblem("unsupported SDP version")
    for number, line in enumerate(lines, start=1):
        if not _LINE.match(line):
            raise SdpProblem(f"line {number} is not a valid SDP line")
    if not any(line.startswith("m=") for line in lines):
        raise SdpProblem("session description has no media section")


def check_candidate(candidate: str, max_bytes: int) -> None:
    if utf8_size(candidate) > max_bytes:
        raise SdpProblem(f"ICE candidate is larger than {max_bytes} bytes")
    if _lone_surrogate(candidate):
        raise SdpProblem("ICE candidate is not valid Unicode (a lone surrogate)")
    if candidate and not candidate.startswith("candidate:"):
        raise SdpProblem("ICE candidate must start with 'candidate:'")
    if any(ch in candidate for ch in "\r\n"):
        raise SdpProblem("ICE candidate must be a single line")
