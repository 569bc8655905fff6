"""What the socket.io side of a consult room shares, built once by the composition root.

The REST features do not read this: each takes its own dependencies (`signaling.http`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.calls.media_port import MediaNode
from rooms.calls.quality_service import QualityService
from rooms.calls.recording_service import RecordingService
from rooms.consults.people import User
from rooms.consults.service import ConsultService
from rooms.records.notes import NoteService
from rooms.training.question_service import QuestionService
from rooms.training.stage import StageService
from signaling.auth import Claims, TokenIssuer, active_user
from signaling.ice import IceConfig
from signaling.known_users import UserLookup
from signaling.limits import Limits
from signaling.metrics import SignalingMetrics


@dataclass
class Signaling:
    service: ConsultService
    tokens: TokenIssuer
    notes: NoteService
    """Notes taken during consults (`note-add`, and the notes in the join answer)."""
    limits: Limits = field(default_factory=Limits)
    ice: IceConfig = field(default_factory=IceConfig)
    media: MediaNode | None = None
    """The relay and recorder; None runs peer-to-peer only (relay events are refused)."""
    recordings: RecordingService | None = None
    metrics: SignalingMetrics = field(default_factory=SignalingMetrics)
    """Joins, their latency and errors by code (`/metrics`)."""
    quality: QualityService | None = None
    """Call quality telemetry (`quality-report`); None refuses reports (`quality_unavailable`)."""
    users: UserLookup | None = None
    """Where the user behind a token is looked up (`KnownUsers`); None: the store, every time."""
    questions: QuestionService | None = None
    """Trainees' questions (`training-watch`, `question-ask`, `question-moderate`); None
    refuses them (`trainings_unavailable`)."""
    stage: StageService | None = None
    """The trainee on stage (`stage-*` events); None refuses them (`trainings_unavailable`)."""

    async def authenticate(self, token: str | None) -> User:
        """The active user a token speaks for; `ApiError` (401) otherwise."""
        user, _claims = await self.authenticate_claims(token)
        return user

    async def authenticate_claims(self, token: str | None) -> tuple[User, Claims]:
        """The active user a token speaks for, and the token's claims; `ApiError` (401)."""
        return await active_user(self.tokens, self.users or self.service.store, token)
