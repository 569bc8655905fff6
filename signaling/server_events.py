"""Every event the server sends over socket.io, as a schema of its payload (docs/protocol.md).

The client events have theirs in `signaling.schemas.CLIENT_EVENTS` (the models that validate
them); these describe what the emitters (`signaling.room_notifier`, `signaling.hub`,
`signaling.events`, `signaling.sessions`) put on the wire, for the AsyncAPI document
(`signaling.asyncapi`, `GET /api/asyncapi.json`). `tests/integration/test_asyncapi.py` checks
that the set of names is the set the code emits, and that payloads a real server sends in a
consult validate against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rooms.calls.media_path import RelayReason
from rooms.calls.notifier import P2pLinkState, RecordingNotice
from rooms.calls.recordings import SessionState, TrackSource
from rooms.consults.consult import MediaMode
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role
from rooms.duty.escalation import NoticeKind
from rooms.training.questions import QuestionStatus
from signaling.http.attachments import AttachmentAddedEvent
from signaling.http.notes import NoteOut
from signaling.schemas import (
    AnswerDescription,
    ConsultOut,
    IceCandidate,
    InstitutionRef,
    OfferDescription,
    PersonRef,
    SessionDescription,
)


class PersonOut(BaseModel):
    id: int
    display_name: str
    role: Role


class PeerOut(BaseModel):
    peer_id: str
    """The connection's socket.io id, the `to` of a `signal`."""
    user: PersonOut


class SignalRelayed(BaseModel):
    """A `signal` passed on from another participant: exactly one of `description`,
    `candidate`, `end_of_candidates` (true)."""

    model_config = ConfigDict(populate_by_name=True)

    consult_id: str
    from_: str = Field(alias="from")
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None
    end_of_candidates: Literal[True] | None = None


class PeerJoined(BaseModel):
    consult_id: str
    peer: PeerOut


class PeerLeft(BaseModel):
    consult_id: str
    peer_id: str
    reason: Literal[
        "left", "disconnected", "replaced", "invitation_declined", "invitation_withdrawn"
    ]


class Replaced(BaseModel):
    consult_id: str
    reason: Literal["replaced"]


class RemovedFromConsult(BaseModel):
    consult_id: str
    reason: Literal["invitation_declined", "invitation_withdrawn"]


class SessionEnded(BaseModel):
    code: Literal["token_expired", "user_disabled"]
    message: str


class ConsultNews(BaseModel):
    """`consult-state`, `consult-invited`, `consult-requested`: the consult as the recipient may
    see it."""

    consult: ConsultOut


class InvitationClosed(BaseModel):
    consult_id: str
    reason: Literal["declined", "withdrawn"]


class ConsultEscalated(BaseModel):
    consult_id: str
    kind: NoticeKind
    step: int
    at: datetime
    recipients: list[PersonRef]
    fallback: bool


class ConsultReminder(BaseModel):
    consult_id: str
    scheduled_at: datetime


class RequestClosed(BaseModel):
    consult_id: str
    status: ConsultStatus


class MediaPathChanged(BaseModel):
    consult_id: str
    path: MediaMode
    reason: RelayReason


class RelayRestarted(BaseModel):
    """The media node carrying the consult's relay was lost; publish and subscribe again."""

    consult_id: str
    reason: Literal["media_node_lost"]


class Decliner(BaseModel):
    id: int
    display_name: str


class RecordingOut(BaseModel):
    """The recording as the pages show it (also in the `join` ack and the recording acks)."""

    state: SessionState
    started_at: datetime | None
    pending: list[int]
    """Ids of the present people who have not answered the consent request yet."""
    declined_by: Decliner | None
    notice: RecordingNotice | None


class RecordingState(BaseModel):
    consult_id: str
    recording: RecordingOut


class Requester(BaseModel):
    id: int | None
    display_name: str


class RecordingConsentRequested(BaseModel):
    consult_id: str
    requested_by: Requester


