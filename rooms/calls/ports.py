"""What the calls package needs from storage: recorded tracks and the consents behind them."""

from __future__ import annotations

from typing import Protocol

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
