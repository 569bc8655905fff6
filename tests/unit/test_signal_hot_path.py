"""The shortcuts on a relayed signal's path judge exactly as the long way round did.

`check_sdp` checks a whole description in a few scans and names a problem line by line only when
there is one; `surely_within` spares serializing a payload to measure it when its strings alone
show it fits; `TextPacket` skips python-socketio's search for binary attachments. Each is held
here to the slow judgement it replaces.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet

from signaling.events import surely_within
from signaling.packets import TextPacket
from signaling.sdp import SdpProblem, _explain, check_sdp, utf8_size

OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
LINES = [
    "v=0",
    "o=- 1 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "a=rtpmap:96 VP8/90000",
    "a=fmtp:96\tx=1",
    "",
    "x",
    "=0",
    "A=caps",
    "a=中",
    "a=\x00",
    "a=\ud800",
    "a=cr\rinside",
    "m=",
]


def verdict(check: object, sdp: str) -> str | None:
    try:
        check(sdp)  # type: ignore[operator]
    except SdpProblem as exc:
        return str(exc)
    return None


@settings(max_examples=400, deadline=None)
@given(
    st.booleans(),
    st.lists(st.sampled_from(LINES), min_size=0, max_size=9),
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from(["", "\r\n", "\n", "\n\n"]),
)
def test_the_whole_text_check_agrees_with_the_line_by_line_one(
    header: bool, lines: list[str], newline: str, end: str
) -> None:
    """Mostly valid descriptions with a line or two broken, and some that are all broken."""
    sdp = newline.join((LINES[:3] if header else []) + lines) + end
    line_by_line = verdict(lambda s: _explain(s.replace("\r\n", "\n").rstrip("\n")), sdp)
    assert verdict(lambda s: check_sdp(s, 1 << 20), sdp) == line_by_line


def test_a_valid_offer_passes_and_a_broken_one_is_named_by_its_line() -> None:
    check_sdp(OFFER, 32 * 1024)
    broken = OFFER.replace("t=0 0", "t=0 0\x07")
    assert verdict(lambda s: check_sdp(s, 32 * 1024), broken) == "line 4 is not a valid SDP line"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.integers(min_value=0, max_value=600))
def test_a_payload_judged_within_the_limit_is_within_it_however_it_is_measured(
    value: object, limit: int
) -> None:
    if surely_within(value, limit):
        assert len(json.dumps(value)) <= limit
        assert utf8_size(json.dumps(value, ensure_ascii=False)) <= limit


def test_a_five_kilobyte_offer_is_judged_without_serializing_and_a_huge_one_is_measured() -> None:
    offer = {
        "consult_id": "0" * 32,
        "to": "peer",
        "description": {"type": "offer", "sdp": "a" * 5200},
    }
    assert surely_within(offer, 64 * 1024)
    assert not surely_within({**offer, "note": "中" * 22_000}, 64 * 1024)
    assert not surely_within({1: "not a JSON object key"}, 64 * 1024)


def test_text_packets_encode_as_python_socketio_does() -> None:
    data = ["signal", {"consult_id": "c", "from": "p", "description": {"sdp": OFFER}}]
    for kind, ack_id in ((packet.EVENT, None), (packet.ACK, 7)):
        ours = TextPacket(kind, data=data, namespace="/", id=ack_id).encode()
        assert ours == packet.Packet(kind, data=data, namespace="/", id=ack_id).encode()
