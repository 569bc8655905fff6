"""Wire schemas of every REST body and socket.io event: parsed here before anything acts.

Models forbid unknown fields and bound every string, so a malformed or hostile payload is
refused with `invalid_payload` and a pointer to the offending field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rooms.calls.recordings import TrackSource
from rooms.consults.consult import MediaMode, Sex
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty
from rooms.reporting.review import MAX_COMMENT_CHARS, MAX_OFFSET, MAX_PAGE

ConsultId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
PeerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- REST requests -------------------------------------------------------------------------


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class PatientIn(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    sex: Sex
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    summary: LongText = ""


class BookConsultRequest(Strict):
    patient: PatientIn
    specialty: Specialty
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    scheduled_at: AwareDatetime
    intake: dict[str, Any] = Field(default_factory=dict)
    specialist_id: int | None = None
    media_mode: Literal[MediaMode.P2P] = MediaMode.P2P


class EmptyRequest(Strict):
    """A body with nothing in it: `{}` (or no body at all)."""


class ReasonRequest(Strict):
    reason: LongText = ""


class EndConsultRequest(Strict):
    conclusion: LongText = ""


# ---- REST responses ------------------------------------------------------------------------


class ErrorOut(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    institution_id: int
    institution_name: str
    specialty: Specialty | None


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


class PersonRef(BaseModel):
    id: int
    display_name: str


class InstitutionRef(BaseModel):
    id: int
    name: str


class ConsultOut(BaseModel):
    id: str
    version: int
    """Goes up with every saved change of the consult: of two views of one consult, a client
    keeps the one with the higher version (an ack may arrive after a newer `consult-state`)."""
    status: ConsultStatus
    media_mode: MediaMode
    specialty: Specialty
    reason: str
    patient: PatientIn
    intake: dict[str, Any]
    scheduled_at: datetime
    requested_at: datetime
    accepted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    closing_note: str
    requesting_institution: InstitutionRef
    requesting_doctor: PersonRef
    specialist: PersonRef | None
    invited: list[PersonRef] = []
    """Further specialists invited into the consult (multi-disciplinary), by id."""


class InviteRequest(Strict):
    specialist_id: Annotated[int, Field(ge=1)]


class ConsultListOut(BaseModel):
    consults: list[ConsultOut]
    next_offset: int | None = None
    """Supervisor searches: the `offset` of the next page; None when this was the last."""


class SpecialistOut(BaseModel):
    id: int
    display_name: str
    specialty: Specialty | None
    institution_name: str


class SpecialistListOut(BaseModel):
    specialists: list[SpecialistOut]


class AuditEntryOut(BaseModel):
    id: int | None
    at: datetime
    actor_id: int | None
    actor: PersonRef | None = None
    """The actor's name; None for the system itself."""
    action: str
    detail: dict[str, Any]


class AuditTrailOut(BaseModel):
    entries: list[AuditEntryOut]


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


# ---- socket.io events ----------------------------------------------------------------------


class JoinEvent(Strict):
    consult_id: ConsultId


class LeaveEvent(Strict):
    consult_id: ConsultId


class SessionDescription(Strict):
    type: Literal["offer", "answer", "rollback"]
    sdp: str = ""


class IceCandidate(Strict):
    candidate: str
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class SignalEvent(Strict):
    """An offer, answer or ICE candidate for one other participant of the consult."""

    consult_id: ConsultId
    to: PeerId
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None
    """A null candidate after `description`-less signal means end of candidates."""
    end_of_candidates: bool = False

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SignalEvent:
        kinds = sum(
            [self.description is not None, self.candidate is not None, self.end_of_candidates]
        )
        if kinds != 1:
            raise ValueError(
                "a signal carries exactly one of description, candidate or end_of_candidates"
            )
        return self


# ---- relay and recording events ------------------------------------------------------------

Mid = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]


