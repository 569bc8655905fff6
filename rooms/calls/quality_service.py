"""The quality telemetry use case: take reports, fold them into buckets, write the buckets.

Reports only touch memory (`QualityAggregator`); `flush` writes every bucket whose time has
passed in one transaction, and runs once a bucket's width (`BUCKET_SECONDS` unless the
edge gives another; the edge starts `run`). A write
that fails is logged and its buckets dropped: telemetry never holds up a call, and never grows
without bound while the database is away.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from rooms.calls.media_port import LegCounters, MediaNode
from rooms.calls.ports import QualityStore
from rooms.calls.quality import BUCKET_SECONDS, QualityAggregator, QualityBucket, QualitySample
from rooms.consults.errors import DomainError
from rooms.consults.service import Clock, utc_now

log = logging.getLogger(__name__)


class QualityService:
    def __init__(
        self, store: QualityStore, clock: Clock = utc_now, bucket_seconds: int = BUCKET_SECONDS
    ) -> None:
        self.store = store
        self.clock = clock
        self.buckets = QualityAggregator(bucket_seconds)
        self._ready: list[QualityBucket] = []
        self.written = 0
        """Buckets written since start (for tests and logs)."""
        self._node: MediaNode | None = None
        self._legs: dict[tuple[str, str], tuple[LegCounters, datetime]] = {}

    def watch_relay(self, node: MediaNode) -> None:
        """Add the relay's own view of each participant (`source="relay"`) at every flush."""
        self._node = node

    async def sample_relay(self) -> int:
        """Read the relay's counters and fold the change since the last reading into a
        `source="relay"` sample per participant; returns how many samples were made."""
        if self._node is None:
            return 0
        now = self.clock()
        readings = await self._node.leg_counters()
        seen: dict[tuple[str, str], tuple[LegCounters, datetime]] = {}
        made = 0
        for consult_id, legs in readings.items():
            for leg in legs:
                key = (consult_id, leg.peer_id)
                seen[key] = (leg, now)
                before = self._legs.get(key)
                if before is None:
                    continue  # the first reading is the baseline
                sample = relay_sample(consult_id, before, leg, now)
                if sample is not None:
                    self.record(sample)
                    made += 1
        self._legs = seen
        return made

    def record(self, sample: QualitySample) -> None:
        """Fold one report in (memory only)."""
        self._ready.extend(self.buckets.add(sample))

    def consult_closed(self, consult_id: str) -> None:
        """The consult's room closed: its open buckets are written at the next flush."""
        self._ready.extend(self.buckets.close_consult(consult_id))

    async def flush(self, everything: bool = False) -> int:
        """Write the buckets whose time has passed (all open ones when `everything`) in one
        transaction; returns how many were written."""
        ready = self._ready
        self._ready = []
        ready.extend(self.buckets.everything() if everything else self.buckets.due(self.clock()))
        if not ready:
            return 0
        try:
            await self.store.add_quality(ready)
        except DomainError as exc:  # a busy, full or unreachable database
            log.warning("dropped %d quality buckets: %s", len(ready), exc.message)
            return 0
        self.written += len(ready)
        return len(ready)

    async def run(self, every: float | None = None) -> None:
        """Flush every `every` seconds (default: once a bucket's width) until cancelled (the
        caller then flushes everything)."""
        if every is None:
            every = self.buckets.bucket_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await self.sample_relay()
            except Exception:
                log.exception("reading the relay's quality counters failed")
            try:
                await self.flush()
            except Exception:
                log.exception("writing quality buckets failed")


def relay_sample(
    consult_id: str, before: tuple[LegCounters, datetime], now: LegCounters, at: datetime
) -> QualitySample | None:
    """The relay's view of one participant between two readings; None if too close together."""
    prev, then = before
    seconds = (at - then).total_seconds()
    if seconds < 0.5:
        return None

    def kbps(new: int, old: int) -> float:
        return round(max(new - old, 0) * 8 / 1000 / seconds, 1)

    return QualitySample(
        consult_id=consult_id,
        user_id=now.user_id,
        at=at,
        source="relay",
        path="relay",
        interval_s=min(seconds, 30.0),
        bitrate_in_kbps=kbps(now.bytes_in, prev.bytes_in),
        bitrate_out_kbps=kbps(now.bytes_out, prev.bytes_out),
        loss_pct=now.loss_out_pct,
        rtt_ms=now.rtt_ms,
        jitter_ms=now.jitter_ms,
        nacks=max(now.nacks - prev.nacks, 0),
        plis=max(now.plis - prev.plis, 0),
    )
