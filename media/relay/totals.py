"""What a relay forwarded, summed over tracks: the counters `/metrics` shows.

Nothing here runs per packet. The per-packet counters already exist (aiortc's Sender Report
counters on each leg, the receiver's own; see `TrackFanout.stats`); a track's are added into
its relay's `retired` totals once, when the track is removed, and a relay's into its node's
when the consult's relay closes, so the sums only ever grow.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class TrackTotals:
    packets_received: int = 0
    bytes_received: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0
    nacks_sent: int = 0
    """Sequence numbers NACKed upstream to publishers (packets the relay missed)."""
    nacks_received: int = 0
    """NACKs received from subscribers."""
    retransmissions: int = 0
    """Packets sent again to subscribers (answers to their NACKs)."""
    plis_sent: int = 0
    """Keyframe requests (PLI) sent upstream to publishers."""
    keyframe_requests_received: int = 0
    """PLI/FIR received from subscribers."""

    def add_stats(self, stats: dict[str, Any]) -> None:
        """Add one track's `TrackFanout.stats()`."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + int(stats.get(f.name) or 0))

    def add(self, other: TrackTotals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> TrackTotals:
        out = TrackTotals()
        out.add(self)
        return out
