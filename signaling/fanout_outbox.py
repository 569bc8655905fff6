"""What the Redis fan-out (`signaling.fanout`) keeps for the other signaling processes: the
messages waiting to be published (`Outbox`, bounded in bytes, with its high-water marks) and,
when the bound was hit, what the other processes missed (`Missed`) so that it can be made good
once the queue has drained.

Plain objects (no Redis, no event loop): the fan-out decides when to put, take and drop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

_CONSULT_CHANNEL = "consult:"
"""How a live consult room's socket.io channel is named (`signaling.hub.consult_channel`)."""


class Outbox:
    """Encoded messages waiting to be published, in order, at most `max_bytes` of them in all
    (one message is always let in when nothing waits, whatever its size, so a large `signal`
    is never refused by a small bound). Counts what it let in and the most that ever waited."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("an outbox holds at least one byte")
        self.max_bytes = max_bytes
        self._waiting: deque[bytes] = deque()
        self.waiting_bytes = 0
        self.high_water_messages = 0
        """The most messages that ever waited at once."""
        self.high_water_bytes = 0
        """The most bytes that ever waited at once."""
        self.largest_batch = 0
        """The most messages ever taken for one round trip."""
        self.published = 0
        """Messages taken to be published (whether Redis then took them or not)."""

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, raw: bytes) -> bool:
        """Let `raw` wait for its turn; False (and nothing kept) when it would not fit."""
        if self._waiting and self.waiting_bytes + len(raw) > self.max_bytes:
            return False
        self._waiting.append(raw)
        self.waiting_bytes += len(raw)
        self.high_water_messages = max(self.high_water_messages, len(self._waiting))
        self.high_water_bytes = max(self.high_water_bytes, self.waiting_bytes)
        return True

    def take(self, max_bytes: int) -> list[bytes]:
        """The oldest messages, as many as fit in `max_bytes` (at least one if any wait)."""
        batch: list[bytes] = []
        size = 0
        waiting = self._waiting
        while waiting and (not batch or size + len(waiting[0]) <= max_bytes):
            raw = waiting.popleft()
            size += len(raw)
            batch.append(raw)
        self.waiting_bytes -= size
        self.largest_batch = max(self.largest_batch, len(batch))
        self.published += len(batch)
        return batch

    def clear(self) -> int:
        """Drop everything waiting; how many messages that was."""
        count = len(self._waiting)
        self._waiting.clear()
        self.waiting_bytes = 0
        return count


def _consult_view_of(data: Any) -> str | None:
    """The consult whose view an emit carries (`{"consult": {"id": …}}`: `consult-state`,
    `consult-requested`, `consult-invited`)."""
    consult = data.get("consult") if isinstance(data, dict) else None
    if isinstance(consult, dict) and isinstance(consult.get("id"), str):
        return str(consult["id"])
    return None


def _consult_named_in(data: Any) -> str | None:
    """The consult an emit names (`{"consult_id": …}`)."""
    consult_id = data.get("consult_id") if isinstance(data, dict) else None
    return consult_id if isinstance(consult_id, str) else None


def _rooms(room: Any) -> Iterable[str]:
    if isinstance(room, str):
        return (room,)
    if isinstance(room, list | tuple):
        return (r for r in room if isinstance(r, str))
    return ()


class Missed:
    """What the other processes missed while the outbox was full (never while Redis was
    unreachable: that is the outage's rule, nothing stale afterwards).

    - `consults`: the consults whose news (`consult-state` and every other emit about one
      consult) was dropped; once the outbox has drained, their current state is sent again to
      everyone taking part (`ConsultHub.state_resent`, from the store: never the dropped,
      possibly outdated copy).
    - `rooms`: live consult rooms whose own traffic was dropped (`peer-joined` / `peer-left`,
      rosters, a connection entering or leaving the room's channel, relayed `signal`s); counted
      and named in the log, not replayed (see docs/deployment.md, "When the fan-out falls
      behind").
    - `by_kind`: how many dropped messages of each kind (`consult`, `room`, `signal`, `other`).
    """

    def __init__(self) -> None:
        self.consults: set[str] = set()
        self.rooms: set[str] = set()
        self.by_kind: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def _count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def note(self, message: dict[str, Any]) -> None:
        """Remember one dropped message (python-socketio's pub/sub message, or a notice)."""
        method = message.get("method")
        data = message.get("data")
        rooms = [
            r.removeprefix(_CONSULT_CHANNEL)
            for r in _rooms(message.get("room"))
            if r.startswith(_CONSULT_CHANNEL)
        ]
        emit = method == "emit"
        if emit and isinstance(data, list) and data:
            data = data[0]  # python-socketio sends an emit's arguments as a list
        if emit and message.get("event") == "signal":
            self._count("signal")
        elif emit and (consult_id := _consult_view_of(data)) is not None:
            self.consults.add(consult_id)
            self._count("consult")
        elif rooms:
            self.rooms.update(rooms)
            self._count("room")
        elif emit and (consult_id := _consult_named_in(data)) is not None:
            self.consults.add(consult_id)
            self._count("consult")
        elif isinstance(data, dict) and data.get("kind") == "roster":
            consult = data.get("consult")
            if isinstance(consult, str):
                self.rooms.add(consult)
            self._count("room")
        else:
            self._count("other")

    def take(self) -> Missed:
        """What has been missed so far, and start afresh."""
        taken = Missed()
        taken.consults, taken.rooms, taken.by_kind = self.consults, self.rooms, self.by_kind
        self.consults, self.rooms, self.by_kind = set(), set(), {}
        return taken
