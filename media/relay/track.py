"""One published track's fan-out: its receiver's packets to every subscribed leg and the taps."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtp import RtpPacket

from media.relay.model import PublishedTrack, TrackTap
from media.relay.receiver import ForwardingReceiver
from media.relay.sender import ForwardingSender

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 0.5
"""Seconds: at most one keyframe request (PLI) goes to the publisher per track in this time.
Several subscribers asking at once (a join, a loss burst) share one keyframe; a request inside
the interval is sent when it ends."""

REMB_STALE_SECONDS = 4.0
"""A subscriber's estimate not renewed for this long no longer counts. A browser estimates only
while it receives video (it sends REMB several times a second then) and goes silent when none
comes, e.g. while the publisher is audio-only: its last, lowest estimate would otherwise cap the
publisher for good, and the little video an audio-only page sends to probe a recovered link could
not get through (docs/network.md)."""
ESTIMATE_CHECK_SECONDS = 1.0
"""How often the publisher's video packets look for estimates gone stale."""

NTP_EPOCH_OFFSET = 2208988800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""


def ntp_now(unix_time: float) -> int:
    """A Unix time as a 64-bit NTP timestamp (32.32 fixed point)."""
    return int((unix_time + NTP_EPOCH_OFFSET) * 4294967296.0)


class Taps:
    """The consult's taps (the recorder), shared by all its tracks."""

    def __init__(self) -> None:
        self.current: tuple[TrackTap, ...] = ()
        self.errors = 0
        self._logged: set[int] = set()

    def add(self, tap: TrackTap) -> None:
        if tap not in self.current:
            self.current = (*self.current, tap)

    def remove(self, tap: TrackTap) -> None:
        self.current = tuple(t for t in self.current if t is not tap)

    def failed(self, tap: TrackTap, what: str) -> None:
        """A tap raised: count it, log the first failure of each tap, keep forwarding."""
        self.errors += 1
        if id(tap) not in self._logged:
            self._logged.add(id(tap))
            log.exception("relay tap %r failed in %s (further failures only counted)", tap, what)

    def track_added(self, track: PublishedTrack) -> None:
        for tap in self.current:
            try:
                tap.track_added(track)
            except Exception:
                self.failed(tap, "track_added")

    def track_removed(self, key: str) -> None:
        for tap in self.current:
            try:
                tap.track_removed(key)
            except Exception:
                self.failed(tap, "track_removed")


class _LegBaseline:
    """A leg's counters when it joined this track (senders are reused for other tracks)."""

    __slots__ = ("keyframe_requests", "nacks", "octets", "packets", "retransmissions")

    def __init__(self, leg: ForwardingSender) -> None:
        self.packets = leg.packets_sent
        self.octets = leg.octets_sent
        self.keyframe_requests = leg.keyframe_requests
        self.nacks = leg.nacks_received
        self.retransmissions = leg.retransmissions


