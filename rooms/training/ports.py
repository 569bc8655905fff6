"""What the training package needs from storage. People and institutions come from the kernel's
`ConsultStore`; the audit log is written with each change."""

from __future__ import annotations

from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.training.training import Training, TrainingStatus


class TrainingStore(Protocol):
    async def add_training(self, training: Training, audit: AuditEntry) -> None:
        """Save the new training together with its audit entry, or neither."""
        ...

    async def get_training(self, training_id: str) -> Training | None: ...

    async def list_trainings(
        self, statuses: frozenset[TrainingStatus] | None = None, limit: int = 500
    ) -> list[Training]:
        """Trainings (in `statuses`, when given), the latest start first, at most `limit`."""
        ...

    async def update_training(self, training: Training, audit: AuditEntry) -> bool:
        """Save `training` (its `version` one more than the stored one) with its audit entry;
        False, writing nothing, when the stored version is not `training.version - 1`."""
        ...
