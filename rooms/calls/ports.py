"""What the calls package needs from storage: recorded tracks and the consents behind them."""

from __future__ import annotations

from typing import Protocol

from rooms.calls.quality import ConsultQuality, QualityBucket
from rooms.calls.recordings import ConsentAnswer, Recording
from rooms.consults.audit import AuditEntry


class RecordingStore(Protocol):
    """Durable metadata of recorded tracks and the consent answers that allowed them.

    A `Recording` is added when its track starts being written (status `recording`) and
    finished when its file is finalized, so a crash leaves a row that recovery completes.
    Every write is committed together with its audit entry, or not at all.
    """

    async def add_recording(self, recording: Recording, audit: AuditEntry) -> None: ...

    async def finish_recording(self, recording: Recording, audit: AuditEntry) -> None: ...

    async def get_recording(self, recording_id: str) -> Recording | None: ...

    async def list_recordings(self, consult_id: str) -> list[Recording]:
        """The consult's tracks in the order they started."""
        ...

    async def unfinished_recordings(self) -> list[Recording]: ...

    async def add_consent(self, answer: ConsentAnswer, audit: AuditEntry) -> None: ...

    async def consents(self, consult_id: str) -> list[ConsentAnswer]:
        """The consult's consent answers in the order they were given."""
        ...


class QualityStore(Protocol):
    """Call quality buckets (`rooms.calls.quality`): written in batches, never changed."""

    async def add_quality(self, buckets: list[QualityBucket]) -> None:
        """Write the buckets in one transaction (no audit entry: measurements, not changes)."""
        ...

    async def quality_of_consult(self, consult_id: str) -> list[QualityBucket]:
        """The consult's buckets by start, then participant, then source."""
        ...

    async def quality_of_consults(self, consult_ids: frozenset[str]) -> list[ConsultQuality]:
        """Per consult among `consult_ids` that has any, its pages' buckets summed
        (`ConsultQuality.of`), in no particular order."""
        ...
