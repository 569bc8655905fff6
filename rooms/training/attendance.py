"""Who attended a training, from which institution, for how long: from the players' heartbeats,
aggregated in memory and written in batches (bounded write load: not a row per heartbeat).

A player beats every `BEAT_EVERY` while it plays. Consecutive beats of one person no more than
`GAP` apart count the time between them as attended; a longer silence (the page closed, the
phone slept) ends a stretch, and the next beat starts a new one without counting the silence.
A reload beats again at once, within the gap: it costs nothing. Beats closer together than
`MIN_INTERVAL` (several tabs, a hostile client) change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

BEAT_EVERY = timedelta(seconds=30)
GAP = timedelta(seconds=90)
"""Three missed beats end a stretch."""
MIN_INTERVAL = timedelta(seconds=5)
FLUSH_EVERY = timedelta(seconds=60)
"""At most one write per training this often (plus one when it ends)."""


@dataclass(slots=True)
class Attendee:
    training_id: str
    user_id: int
    institution_id: int
    first_seen: datetime
    last_seen: datetime
    seconds: float = 0.0
    """Attended time counted so far (stretches between beats)."""


@dataclass(slots=True)
class Unwritten:
    """What one flush adds to the stored attendance of one person."""

    training_id: str
    user_id: int
    institution_id: int
    first_seen: datetime
    last_seen: datetime
    added_seconds: float


@dataclass
class AttendanceTally:
    """The beats of this process, per training and person, and what is not yet written."""

    attendees: dict[tuple[str, int], Attendee] = field(default_factory=dict)
    _pending: dict[tuple[str, int], float] = field(default_factory=dict)
    _flushed_at: dict[str, datetime] = field(default_factory=dict)

    def beat(self, training_id: str, user_id: int, institution_id: int, at: datetime) -> bool:
        """Count one heartbeat; True when the training is due a flush."""
        key = (training_id, user_id)
        found = self.attendees.get(key)
        if found is None:
            self.attendees[key] = Attendee(training_id, user_id, institution_id, at, at)
            self._pending.setdefault(key, 0.0)
        elif at - found.last_seen >= MIN_INTERVAL:
            if at - found.last_seen <= GAP:
                added = (at - found.last_seen).total_seconds()
                found.seconds += added
                self._pending[key] = self._pending.get(key, 0.0) + added
            else:
                self._pending.setdefault(key, 0.0)
            found.last_seen = at
        last = self._flushed_at.setdefault(training_id, at)
        return at - last >= FLUSH_EVERY

    def take(self, training_id: str, at: datetime) -> list[Unwritten]:
        """What is not yet written for the training (and forget it as pending)."""
        self._flushed_at[training_id] = at
        out = []
        for key in [k for k in self._pending if k[0] == training_id]:
            attendee = self.attendees[key]
            out.append(
                Unwritten(
                    training_id,
                    attendee.user_id,
                    attendee.institution_id,
                    attendee.first_seen,
                    attendee.last_seen,
                    self._pending.pop(key),
                )
            )
        return out
