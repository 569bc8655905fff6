"""A consult: who asked whom about which patient, when, and where it stands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from rooms.consults.lifecycle import FINISHED, ConsultEvent, ConsultStatus, next_status
from rooms.consults.people import Specialty


class MediaMode(StrEnum):
    P2P = "p2p"
    """Browsers connect directly; the server relays signaling only."""
    RELAY = "relay"
    """Every participant connects to the server's media relay."""


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PatientSummary:
    name: str
    sex: Sex
    age_years: int | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class ConclusionDraft:
    """The assigned specialist's conclusion as typed so far, kept while the consult runs: if
    the exam room ends the consult, this becomes the conclusion (`ConsultService.end`)."""

    consult_id: str
    text: str
    author_id: int
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class Consult:
    id: str
    patient: PatientSummary
    specialty: Specialty
    reason: str
    intake: dict[str, Any]
    scheduled_at: datetime
    requesting_institution_id: int
    requesting_doctor_id: int
    status: ConsultStatus
    media_mode: MediaMode
    requested_at: datetime
    specialist_id: int | None = None
    accepted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    closing_note: str = ""
    """Why it was declined or cancelled, or the specialist's conclusion when ended."""
    ended_by_id: int | None = None
    """Who ended it (the specialist or the exam-room doctor); None until it ended."""
    version: int = 0
    """Bumped on every saved change; stores use it to refuse lost updates."""
    invited_ids: frozenset[int] = frozenset()
    """Specialists the assigned specialist invited into this consult (a multi-disciplinary
    consult, `rooms.consults.invitations`); loaded by the store with the consult, so that the
    permission table can decide `Scope.INVITED` from the consult alone."""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def apply(self, event: ConsultEvent, at: datetime, **changes: Any) -> Consult:
        """The consult after `event` at time `at`; raises `IllegalTransition` if not allowed."""
        status = next_status(self.status, event)
        stamps: dict[str, Any] = {}
        if event is ConsultEvent.ACCEPT:
            stamps["accepted_at"] = at
        elif event is ConsultEvent.START and self.started_at is None:
            stamps["started_at"] = at
        elif status in FINISHED:
            stamps["ended_at"] = at
        return replace(self, status=status, **stamps, **changes)
