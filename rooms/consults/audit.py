"""The append-only audit log: who did what to which consult, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor_id: int | None
    """The user who acted; None for the system itself (e.g. expiry)."""
    action: str
    consult_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    """Set by the store once written."""
