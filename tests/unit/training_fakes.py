"""An in-memory `TrainingStore` for the training unit tests."""

from __future__ import annotations

from rooms.consults.audit import AuditEntry
from rooms.training.attendance import Attendee, Unwritten
from rooms.training.training import Training, TrainingStatus


class InMemoryTrainings:
    def __init__(self, audit_log: list[AuditEntry]) -> None:
        self.trainings: dict[str, Training] = {}
        self.audit_log = audit_log
        self.attended: dict[tuple[str, int], Attendee] = {}
        self.writes = 0

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

    async def add_attendance(self, rows: list[Unwritten]) -> None:
        for row in rows:
            key = (row.training_id, row.user_id)
            found = self.attended.get(key)
            if found is None:
                self.attended[key] = Attendee(
                    row.training_id,
                    row.user_id,
                    row.institution_id,
                    row.first_seen,
                    row.last_seen,
                    row.added_seconds,
                )
            else:
                found.first_seen = min(found.first_seen, row.first_seen)
                found.last_seen = max(found.last_seen, row.last_seen)
                found.seconds += row.added_seconds
        self.writes += 1

    async def attendance(self, training_id: str) -> list[Attendee]:
        found = [a for (t, _), a in self.attended.items() if t == training_id]
        return sorted(found, key=lambda a: (-a.seconds, a.user_id))
