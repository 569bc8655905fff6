"""Wire schemas shared by the REST API and the socket.io events, and every socket.io event.

Each REST feature keeps its own request and response schemas beside its routes
(`signaling/http/`); what is here is what several of them and the socket.io side show alike
(a consult, a person, an institution) and the payloads of the socket.io events.

Models forbid unknown fields and bound every string, so a malformed or hostile payload is
refused with `invalid_payload` and a pointer to the offending field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from rooms.calls.recordings import TrackSource
from rooms.consults.consult import MediaMode, Sex
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty
from rooms.training.questions import MAX_QUESTION_CHARS, Verdict

ConsultId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

MAX_ID = 2**63 - 1
"""The largest integer the database holds (SQLite INTEGER, PostgreSQL BIGINT): every id a client
sends lies in 1 … MAX_ID, so a larger one is refused as `invalid_payload`, not a database error."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A user's, institution's or other row's id as a client sends it."""

EARLIEST_YEAR = 1900
LATEST_YEAR = 2999
"""Every time a client sends lies in these years (inclusive): far from `datetime`'s own limits
(years 1 and 9999), so that moving it to UTC, adding a listing window or writing it into an
export cannot overflow."""


def iso_time(value: object) -> object:
    """An ISO 8601 string read as a `datetime` (its zone checked after); anything else refused.

    Without this, pydantic reads a number (`0`, or the string `"0"`) as Unix seconds: a time must
    be written out, not counted."""
    if isinstance(value, datetime):
        return value  # built in Python (tests, the server itself), not sent
    if not isinstance(value, str):
        raise ValueError("a time is an ISO 8601 string with a zone, e.g. 2026-11-23T09:00:00Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 time with a zone (e.g. 2026-11-23T09:00:00Z)") from None


def within_years(value: datetime) -> datetime:
    """`value` in UTC when it lies in `EARLIEST_YEAR` … `LATEST_YEAR`; ValueError otherwise."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"a time must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return value.astimezone(UTC)


WireTime = Annotated[AwareDatetime, BeforeValidator(iso_time), AfterValidator(within_years)]
"""A time a client sends: an ISO 8601 string with a zone, in `EARLIEST_YEAR` … `LATEST_YEAR`,
read as UTC."""


PeerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
]


def _refuse_controls(value: str, allowed: str) -> str:
    for char in value:
        if (char < " " or char == "\x7f") and char not in allowed:
            raise ValueError(f"contains the control character U+{ord(char):04X}")
        if "\ud800" <= char <= "\udfff":
            # JSON's "\ud800" alone: no character, and no UTF-8 the database could store.
            raise ValueError(f"contains the lone surrogate U+{ord(char):04X}")
    return value


def single_line(value: str) -> str:
    """`value` without any control character (NUL, escape, line breaks, tabs …) or lone
    surrogate."""
    return _refuse_controls(value, "")


def plain_text(value: str) -> str:
    """`value` without control characters other than tab and line breaks, nor lone
    surrogates."""
    return _refuse_controls(value, "\t\n\r")


LongText = Annotated[str, StringConstraints(max_length=4000), AfterValidator(plain_text)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- shared views --------------------------------------------------------------------------


class PatientIn(Strict):
    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        AfterValidator(single_line),
    ]
    sex: Sex
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    summary: LongText = ""


class PatientOut(BaseModel):
    """The patient as stored (`PatientIn` as it was accepted)."""

    name: str
    sex: Sex
    age_years: int | None = None
    summary: str = ""


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    institution_id: int
    institution_name: str
    specialty: Specialty | None


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
    patient: PatientOut
    intake: dict[str, Any]
    scheduled_at: datetime
    requested_at: datetime
    accepted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    closing_note: str
    """Why it was declined or cancelled; once ended, the specialist's conclusion."""
    ended_by: PersonRef | None = None
    """Who ended the consult (the specialist or the exam room); None until it ended."""
    requesting_institution: InstitutionRef
    requesting_doctor: PersonRef
    specialist: PersonRef | None
    invited: list[PersonRef] = []
    """Further specialists invited into the consult (multi-disciplinary), by id."""


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


# ---- notes ---------------------------------------------------------------------------------

NoteText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(plain_text),
]
"""`rooms.records.notes.MAX_NOTE_CHARS` characters after trimming, without control characters
other than tab and line breaks, and without lone surrogates."""


class NoteAddEvent(Strict):
    consult_id: ConsultId
    text: NoteText


# ---- quality telemetry ---------------------------------------------------------------------


def _bounded(low: float, high: float) -> Any:
    return Field(ge=low, le=high, allow_inf_nan=False)


Kbps = Annotated[float, _bounded(0, 100_000)]
Percent = Annotated[float, _bounded(0, 100)]
Millis = Annotated[float, _bounded(0, 60_000)]
Count = Annotated[int, Field(ge=0, le=100_000)]


