"""The quality telemetry use case: take reports, fold them into buckets, write the buckets.

Reports only touch memory (`QualityAggregator`); `flush` writes every bucket whose time has
passed in one transaction, and runs every `BUCKET_SECONDS` (the edge starts `run`). A write
that fails is logged and its buckets dropped: telemetry never holds up a call, and never grows
without bound while the database is away.
"""

from __future__ import annotations

import asyncio
import logging

from rooms.calls.ports import QualityStore
from rooms.calls.quality import BUCKET_SECONDS, QualityAggregator, QualityBucket, QualitySample
from rooms.consults.errors import DomainError
from rooms.consults.service import Clock, utc_now

log = logging.getLogger(__name__)


class QualityService:
    def __init__(self, store: QualityStore, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock
        self.buckets = QualityAggregator()
        self._ready: list[QualityBucket] = []
        self.written = 0
        """Buckets written since start (for tests and logs)."""

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

    async def run(self, every: float = BUCKET_SECONDS) -> None:
        """Flush every `every` seconds until cancelled (the caller then flushes everything)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush()
            except Exception:
                log.exception("writing quality buckets failed")
