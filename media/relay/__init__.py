"""The forwarding media relay (SFU): RTP in from each publisher, out to every subscriber, undecoded.

Design (feeds docs/media.md)
============================

Why: decoding and re-encoding 720p video in Python costs about half a core per stream; an SFU
forwards the encoded RTP packets and costs a few percent. aiortc's public API always decodes, so
the relay keeps aiortc's transports (ICE, DTLS, SRTP, RTCP routing, SDP) and replaces the two
ends of each media stream with forwarding ones. aiortc is pinned exactly (1.16.0, aioice 0.13.0)
and every private internal used is named in `_aiortc.py` and checked by
`tests/unit/test_aiortc_pin.py`.

Connections (LiveKit style): each participant has two peer connections to the relay.

- publish: the browser offers its tracks and the relay answers (no glare). Before
  `setRemoteDescription`, the relay creates one recvonly transceiver per new m-section, puts a
  `ForwardingReceiver` in it and sets the codec preference; aiortc then uses those transceivers
  for the offer's m-sections. `sources` (mid -> `camera` | `microphone` | `second`) names each
  sending m-section; the track key is `"<participant_id>/<source>"`. A renegotiated offer adds or
  removes tracks (an m-section that stops sending removes its track). A source stopped and
  started again on the same m-section is a new track on the same receiver: it follows the SSRCs
  (media, RTX) the new offer names (aiortc registers them only once), forgets the old stream's
  losses, and its subscribers' legs, reused or new, rebase on its first packet even when the
  SSRC is the old one.
- subscribe: the relay offers the other participants' tracks, one sendonly m-section each with a
  `ForwardingSender` swapped in before `createOffer` (so the SDP's a=ssrc is its own), and
  delivers the offer with `send_offer(participant_id, sdp, tracks_by_mid)`; the browser answers
  through `subscriber_answer`. One offer at a time per participant; a change while an offer is out
  is offered again once the answer is in. An m-section whose track is gone is offered inactive,
  then reused for the next track of its kind (its msid changes: `a=msid:<participant>
  <participant>~<source>`; `tracks_by_mid` is the authority). Late joiners get every track
  present in their first offer (`join(participant_id)` registers somebody who only receives;
  `publish` does it implicitly).

Packet path (no task, no queue, no decoder): as a datagram is read from the socket (up to 32 per
wake-up, `media.network`), `receive_path` decrypts it and has the publisher's DTLS transport parse
and route it at once, instead of aiortc's hand-off through an `asyncio.Queue` to the transport's
receive task (DTLS records still take that way). The packet reaches its
`ForwardingReceiver._handle_rtp_packet`, which updates the receiver statistics
(aiortc's RTCP loop keeps sending Receiver Reports), unwraps RTX, NACKs gaps upstream (video),
and awaits `TrackFanout.on_packet`: for each subscribed leg `ForwardingSender.forward` rewrites
SSRC, payload type, sequence number (own random start, constant offset: continuous, gaps
preserved), timestamp (own random origin), header extensions (the leg's mid, abs-send-time,
audio level), stores the packet in aiortc's RTP history and Sender Report counters, and sends it
with the subscriber transport's `_send_rtp` (which does not suspend for host/srflx candidates).
Then every tap (the recorder) gets the original packet. Added latency is the time of that loop.

Feedback:

- PLI/FIR from a subscriber -> a PLI to the publisher, at most one per track per 0.5 s
  (`KEYFRAME_REQUEST_INTERVAL`): a request inside that time is sent when it ends, and further
  ones until then share it. A leg that starts forwarding asks too (a late joiner needs a
  keyframe); `request_keyframe(track_key)` is the recorder's way in. Audio ignores them.
- NACK from a subscriber -> answered from the leg's RTP history by aiortc's `_retransmit` (RTX
  when negotiated); packets the relay itself lost are NACKed upstream, and the publisher's
  retransmission is forwarded on the same rewritten sequence number.
- REMB from a subscriber -> kept per leg (its share when one REMB lists several SSRCs). Each
  publisher gets one REMB: the sum over its video tracks of the lowest estimate among each
  track's subscribers (REMB caps a whole connection), sent when a subscriber's report changes
  that sum, else at most once a second. aiortc's own receive-side estimator is not fed, so it
  sends no REMB of its own for forwarded tracks. A subscriber's estimate not renewed for 4 s
  (`REMB_STALE_SECONDS`: a browser estimates only while video reaches it) is forgotten, checked
  as the publisher's video arrives; when none is left, the publisher gets one REMB of 10 Mbit/s
  (`REMB_UNCAPPED_BPS`) that lifts the last cap, and its own estimate governs.
- Sender Reports of each leg map RTP time to the publisher's NTP clock (from its Sender
  Reports), so a subscriber keeps a participant's audio and video in sync.

Codecs: every leg of a consult negotiates the same codec - Opus for audio, VP8 for video by
default or H264 constrained baseline 42e01f packetization-mode 1 (`RelayConfig.video_codec`) -
with RTX, through `setCodecPreferences` on the relay side of both connections. A publish offer
that cannot send that codec is refused.

Network: every peer connection gets an explicit ICE server list (empty by default) and
max-bundle (one ICE transport, one UDP port per connection). Host candidates are gathered on
`RelayConfig.address` inside `[port_min, port_max]` (`media.network.gathering`).

Cost (2-core VM shared with other work, 720p30 VP8 at 1.7 Mbit/s, ~179 packets/s; bench/relay.py
with Janus 1.1.2's VideoRoom in the same run, README "The media relay"): about 1 % of a core per
stream at 8 streams (58 us of CPU per delivered packet, Janus 44 us; 85 us in a busier run),
2.5 % for one stream; 0.3-0.4 ms added latency p50. The kernel (one `sendto` per packet, `epoll`,
the batched `recvfrom`s) is a large part of the relay's busy time, the rest aiortc's and the
relay's Python per packet (header parse and re-serialization, SRTP, statistics).

Not supported: simulcast/SVC layers (one encoding per track), TURN sockets inside the port
range (only host candidates are), transport-cc (aiortc negotiates abs-send-time + REMB), FIR
(aiortc routes RTCP feedback by its media SSRC, which a FIR leaves 0; browsers send PLI).
"""

from media.relay.model import (
    SOURCES,
    VIDEO_CODECS,
    PublishedTrack,
    RelayConfig,
    RelayError,
    TrackTap,
)
from media.relay.receiver import ForwardingReceiver
from media.relay.room import ConsultRelay, SendOffer
from media.relay.sender import ForwardingSender

__all__ = [
    "SOURCES",
    "VIDEO_CODECS",
    "ConsultRelay",
    "ForwardingReceiver",
    "ForwardingSender",
    "PublishedTrack",
    "RelayConfig",
    "RelayError",
    "SendOffer",
    "TrackTap",
]