class TrackFanout:
    """Forwards one published track: receiver -> legs (one per subscriber) and taps.

    Implements the `Upstream` a leg reports to: keyframe requests are rate-limited and sent to
    the publisher as one PLI; a changed REMB estimate calls `on_estimate` (the relay sums its
    publisher's tracks into the one REMB it sends that publisher).
    """

    def __init__(
        self,
        info: PublishedTrack,
        receiver: ForwardingReceiver,
        taps: Taps,
        on_estimate: Callable[[], Awaitable[None]],
    ) -> None:
        self.info = info
        self.receiver = receiver
        self._taps = taps
        self._on_estimate = on_estimate
        self._legs: dict[ForwardingSender, _LegBaseline] = {}
        self._fanout: tuple[ForwardingSender, ...] = ()
        self._last_keyframe_request = -KEYFRAME_REQUEST_INTERVAL
        self._deferred_request: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Future[None]] = set()
        self._closed = False
        self._estimate_checked_at = 0.0
        self._clock_rate = info.clock_rate
        self.plis_sent = 0
        self.plis_suppressed = 0
        self._done = {
            "packets": 0,
            "octets": 0,
            "keyframe_requests": 0,
            "nacks": 0,
            "retransmissions": 0,
        }

    @property
    def legs(self) -> tuple[ForwardingSender, ...]:
        return self._fanout

    @property
    def remb_min(self) -> int | None:
        """The lowest estimate any subscriber reported for this track (None: no estimate)."""
        estimates = [leg.remb for leg in self._fanout if leg.remb is not None]
        return min(estimates) if estimates else None

    async def _expire_estimates(self, now: float) -> None:
        """Forget the subscribers' estimates not renewed for REMB_STALE_SECONDS; if that changes
        anything, the relay sends the publisher its estimate again."""
        stale = [
            leg
            for leg in self._fanout
            if leg.remb is not None and now - leg.remb_at > REMB_STALE_SECONDS
        ]
        for leg in stale:
            leg.remb = None
        if stale:
            await self._on_estimate()

    async def on_packet(self, packet: RtpPacket) -> None:
        """A packet from the publisher (RTX unwrapped): forward it now, then show the taps."""
        legs = self._fanout
        if legs:
            unix = time.time()
            now = time.monotonic()
            abs_send_time = int((unix + NTP_EPOCH_OFFSET) * 262144.0) & 0xFFFFFF  # 6.18 s
            clock = self.receiver.sender_clock
            if clock is None:
                ntp = ntp_now(unix)
            else:
                # The publisher's own clock for this timestamp: keeps its audio and video in
                # sync in the subscriber's eyes, whatever the relay's delay.
                delta = ((packet.timestamp - clock[1] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                ntp = (clock[0] + (delta << 32) // self._clock_rate) & 0xFFFFFFFFFFFFFFFF
            for leg in legs:
                await leg.forward(packet, ntp, abs_send_time, now)
            if now - self._estimate_checked_at >= ESTIMATE_CHECK_SECONDS:
                self._estimate_checked_at = now
                await self._expire_estimates(now)
        taps = self._taps.current
        if taps:
            key = self.info.key
            for tap in taps:
                try:
                    tap.rtp(key, packet)
                except Exception:
                    self._taps.failed(tap, "rtp")

    async def add_leg(self, leg: ForwardingSender) -> None:
        """Start forwarding to a negotiated leg (and get it a keyframe to start from)."""
        if leg in self._legs:
            return
        self._legs[leg] = _LegBaseline(leg)
        leg.active = True
        self._fanout = tuple(self._legs)
        if leg.ready:
            await self.keyframe_requested()

    def remove_leg(self, leg: ForwardingSender) -> bool:
        """Stop forwarding to a leg; True if it had reported an estimate (the sum changes)."""
        baseline = self._legs.pop(leg, None)
        if baseline is None:
            return False
        had_estimate = leg.remb is not None
        self._add_counts(self._done, leg, baseline)
        leg.active = False
        self._fanout = tuple(self._legs)
        return had_estimate

    def close(self) -> list[ForwardingSender]:
        """The track is gone: detach every leg; the legs it had."""
        self._closed = True
        if self._deferred_request is not None:
            self._deferred_request.cancel()
            self._deferred_request = None
        for task in self._pending:
            task.cancel()
        legs = list(self._legs)
        for leg in legs:
            self.remove_leg(leg)
        return legs

    async def keyframe_requested(self) -> None:
        """A subscriber (or the recorder) needs a keyframe: at most one PLI upstream per interval.

        A request inside the interval is not dropped: one PLI is sent when the interval ends
        (a subscriber that starts just after another still gets its keyframe soon), and any
        further request until then rides on that one.
        """
        if self.info.kind != "video" or self._closed:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL - time.monotonic()
        if wait > 0:
            if self._deferred_request is None:
                loop = asyncio.get_running_loop()
                self._deferred_request = loop.call_later(wait, self._send_deferred_request)
            else:
                self.plis_suppressed += 1
            return
        await self._send_keyframe_request()

    def _send_deferred_request(self) -> None:
        self._deferred_request = None
        task = asyncio.ensure_future(self._send_keyframe_request())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_keyframe_request(self) -> None:
        if self._closed:
            return
        self._last_keyframe_request = time.monotonic()
        if await self.receiver.send_pli():
            self.plis_sent += 1
        else:
            self._last_keyframe_request = -KEYFRAME_REQUEST_INTERVAL  # nothing sent: next may

    async def estimate_changed(self) -> None:
        await self._on_estimate()

    def stats(self) -> dict[str, Any]:
        counts = dict(self._done)
        for leg, baseline in self._legs.items():
            self._add_counts(counts, leg, baseline)
        receiver = self.receiver
        return {
            "kind": self.info.kind,
            "codec": self.info.codec,
            "subscribers": len(self._fanout),
            "packets_received": receiver.packets_received,
            "bytes_received": receiver.bytes_received,
            "rtx_received": receiver.rtx_received,
            "nacks_sent": receiver.nacks_sent,
            "plis_sent": self.plis_sent,
            "plis_suppressed": self.plis_suppressed,
            "packets_forwarded": counts["packets"],
            "bytes_forwarded": counts["octets"],
            "keyframe_requests_received": counts["keyframe_requests"],
            "nacks_received": counts["nacks"],
            "retransmissions": counts["retransmissions"],
            "remb_min": self.remb_min,
        }

    @staticmethod
    def _add_counts(counts: dict[str, int], leg: ForwardingSender, baseline: _LegBaseline) -> None:
        counts["packets"] += leg.packets_sent - baseline.packets
        counts["octets"] += leg.octets_sent - baseline.octets
        counts["keyframe_requests"] += leg.keyframe_requests - baseline.keyframe_requests
        counts["nacks"] += leg.nacks_received - baseline.nacks
        counts["retransmissions"] += leg.retransmissions - baseline.retransmissions