class QualityReportEvent(Strict):
    """A page's stats summary over the last `interval_s` seconds (`quality-report`); every
    number bounded, so a report cannot carry a figure no browser measures. What each field
    means: docs/network.md, "Quality telemetry"."""

    consult_id: ConsultId
    path: MediaMode
    interval_s: Annotated[float, _bounded(0.5, 30)]
    bitrate_in_kbps: Kbps
    bitrate_out_kbps: Kbps
    loss_pct: Percent
    rtt_ms: Annotated[float | None, _bounded(0, 60_000)] = None
    jitter_ms: Annotated[float | None, _bounded(0, 60_000)] = None
    frames_decoded: Count = 0
    frames_dropped: Count = 0
    freezes: Annotated[int, Field(ge=0, le=1_000)] = 0
    freeze_ms: Annotated[float, _bounded(0, 300_000)] = 0.0
    audio_concealed_pct: Percent = 0.0
    audio_only: bool = False


# ---- network adaptation (docs/network.md) -------------------------------------------------


class MediaModeEvent(Strict):
    """The sending page went audio-only (its link is too thin or too lossy, or the participant
    chose it), or back to sending video: the others are told with `peer-media-mode`."""

    consult_id: ConsultId
    audio_only: StrictBool
    reason: Literal["link", "chosen"]
    """`link`: the page's own adaptation decided it; `chosen`: the participant pressed the
    call bar's audio-only button."""


# ---- TURN credentials (docs/deployment.md, "TURN") ------------------------------------------


class IceServersEvent(Strict):
    """Fresh TURN credentials for the caller's connections in a consult room it is in
    (`ice-servers`): the page renews them before those of its join expire."""

    consult_id: ConsultId


# ---- trainings: questions ------------------------------------------------------------------

TrainingId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

QuestionText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS),
    AfterValidator(plain_text),
]
"""`rooms.training.questions.MAX_QUESTION_CHARS` characters after trimming, without control
characters other than tab and line breaks, and without lone surrogates."""


class TrainingWatchEvent(Strict):
    """Follow a training's questions (`training-watch`): its audience and its moderators."""

    training_id: TrainingId


class QuestionAskEvent(Strict):
    training_id: TrainingId
    text: QuestionText


class QuestionModerateEvent(Strict):
    training_id: TrainingId
    question_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    verdict: Verdict


class StageHandEvent(Strict):
    """A trainee raises (or lowers) a hand to ask to go on stage (`stage-hand`)."""

    training_id: TrainingId
    raised: bool


class StageInviteEvent(Strict):
    """A lecturer brings a trainee who follows the training on stage (`stage-invite`)."""

    training_id: TrainingId
    user_id: Id


class StageAttendeesEvent(Strict):
    """A lecturer asks who attends the training now, to bring one of them on stage (whether
    they raised a hand or not): a page of them, searched by name (`stage-attendees`)."""

    training_id: TrainingId
    query: Annotated[str, StringConstraints(max_length=100)] = ""
    """Part of the display name or user name (case ignored); empty: everybody."""
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0
    limit: Annotated[int, Field(ge=1, le=50)] = 20


class StageEvent(Strict):
    """`stage-remove` (a lecturer takes the trainee off stage), `stage-leave` (the trainee
    leaves it)."""

    training_id: TrainingId


class StagePublishEvent(Strict):
    """The on-stage trainee's offer: camera and microphone, ICE candidates included."""

    training_id: TrainingId
    description: OfferDescription
    sources: Annotated[
        dict[Mid, Literal["camera", "microphone"]], Field(min_length=1, max_length=2)
    ]

    @model_validator(mode="after")
    def _each_source_once(self) -> StagePublishEvent:
        named = list(self.sources.values())
        if len(set(named)) != len(named):
            raise ValueError("each source is sent on one m-section only")
        return self


class StageAnswerEvent(Strict):
    """The lecturer's or the trainee's answer to `stage-offer` (candidates included)."""

    training_id: TrainingId
    description: AnswerDescription


CLIENT_EVENTS: dict[str, type[Strict]] = {
    "join": JoinEvent,
    "leave": LeaveEvent,
    "signal": SignalEvent,
    "relay-publish": RelayPublishEvent,
    "relay-answer": RelayAnswerEvent,
    "relay-candidate": RelayCandidateEvent,
    "p2p-failed": P2pFailedEvent,
    "recording-start": ConsultEvent,
    "recording-consent": RecordingConsentEvent,
    "recording-stop": ConsultEvent,
    "note-add": NoteAddEvent,
    "quality-report": QualityReportEvent,
    "media-mode": MediaModeEvent,
    "ice-servers": IceServersEvent,
    "training-watch": TrainingWatchEvent,
    "question-ask": QuestionAskEvent,
    "question-moderate": QuestionModerateEvent,
    "stage-hand": StageHandEvent,
    "stage-invite": StageInviteEvent,
    "stage-attendees": StageAttendeesEvent,
    "stage-remove": StageEvent,
    "stage-leave": StageEvent,
    "stage-publish": StagePublishEvent,
    "stage-answer": StageAnswerEvent,
}
"""Every client → server event and the model its handler validates the payload with
(`signaling.events.ConsultEvents`; the packet guard lets through only these names). The AsyncAPI
document (`signaling.asyncapi`) is built from the same models."""
