"""One consult's relay: every participant's publish and subscribe connections, and the fan-out."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import MediaDescription, SessionDescription, candidate_from_sdp

from media import network
from media.relay import _aiortc
from media.relay.codecs import CLOCK_RATES, codec_name, codec_preferences, offers_codec
from media.relay.model import SOURCES, Leg, PublishedTrack, RelayConfig, RelayError, TrackTap
from media.relay.receiver import ForwardingReceiver
from media.relay.sender import ForwardingSender
from media.relay.totals import TrackTotals
from media.relay.track import Taps, TrackFanout

log = logging.getLogger(__name__)

SendOffer = Callable[[str, str, dict[str, PublishedTrack]], Awaitable[None]]
"""(participant_id, offer_sdp, tracks_by_mid): deliver a subscribe offer to the participant."""

REMB_REFRESH_SECONDS = 1.0
"""An unchanged bandwidth estimate is sent to a publisher again at most this often."""
REMB_UNCAPPED_BPS = 10_000_000
"""What the relay sends a publisher it had capped once none of its subscribers estimates any
more (their estimates went stale): no limit from the relay's side, the publisher's own estimate
of its uplink (loss, round trip) governs until a subscriber estimates again."""

_MSID_UNSAFE = re.compile(r"[^A-Za-z0-9._+~\-]")


def msid_token(text: str) -> str:
    """`text` usable as an SDP msid id (RFC 8830: token characters, at most 64)."""
    return _MSID_UNSAFE.sub("_", text)[:64] or "_"


def _offered_ssrcs(media: MediaDescription) -> tuple[int | None, int | None]:
    """The (media, RTX) SSRCs an m-section of the publish offer sends on, as far as it says.

    `a=ssrc-group:FID <media> <rtx>` when present (browsers), else aiortc's own reading: the
    first `a=ssrc`, and the second as RTX when there are exactly two.
    """
    for group in media.ssrc_group:
        if group.semantic == "FID" and len(group.items) == 2:
            first, second = group.items
            if isinstance(first, int) and isinstance(second, int):
                return first, second
    ssrcs = list(dict.fromkeys(s.ssrc for s in media.ssrc))
    if not ssrcs:
        return None, None
    return ssrcs[0], ssrcs[1] if len(ssrcs) == 2 else None


@dataclass(eq=False)
class _Leg:
    """One m-section of a subscribe connection: a sendonly transceiver with a forwarding sender.

    States: `pending` (bound to a track and offered, not answered yet), `active` (in the track's
    fan-out), `released` (its track is gone; offered as inactive), `free` (negotiated inactive:
    the next track of its kind reuses it, so m-sections do not pile up).
    """

    transceiver: RTCRtpTransceiver
    sender: ForwardingSender
    kind: str
    state: str = "pending"
    track: TrackFanout | None = None


@dataclass(eq=False)
class _Subscription:
    pc: RTCPeerConnection | None = None
    legs: list[_Leg] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    offer_outstanding: bool = False
    dirty: bool = False
    released_in_offer: list[_Leg] = field(default_factory=list)


@dataclass(eq=False)
class _Participant:
    id: str
    publish_pc: RTCPeerConnection | None = None
    publish_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tracks: dict[str, TrackFanout] = field(default_factory=dict)
    """Published tracks by the mid of their m-section in the publish connection."""
    sub: _Subscription = field(default_factory=_Subscription)
    removed: bool = False
    remb_sent: int | None = None
    remb_time: float = 0.0


@dataclass
class LegView:
    """See `ConsultRelay.leg_view`."""

    bytes_in: int = 0
    bytes_out: int = 0
    loss_out_pct: float = 0.0
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    nacks: int = 0
    plis: int = 0


@dataclass(frozen=True)
class _PublishedMedia:
    mid: str
    kind: str
    sending: bool
    source: str | None
    ssrc: int | None = None
    rtx_ssrc: int | None = None


class ConsultRelay:
    """Forwards every participant's published tracks to every other participant of a consult.

    Each participant has two peer connections to the relay: a *publish* one (the browser offers
    its tracks, the relay answers) and a *subscribe* one (the relay offers the others' tracks,
    sendonly, through `send_offer`; the browser answers through `subscriber_answer`). Offers of
    one subscribe connection are serialized: a change while an offer is out is sent as a fresh
    offer once the answer is in.
    """

    def __init__(self, consult_id: str, config: RelayConfig, send_offer: SendOffer) -> None:
        self.consult_id = consult_id
        self.config = config
        self._send_offer = send_offer
        self._participants: dict[str, _Participant] = {}
        self._taps = Taps()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False
        self.retired = TrackTotals()
        """Counters of the tracks no longer published here (added once, when removed)."""
        self._preferences = {
            kind: codec_preferences(kind, config.video_codec) for kind in ("audio", "video")
        }

    # ---- public API ---------------------------------------------------------------------------

    async def join(self, participant_id: str) -> None:
        """Register a participant who may only receive: they are offered the tracks present."""
        self._check_open()
        if participant_id not in self._participants:
            self._participants[participant_id] = _Participant(participant_id)
            self._schedule_negotiation(self._participants[participant_id])

    async def publish(self, participant_id: str, offer_sdp: str, sources: dict[str, str]) -> str:
        """Answer a participant's publish offer (first or renegotiated); `sources`: mid -> source.

        Every m-section the browser sends on needs a source (`camera`, `microphone`, `second`) of
        its kind, and must offer the consult's codec. Returns the answer SDP, candidates included.
        """
        self._check_open()
        plan = self._plan_publish(offer_sdp, sources)
        part = self._participants.get(participant_id)
        new = part is None
        if part is None:
            part = self._participants[participant_id] = _Participant(participant_id)
        async with part.publish_lock:
            if part.removed or self._closed:
                raise RelayError("the participant has left")
            pc = part.publish_pc
            fresh = pc is None
            if pc is None:
                pc = part.publish_pc = self._new_pc()
            try:
                self._prepare_receivers(pc, plan)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                await self._set_local(pc, await pc.createAnswer())
            except Exception as exc:
                if fresh:
                    part.publish_pc = None
                    await pc.close()
                if new and not part.tracks:
                    self._participants.pop(participant_id, None)
                if isinstance(exc, RelayError):
                    raise
                raise RelayError(f"cannot answer the publish offer: {exc}") from exc
            changed = self._apply_publish(part, pc, plan)
            answer: str = pc.localDescription.sdp
        if changed:
            for other in self._participants.values():
                if other is not part:
                    self._schedule_negotiation(other)
        if new:
            self._schedule_negotiation(part)
        return answer

    async def subscriber_answer(self, participant_id: str, answer_sdp: str) -> None:
        """The participant's answer to the last subscribe offer sent them."""
        part = self._known(participant_id)
        sub = part.sub
        async with sub.lock:
            if sub.pc is None or not sub.offer_outstanding:
                raise RelayError("no subscribe offer is waiting for an answer")
            try:
                await sub.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=answer_sdp, type="answer")
                )
            except Exception as exc:
                raise RelayError(f"cannot apply the subscribe answer: {exc}") from exc
            sub.offer_outstanding = False
            for leg in sub.released_in_offer:
                if leg.state == "released":
                    leg.state = "free"
            sub.released_in_offer = []
            for leg in sub.legs:
                if leg.state == "pending" and leg.track is not None:
                    leg.state = "active"
                    await leg.track.add_leg(leg.sender)
            again = sub.dirty
        if again:
            self._spawn(self._negotiate(part))

    async def add_candidate(
        self,
        participant_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        """A trickled ICE candidate of the browser (`""`: end of candidates).

        Candidates of a participant who has left, or for a connection not made yet, are ignored.
        """
        text = candidate.strip()
        text = text.removeprefix("a=").removeprefix("candidate:")
        parsed = None
        if text:
            if len(text.split()) < 8:
                raise RelayError("malformed ICE candidate")
            try:
                parsed = candidate_from_sdp(text)
            except (AssertionError, ValueError, IndexError) as exc:
                raise RelayError("malformed ICE candidate") from exc
        part = self._participants.get(participant_id)
        if part is None or part.removed:
            return
        if leg == "publish":
            async with part.publish_lock:
                await self._add_candidate(part.publish_pc, parsed, sdp_mid, sdp_mline_index)
        else:
            await self._add_candidate(part.sub.pc, parsed, sdp_mid, sdp_mline_index)

    async def remove(self, participant_id: str) -> None:
        """The participant left: their tracks leave everybody's subscription, their peers close."""
        part = self._participants.pop(participant_id, None)
        if part is None:
            return
        part.removed = True
        for mid in list(part.tracks):
            self._remove_track(part, mid)
        for leg in part.sub.legs:
            self._release_leg(part, leg)
        async with part.publish_lock:
            if part.publish_pc is not None:
                await part.publish_pc.close()
        async with part.sub.lock:
            if part.sub.pc is not None:
                await part.sub.pc.close()

    async def close(self) -> None:
        """Stop forwarding: close every connection (taps see every track removed)."""
        if self._closed:
            return
        self._closed = True
        for participant_id in list(self._participants):
            await self.remove(participant_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def tracks(self) -> list[PublishedTrack]:
        return [t.info for t in self._fanouts()]

    def add_tap(self, tap: TrackTap) -> None:
        """Show `tap` every track (those present at once) and every packet from now on."""
        self._taps.add(tap)
        for track in self.tracks():
            try:
                tap.track_added(track)
            except Exception:
                self._taps.failed(tap, "track_added")

    def remove_tap(self, tap: TrackTap) -> None:
        self._taps.remove(tap)

    def request_keyframe(self, track_key: str) -> None:
        """Ask the track's publisher for a keyframe (rate-limited like subscribers' requests)."""
        self._spawn(self._track(track_key).keyframe_requested())

    def peer_connections(self, participant_id: str) -> dict[str, RTCPeerConnection]:
        """The relay's connections with a participant, by leg (for getStats and tests)."""
        part = self._known(participant_id)
        found = {"publish": part.publish_pc, "subscribe": part.sub.pc}
        return {leg: pc for leg, pc in found.items() if pc is not None}

    def participant_ids(self) -> list[str]:
        return list(self._participants)

    async def leg_view(self, participant_id: str) -> LegView:
        """The relay's running totals of one participant's two connections (call quality):
        bytes in on the publish connection, bytes out on the subscribe one, NACKs both ways,
        keyframe requests from their browser, and what their browser's RTCP Receiver Reports
        said of what the relay sent (aiortc keeps the last report per sender in its stats)."""
        part = self._known(participant_id)
        view = LegView()
        if part.publish_pc is not None:
            for transceiver in part.publish_pc.getTransceivers():
                receiver = transceiver.receiver
                if isinstance(receiver, ForwardingReceiver):
                    view.bytes_in += receiver.bytes_received
                    view.nacks += receiver.nacks_sent
        for leg in part.sub.legs:
            sender = leg.sender
            view.bytes_out += sender.octets_sent
            view.nacks += sender.nacks_received
            view.plis += sender.keyframe_requests
            for stat in (await sender.getStats()).values():
                if getattr(stat, "type", None) != "remote-inbound-rtp":
                    continue
                view.loss_out_pct = max(view.loss_out_pct, 100.0 * stat.fractionLost / 256)
                if stat.roundTripTime is not None:
                    view.rtt_ms = max(view.rtt_ms or 0.0, 1000.0 * stat.roundTripTime)
                jitter_ms = 1000.0 * stat.jitter / CLOCK_RATES.get(leg.kind, 90_000)
                view.jitter_ms = max(view.jitter_ms or 0.0, jitter_ms)
        return view

    def stats(self) -> dict[str, Any]:
        """Counters per track: packets/bytes in and forwarded, PLIs, NACKs, RTX, REMB minimum."""
        return {
            "consult_id": self.consult_id,
            "participants": len(self._participants),
            "tracks": {t.info.key: t.stats() for t in self._fanouts()},
            "tap_errors": self._taps.errors,
        }

    def totals(self) -> TrackTotals:
        """Everything forwarded in this consult so far: removed tracks and present ones."""
        out = self.retired.copy()
        for track in self._fanouts():
            out.add_stats(track.stats())
        return out

    def load(self) -> tuple[int, int]:
        """(participants, tracks published) now."""
        return len(self._participants), len(self._fanouts())

    # ---- publish side -------------------------------------------------------------------------

    def _plan_publish(self, offer_sdp: str, sources: dict[str, str]) -> list[_PublishedMedia]:
        """Check the offer and the sources before anything is touched."""
        try:
            description = SessionDescription.parse(offer_sdp)
        except Exception as exc:
            raise RelayError(f"the publish offer is not valid SDP: {exc}") from exc
        plan: list[_PublishedMedia] = []
        used: set[str] = set()
        for media in description.media:
            if media.kind not in ("audio", "video"):
                continue
            mid = media.rtp.muxId
            if not mid:
                raise RelayError("every m-section of the publish offer needs an a=mid")
            sending = media.port != 0 and (media.direction or "sendrecv") in (
                "sendonly",
                "sendrecv",
            )
            source = sources.get(mid)
            if sending:
                if source is None:
                    raise RelayError(f"no source given for the m-section with mid {mid}")
                if SOURCES.get(source) != media.kind:
                    raise RelayError(f"source {source!r} cannot be a {media.kind} track")
                if source in used:
                    raise RelayError(f"source {source!r} is given to two m-sections")
                used.add(source)
                if not offers_codec(media, self._preferences[media.kind]):
                    wanted = codec_name(media.kind, self.config.video_codec)
                    raise RelayError(f"the m-section with mid {mid} does not offer {wanted}")
            ssrc, rtx_ssrc = _offered_ssrcs(media) if sending else (None, None)
            plan.append(_PublishedMedia(mid, media.kind, sending, source, ssrc, rtx_ssrc))
        unknown = set(sources) - {m.mid for m in plan}
        if unknown:
            raise RelayError(f"sources name m-sections not in the offer: {sorted(unknown)}")
        return plan

    def _prepare_receivers(self, pc: RTCPeerConnection, plan: list[_PublishedMedia]) -> None:
        """Give each new m-section a recvonly transceiver with a forwarding receiver.

        aiortc's setRemoteDescription takes, for each new m-section, the first transceiver of
        its kind without a mid, so creating them first lets the relay choose the receiver and
        the codec (a transceiver it created itself would carry aiortc's decoding receiver).
        """
        transceivers = pc.getTransceivers()
        known = {t.mid for t in transceivers if t.mid is not None}
        spare = Counter(t.kind for t in transceivers if t.mid is None)
        needed = Counter(m.kind for m in plan if m.mid not in known)
        for kind, count in needed.items():
            for _ in range(count - spare[kind]):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                receiver = ForwardingReceiver(kind, transceiver.receiver.transport)
                _aiortc.replace_receiver(transceiver, receiver)
                receiver._set_rtcp_ssrc(transceiver.sender._ssrc)
                transceiver.setCodecPreferences(self._preferences[kind])

    def _apply_publish(
        self, part: _Participant, pc: RTCPeerConnection, plan: list[_PublishedMedia]
    ) -> bool:
        """Add and remove the participant's tracks as the negotiated offer says; any change?"""
        by_mid = {t.mid: t for t in pc.getTransceivers()}
        wanted = {m.mid: (m.source, m) for m in plan if m.sending and m.source is not None}
        changed = False
        for mid, track in list(part.tracks.items()):
            entry = wanted.get(mid)
            if entry is None or entry[0] != track.info.source:
                self._remove_track(part, mid)
                changed = True
        for mid, (source, media) in wanted.items():
            kept = part.tracks.get(mid)
            if kept is not None:
                kept.receiver.follow_ssrcs(media.ssrc, media.rtx_ssrc)
                continue
            transceiver = by_mid.get(mid)
            receiver = transceiver.receiver if transceiver is not None else None
            if not isinstance(receiver, ForwardingReceiver):
                raise RelayError(f"no forwarding receiver for mid {mid}")  # pragma: no cover
            # The m-section may have carried a track before (a source stopped and started
            # again): its receiver starts afresh, on the SSRCs this offer names.
            receiver.start_track(media.ssrc, media.rtx_ssrc)
            kind = SOURCES[source]
            info = PublishedTrack(
                key=f"{part.id}/{source}",
                participant_id=part.id,
                source=source,
                kind=kind,
                codec=codec_name(kind, self.config.video_codec),
                clock_rate=CLOCK_RATES[kind],
            )
            track = TrackFanout(info, receiver, self._taps, self._estimate_callback(part))
            receiver.sink = track
            part.tracks[mid] = track
            self._taps.track_added(info)
            changed = True
        return changed

    def _remove_track(self, publisher: _Participant, mid: str) -> None:
        track = publisher.tracks.pop(mid)
        track.receiver.sink = None
        for part in self._participants.values():
            for leg in part.sub.legs:
                if leg.track is track:
                    self._release_leg(part, leg)
        track.close()
        self.retired.add_stats(track.stats())
        self._taps.track_removed(track.info.key)

    def _estimate_callback(self, publisher: _Participant) -> Callable[[], Awaitable[None]]:
        async def estimate_changed() -> None:
            await self._send_estimate(publisher)

        return estimate_changed

    async def _send_estimate(self, publisher: _Participant) -> None:
        """Send the publisher one REMB: over its video tracks, the sum of each one's lowest
        subscriber estimate (REMB caps a sender's whole connection, not one stream)."""
        if publisher.removed:
            return
        total = 0
        ssrcs: list[int] = []
        via: ForwardingReceiver | None = None
        video: list[tuple[int, ForwardingReceiver]] = []
        for track in publisher.tracks.values():
            lowest = track.remb_min
            ssrc = track.receiver.media_ssrc
            if track.info.kind != "video" or ssrc is None:
                continue
            video.append((ssrc, track.receiver))
            if lowest is None:
                continue
            total += lowest
            ssrcs.append(ssrc)
            via = via or track.receiver
        if via is None:
            if not video or publisher.remb_sent in (None, REMB_UNCAPPED_BPS):
                return
            # No subscriber estimates any more, but the last REMB still caps the publisher
            # (a browser keeps a REMB until the next one): lift it.
            total, ssrcs, via = REMB_UNCAPPED_BPS, [ssrc for ssrc, _ in video], video[0][1]
        now = time.monotonic()
        if total == publisher.remb_sent and now - publisher.remb_time < REMB_REFRESH_SECONDS:
            return
        publisher.remb_sent, publisher.remb_time = total, now
        await via.send_remb(total, ssrcs)

    # ---- subscribe side -----------------------------------------------------------------------

    def _schedule_negotiation(self, part: _Participant) -> None:
        if part.removed or self._closed:
            return
        part.sub.dirty = True
        self._spawn(self._negotiate(part))

    async def _negotiate(self, part: _Participant) -> None:
        """Bring the participant's subscription up to date and offer it, unless an offer is out
        (then `subscriber_answer` calls this again)."""
        sub = part.sub
        async with sub.lock:
            if part.removed or self._closed or sub.offer_outstanding or not sub.dirty:
                return
            sub.dirty = False
            if sub.pc is not None and _is_closed(sub.pc):
                self._log_closed(part)
                return
            try:
                if not self._sync_legs(part) or sub.pc is None:
                    return
                pc = sub.pc
                await self._set_local(pc, await pc.createOffer())
            except InvalidStateError:
                if sub.pc is None or not _is_closed(sub.pc):
                    raise
                self._log_closed(part)  # closed by aiortc while the offer was being made
                return
            sub.released_in_offer = [leg for leg in sub.legs if leg.state == "released"]
            sub.offer_outstanding = True
            offer: str = pc.localDescription.sdp
            tracks_by_mid = {
                leg.transceiver.mid: leg.track.info
                for leg in sub.legs
                if leg.track is not None and leg.transceiver.mid is not None
            }
        await self._send_offer(part.id, offer, tracks_by_mid)

    def _log_closed(self, part: _Participant) -> None:
        """A subscribe connection aiortc closed by itself (its DTLS transports ended, e.g. after
        a network outage) is not renegotiated: an expected end, not a failure. The participant's
        client notices the dead connection and joins again, which makes a new one."""
        log.debug(
            "consult %s relay: %s's subscribe connection is closed, nothing more is offered on it",
            self.consult_id,
            part.id,
        )

    def _sync_legs(self, part: _Participant) -> bool:
        """Bind a leg to every track of the others that has none; does the SDP change?"""
        sub = part.sub
        changed = any(leg.state == "released" for leg in sub.legs)
        bound = {id(leg.track) for leg in sub.legs if leg.track is not None}
        for other in self._participants.values():
            if other is part or other.removed:
                continue
            for track in other.tracks.values():
                if id(track) in bound:
                    continue
                leg = self._free_leg(sub, track.info.kind) or self._new_leg(sub, track.info.kind)
                info = track.info
                leg.sender.bind(
                    track,
                    stream_id=msid_token(info.participant_id),
                    track_id=msid_token(f"{info.participant_id}~{info.source}"),
                )
                leg.track = track
                leg.state = "pending"
                leg.transceiver.direction = "sendonly"
                changed = True
        return changed

    def _free_leg(self, sub: _Subscription, kind: str) -> _Leg | None:
        return next((leg for leg in sub.legs if leg.state == "free" and leg.kind == kind), None)

    def _new_leg(self, sub: _Subscription, kind: str) -> _Leg:
        if sub.pc is None:
            sub.pc = self._new_pc()
        transceiver = sub.pc.addTransceiver(kind, direction="sendonly")
        sender = ForwardingSender(kind, transceiver.sender.transport, CLOCK_RATES[kind])
        _aiortc.replace_sender(transceiver, sender)
        transceiver.receiver._set_rtcp_ssrc(sender._ssrc)
        transceiver.setCodecPreferences(self._preferences[kind])
        leg = _Leg(transceiver, sender, kind)
        sub.legs.append(leg)
        return leg

    def _release_leg(self, part: _Participant, leg: _Leg) -> None:
        """The leg's track is gone (or its subscriber): stop forwarding, offer it inactive."""
        track = leg.track
        if track is None:
            return
        if track.remove_leg(leg.sender):
            publisher = self._participants.get(track.info.participant_id)
            if publisher is not None:
                self._spawn(self._send_estimate(publisher))
        leg.sender.unbind()
        leg.track = None
        leg.state = "released"
        leg.transceiver.direction = "inactive"
        self._schedule_negotiation(part)

    # ---- helpers ------------------------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        # Always an explicit ICE server list: aiortc's default queries a public STUN server.
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self.config.ice_servers),
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )

    async def _set_local(self, pc: RTCPeerConnection, description: RTCSessionDescription) -> None:
        """setLocalDescription (where aiortc gathers) inside the configured address/port range."""
        config = self.config
        with network.gathering(
            addresses=[config.address] if config.address else None,
            port_min=config.port_min,
            port_max=config.port_max,
        ):
            await pc.setLocalDescription(description)
        if "\na=candidate:" not in pc.localDescription.sdp:
            raise RelayError(
                "the relay gathered no ICE candidate: is the media address on this host, "
                "is the UDP port range exhausted?"
            )

    async def _add_candidate(
        self,
        pc: RTCPeerConnection | None,
        candidate: Any,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        if pc is None:
            return
        if candidate is None:
            await pc.addIceCandidate(None)
            return
        # Every m-section is bundled on the first one's transport; aiortc only hands a
        # candidate to that transport if it names the first m-section.
        first = next(iter(pc.getTransceivers()), None)
        if first is not None and first.mid is not None:
            candidate.sdpMid, candidate.sdpMLineIndex = first.mid, None
        else:
            candidate.sdpMid, candidate.sdpMLineIndex = sdp_mid, sdp_mline_index
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await pc.addIceCandidate(candidate)

    def _known(self, participant_id: str) -> _Participant:
        part = self._participants.get(participant_id)
        if part is None:
            raise RelayError(f"participant {participant_id!r} is not in the relay")
        return part

    def _fanouts(self) -> list[TrackFanout]:
        return [t for p in self._participants.values() for t in p.tracks.values()]

    def _track(self, track_key: str) -> TrackFanout:
        for track in self._fanouts():
            if track.info.key == track_key:
                return track
        raise RelayError(f"no track {track_key!r}")

    def _check_open(self) -> None:
        if self._closed:
            raise RelayError("the consult's relay is closed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "consult %s relay: background task failed",
                self.consult_id,
                exc_info=task.exception(),
            )


def _is_closed(pc: RTCPeerConnection) -> bool:
    """Closed by us or by aiortc itself (`close()` sets this first, before it awaits)."""
    return pc.signalingState == "closed"


__all__: Sequence[str] = ("ConsultRelay", "SendOffer", "msid_token")
