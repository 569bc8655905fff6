"""An in-memory `TrainingStore` for the training unit tests."""

from __future__ import annotations

from rooms.consults.audit import AuditEntry
from rooms.training.training import Training, TrainingStatus


class InMemoryTrainings:
    def __init__(self, audit_log: list[AuditEntry]) -> None:
        self.trainings: dict[str, Training] = {}
        self.audit_log = audit_log

    async def add_training(self, training: Training, audit: AuditEntry) -> None:
        self.trainings[training.id] = training
        self.audit_log.append(audit)

    async def get_training(self, training_id: str) -> Training | None:
        return self.trainings.get(training_id)

    async def list_trainings(
        self, statuses: frozenset[TrainingStatus] | None = None, limit: int = 500
    ) -> list[Training]:
        found = [t for t in self.trainings.values() if statuses is None or t.status in statuses]
        return sorted(found, key=lambda t: (-t.starts_at.timestamp(), t.id))[:limit]

    async def update_training(self, training: Training, audit: AuditEntry) -> bool:
        stored = self.trainings.get(training.id)
        if stored is None or stored.version != training.version - 1:
            return False
        self.trainings[training.id] = training
        self.audit_log.append(audit)
        return True