class OfferDescription(Strict):
    type: Literal["offer"]
    sdp: str


class AnswerDescription(Strict):
    type: Literal["answer"]
    sdp: str


class RelayPublishEvent(Strict):
    """The client's offer on its publish connection, naming the source of each sending mid."""

    consult_id: ConsultId
    description: OfferDescription
    sources: Annotated[dict[Mid, TrackSource], Field(max_length=8)]

    @model_validator(mode="after")
    def _one_camera_one_microphone_one_second(self) -> RelayPublishEvent:
        named = list(self.sources.values())
        if any(named.count(source) > 1 for source in TrackSource):
            raise ValueError("each source (camera, microphone, second) may be published once")
        return self


class RelayAnswerEvent(Strict):
    consult_id: ConsultId
    description: AnswerDescription


class RelayCandidateEvent(Strict):
    consult_id: ConsultId
    leg: Literal["publish", "subscribe"]
    candidate: IceCandidate


class ConsultEvent(Strict):
    """An event that names only its consult (`recording-start`, `recording-stop`)."""

    consult_id: ConsultId


class P2pFailedEvent(Strict):
    """The direct link to `peer_id` did not come up despite ICE restarts; `generation` is the
    reporting page's count of ICE restarts on that link, so that a late report is told apart."""

    consult_id: ConsultId
    peer_id: PeerId
    generation: int = Field(ge=0, le=1_000_000)


class RecordingConsentEvent(Strict):
    consult_id: ConsultId
    granted: bool


class RecordingOut(BaseModel):
    id: str
    consult_id: str
    participant: PersonRef
    source: TrackSource
    kind: str
    codec: str
    container: str
    started_offset_s: float
    duration_s: float
    bytes: int
    sha256: str
    recovered: bool
    created_at: datetime


class RecordingListOut(BaseModel):
    recordings: list[RecordingOut]


class PlaybackOut(BaseModel):
    url: str
    expires_at: datetime


# ---- notes ---------------------------------------------------------------------------------

NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
"""`rooms.records.notes.MAX_NOTE_CHARS` characters after trimming."""


class NoteAddEvent(Strict):
    consult_id: ConsultId
    text: NoteText


class NoteOut(BaseModel):
    id: str
    author: PersonRef
    text: str
    at: datetime
    recording_offset_s: float | None


class NoteListOut(BaseModel):
    notes: list[NoteOut]


# ---- statistics (docs/statistics.md) -------------------------------------------------------

MonthText = Annotated[str, StringConstraints(max_length=7)]


class StatisticsQuery(Strict):
    """`GET /api/statistics[.csv]` query: months as YYYY-MM (checked by
    rooms.reporting.statistics)."""

    from_: MonthText = Field(alias="from")
    to: MonthText
    institution: int | None = Field(default=None, ge=1)
    specialty: Specialty | None = None


class DurationOut(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class FiguresOut(BaseModel):
    requested: int
    held: int
    declined: int
    expired: int
    cancelled: int
    ended_unheld: int
    open: int
    time_to_accept: DurationOut
    booking_to_start: DurationOut
    duration: DurationOut
    relayed: int
    peer_to_peer: int
    relay_share: float | None


class StatisticsRowOut(FiguresOut):
    month: str
    institution_id: int
    institution_name: str
    specialty: Specialty


class StatisticsMonthOut(FiguresOut):
    month: str


class StatisticsOut(BaseModel):
    from_month: str
    to_month: str
    timezone: str
    institution_id: int | None
    specialty: Specialty | None
    rows: list[StatisticsRowOut]
    months: list[StatisticsMonthOut]
    overall: FiguresOut
    institutions: list[InstitutionRef]
    """The institutions the caller may filter by (their own and everything below it)."""


# ---- supervisor review ---------------------------------------------------------------------


class ConsultSearchQuery(Strict):
    """`GET /api/consults` query parameters; all but `status` are for supervisors and admins."""

    status: list[ConsultStatus] = Field(default_factory=list, max_length=len(ConsultStatus))
    specialty: list[Specialty] = Field(default_factory=list, max_length=len(Specialty))
    institution: Annotated[int, Field(ge=1)] | None = None
    scheduled_from: AwareDatetime | None = Field(default=None, alias="from")
    scheduled_to: AwareDatetime | None = Field(default=None, alias="to")
    recorded: Literal["yes", "no"] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = MAX_PAGE
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


CommentText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMENT_CHARS)
]
"""At most `rooms.reporting.review.MAX_COMMENT_CHARS` characters after trimming."""