class OfferedTrackOut(BaseModel):
    peer_id: str
    user: PersonOut
    source: TrackSource
    kind: Literal["audio", "video"]


class RelayOffer(BaseModel):
    consult_id: str
    description: OfferDescription
    tracks: dict[str, OfferedTrackOut]
    """mid → whose track that m-section carries."""


class P2pCheck(BaseModel):
    consult_id: str
    peer_id: str
    generation: int


class P2pCheckAnswer(BaseModel):
    """What the page answers to `p2p-check` (its ack)."""

    state: P2pLinkState
    generation: int = Field(ge=0)


class NoteAdded(BaseModel):
    consult_id: str
    note: NoteOut


class Rejoin(BaseModel):
    """The consult's room went with the signaling process that held it (several processes,
    `REDIS_URL`): join again, which opens the room in a process that is alive."""

    consult_id: str
    reason: Literal["room_moved"]


class PeerMediaMode(BaseModel):
    """Another participant went audio-only or back to video (docs/network.md)."""

    consult_id: str
    peer_id: str
    audio_only: bool
    reason: Literal["link", "chosen"]


class QuestionOut(BaseModel):
    """A trainee's question (`rooms.training.questions`); `asked_at` places it in the
    broadcast (the replay's markers, against the segments' `EXT-X-PROGRAM-DATE-TIME`)."""

    id: str
    training_id: str
    text: str
    asked_at: datetime
    status: QuestionStatus
    asker: PersonRef
    institution: InstitutionRef


class QuestionNews(BaseModel):
    """`question-asked` (to the moderators), `question-shown` (to every viewer),
    `question-dismissed` (to the moderators)."""

    training_id: str
    question: QuestionOut


class StageOut(BaseModel):
    """Who is on stage in a training (`rooms.training.stage`)."""

    training_id: str
    on_stage: PersonRef | None
    """The trainee the lecturer brought on stage; None: nobody."""
    joined: bool
    """Whether they publish (their page had their consent): the `stage` stream follows."""


class StageHands(BaseModel):
    """`stage-hands` (to the moderators): who asks to go on stage, the earliest first."""

    training_id: str
    hands: list[PersonRef]


class StageOffer(BaseModel):
    """`stage-offer` (to the lecturer's and the on-stage trainee's pages): the relay's offer of
    the other side's media; answer with `stage-answer`."""

    training_id: str
    description: OfferDescription
    sources: dict[str, str]
    """mid → `camera`, `microphone` or `second` (the lecturer's screen)."""


SERVER_EVENTS: dict[str, type[BaseModel]] = {
    "signal": SignalRelayed,
    "peer-joined": PeerJoined,
    "peer-left": PeerLeft,
    "replaced": Replaced,
    "removed-from-consult": RemovedFromConsult,
    "session-ended": SessionEnded,
    "consult-state": ConsultNews,
    "consult-invited": ConsultNews,
    "consult-requested": ConsultNews,
    "invitation-closed": InvitationClosed,
    "attachment-added": AttachmentAddedEvent,
    "consult-escalated": ConsultEscalated,
    "consult-reminder": ConsultReminder,
    "request-closed": RequestClosed,
    "media-path": MediaPathChanged,
    "recording-state": RecordingState,
    "recording-consent-requested": RecordingConsentRequested,
    "relay-offer": RelayOffer,
    "relay-restart": RelayRestarted,
    "p2p-check": P2pCheck,
    "note-added": NoteAdded,
    "rejoin": Rejoin,
    "peer-media-mode": PeerMediaMode,
    "question-asked": QuestionNews,
    "question-shown": QuestionNews,
    "question-dismissed": QuestionNews,
    "stage-changed": StageOut,
    "stage-hands": StageHands,
    "stage-offer": StageOffer,
}
"""Every server → client event and the schema of its payload."""

SERVER_EVENT_REPLIES: dict[str, type[BaseModel]] = {"p2p-check": P2pCheckAnswer}
"""Server events sent with an ack, and the schema of the client's answer."""


