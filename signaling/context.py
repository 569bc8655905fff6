"""Everything the REST handlers and socket.io events share, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from rooms.calls.media_port import MediaNode, RecordingFiles
from rooms.calls.recording_service import RecordingService
from rooms.consults.expiry import ExpiryService
from rooms.consults.invitations import InvitationService
from rooms.consults.people import User
from rooms.consults.service import ConsultService
from rooms.duty.services import EscalationService, PushSubscriptions, RosterService
from rooms.records.attachments import AttachmentService
from rooms.records.notes import NoteService
from rooms.reporting.review import ReviewService
from rooms.reporting.statistics import DEFAULT_REPORT_TIMEZONE
from signaling import errors
from signaling.auth import Claims, PlaybackTokens, TokenIssuer
from signaling.errors import ApiError
from signaling.ice import IceConfig
from signaling.limits import Limits
from signaling.push import WebPushSender
from signaling.ratelimit import RateLimiter

T = TypeVar("T")


def built_with(part: T | None, what: str) -> T:
    """A part of the server that may be left out (`Signaling`'s optional fields);
    `ApiError` (500) naming `what` on a server built without it."""
    if part is None:
        raise ApiError(errors.INTERNAL, f"this server was built without {what}", 500)
    return part


@dataclass
class Signaling:
    service: ConsultService
    tokens: TokenIssuer
    limits: Limits = field(default_factory=Limits)
    ice: IceConfig = field(default_factory=IceConfig)
    media: MediaNode | None = None
    """The relay and recorder; None runs peer-to-peer only (relay events are refused)."""
    recordings: RecordingService | None = None
    recording_files: RecordingFiles | None = None
    playback: PlaybackTokens | None = None
    notes: NoteService | None = None
    """Notes taken during consults; None on a server built without them (refused)."""
    report_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_REPORT_TIMEZONE))
    """The zone statistics cut months in (REPORT_TIMEZONE)."""
    review: ReviewService | None = None
    """Supervisor review (filters, review timeline, comments); None: refused."""
    attachments: AttachmentService | None = None
    """Files attached to consults; None on a server built without them (refused)."""
    public_url: str = ""
    """The server's address for others (`PUBLIC_URL`), used in exported identifiers and links;
    empty: the address each request reached."""
    roster: RosterService | None = None
    """The on-duty roster; None on a server built without it (roster endpoints refused)."""
    escalation: EscalationService | None = None
    """Who is told of a request and when; None tells the whole specialty at once, no steps."""
    push: PushSubscriptions | None = None
    pusher: WebPushSender | None = None
    """Web Push with the server's VAPID key; None sends no pushes."""
    expiry: ExpiryService | None = None
    """Expires requests nobody accepted and consults nobody opened; None: nothing expires."""
    duty_tick: timedelta = timedelta(seconds=15)
    """How often the escalation scheduler wakes (`DUTY_TICK_SECONDS`)."""
    invitations: InvitationService | None = None
    """Invitations of further specialists (multi-disciplinary consults); None: refused."""
    login_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.login_limiter = RateLimiter(self.limits.login_attempts_per_minute)

    async def authenticate(self, token: str | None) -> User:
        """The active user a token speaks for; `ApiError` (401) otherwise."""
        user, _claims = await self.authenticate_claims(token)
        return user

    async def authenticate_claims(self, token: str | None) -> tuple[User, Claims]:
        """The active user a token speaks for, and the token's claims; `ApiError` (401)."""
        claims = self.tokens.verify(token)
        user = await self.service.store.get_user(claims.user_id)
        if user is None or not user.active:
            raise ApiError(
                errors.TOKEN_INVALID, "the token's user no longer exists or is disabled", 401
            )
        return user, claims