class CommentRequest(Strict):
    text: CommentText
    timeline_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class CommentOut(BaseModel):
    id: str
    author: PersonRef
    text: str
    at: datetime
    timeline_s: float | None


class CommentListOut(BaseModel):
    comments: list[CommentOut]


class TimelineSessionOut(BaseModel):
    index: int
    started_at: datetime
    start_s: float
    duration_s: float


class TimelineTrackOut(BaseModel):
    recording: RecordingOut
    session: int
    start_s: float
    end_s: float


class TimelineMarkerOut(BaseModel):
    note: NoteOut
    session: int | None
    at_s: float | None


class TimelineOut(BaseModel):
    duration_s: float
    sessions: list[TimelineSessionOut]
    tracks: list[TimelineTrackOut]
    markers: list[TimelineMarkerOut]


class ReviewOut(BaseModel):
    consult: ConsultOut
    timeline: TimelineOut


class InstitutionOut(BaseModel):
    id: int
    name: str
    level: str
    parent_id: int | None


class InstitutionListOut(BaseModel):
    institutions: list[InstitutionOut]


# ---- attachments ---------------------------------------------------------------------------


class AttachmentOut(BaseModel):
    id: str
    consult_id: str
    file_name: str
    media_type: str
    bytes: int
    sha256: str
    uploaded_by: PersonRef
    uploaded_at: datetime
    content_url: str
    """`GET` it with the bearer token; the bytes come with `media_type`."""


class AttachmentListOut(BaseModel):
    attachments: list[AttachmentOut]


class AttachmentAddedEvent(BaseModel):
    """Sent as `attachment-added` to everyone who may see the consult's attachments."""

    consult_id: str
    attachment: AttachmentOut


# ---- duty roster, escalation notices, Web Push ---------------------------------------------

ShiftId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Base64Url = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+=*$")
]


class ShiftIn(Strict):
    specialist_id: Annotated[int, Field(ge=1)]
    specialty: Specialty
    start: AwareDatetime
    end: AwareDatetime
    tier: Annotated[int, Field(ge=0, le=3)] = 0


class ShiftOut(BaseModel):
    id: str
    specialist: PersonRef
    specialty: Specialty
    start: datetime
    end: datetime
    tier: int


class ShiftListOut(BaseModel):
    shifts: list[ShiftOut]


class OnDutyOut(BaseModel):
    specialty: Specialty
    at: datetime
    on_duty: list[ShiftOut]


class PushKeysIn(Strict):
    p256dh: Base64Url
    auth: Annotated[
        str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_\-]+=*$")
    ]


class PushSubscriptionIn(Strict):
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    keys: PushKeysIn
    expirationTime: int | None = None


class PushUnsubscribeIn(Strict):
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=1000)]


class VapidKeyOut(BaseModel):
    public_key: str
    """The server's VAPID public key, base64url (uncompressed P-256 point): the browser's
    `applicationServerKey`."""


class NoticeOut(BaseModel):
    kind: Literal["notify", "next_on_duty", "supervisors", "reminder"]
    step: int | None
    at: datetime
    recipients: list[PersonRef]
    fallback: bool = False


class NoticeListOut(BaseModel):
    notices: list[NoticeOut]


class SubscribedOut(BaseModel):
    endpoint: str