# ---- the acks of the client events (the success answer; a refusal is `{ok: false, error}`) --


class Okay(BaseModel):
    ok: Literal[True]


class IceServer(BaseModel):
    """An `RTCIceServer`: `ICE_SERVERS` as configured, or a TURN entry with fresh credentials."""

    model_config = ConfigDict(extra="allow")
    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class JoinAck(Okay):
    peer_id: str
    consult: ConsultOut
    peers: list[PeerOut]
    ice_servers: list[IceServer]
    ice_transport_policy: Literal["all", "relay"]
    """The page's `iceTransportPolicy` (ICE_TRANSPORT_POLICY): `relay` = through TURN only."""
    ice_renew_after_seconds: float | None
    """When to ask for fresh TURN credentials (`ice-servers`), in seconds from this ack;
    null: never (no minted credentials, or TURN_RENEW_PERCENT=0)."""
    media_path: MediaMode
    media_path_reason: RelayReason | None
    recording: RecordingOut
    notes: list[NoteOut]


class IceServersAck(Okay):
    ice_servers: list[IceServer]
    """Like the join ack's, with freshly minted TURN credentials."""
    ice_transport_policy: Literal["all", "relay"]
    ice_renew_after_seconds: float | None
    """When to ask again, in seconds from this ack (null: never)."""


class RelayPublishAck(Okay):
    description: AnswerDescription


class P2pFailedAck(Okay):
    media_path: MediaMode
    ignored: Literal["stale", "recovered", "unconfirmed", "gone"] | None


class RecordingAck(Okay):
    recording: RecordingOut


class NoteAddAck(Okay):
    note: NoteOut


class QualityReportAck(Okay):
    rating: Literal["good", "fair", "poor", "audio_only"]
    """The report's figures rated by `rooms.calls.quality.rating` (the live indicator)."""


class TrainingWatchAck(Okay):
    training_id: str
    moderator: bool
    """Whether the user shows and dismisses questions (their list holds the pending ones)."""
    questions: list[QuestionOut]
    """The shown questions, the earliest first; every question for a moderator."""
    stage: StageOut | None = None
    """Who is on stage now."""
    hands: list[PersonRef] = []
    """Raised hands (a moderator's watch only)."""


class QuestionAck(Okay):
    question: QuestionOut


class StageAck(Okay):
    stage: StageOut


class StageHandAck(Okay):
    raised: bool


class StageAttendee(BaseModel):
    """A trainee following the training now, as the lecturer's list shows them."""

    id: int
    display_name: str
    institution: InstitutionRef
    hand_raised: bool
    on_stage: bool


class StageAttendeesAck(Okay):
    """`stage-attendees`: a page of the trainees attending now, by name."""

    attendees: list[StageAttendee]
    total: int
    """How many match the query (all pages)."""
    offset: int
    limit: int


class StagePublishAck(Okay):
    description: AnswerDescription


CLIENT_EVENT_ACKS: dict[str, type[BaseModel]] = {
    "join": JoinAck,
    "leave": Okay,
    "signal": Okay,
    "relay-publish": RelayPublishAck,
    "relay-answer": Okay,
    "relay-candidate": Okay,
    "p2p-failed": P2pFailedAck,
    "recording-start": RecordingAck,
    "recording-consent": RecordingAck,
    "recording-stop": RecordingAck,
    "note-add": NoteAddAck,
    "quality-report": QualityReportAck,
    "media-mode": Okay,
    "ice-servers": IceServersAck,
    "training-watch": TrainingWatchAck,
    "question-ask": QuestionAck,
    "question-moderate": QuestionAck,
    "stage-hand": StageHandAck,
    "stage-invite": StageAck,
    "stage-attendees": StageAttendeesAck,
    "stage-remove": StageAck,
    "stage-leave": StageAck,
    "stage-publish": StagePublishAck,
    "stage-answer": Okay,
}
"""Each client event's success ack (`signaling.events`)."""
