"""Every error a client can see: one stable code, one HTTP status, mapped in one place."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rooms.calls.media_port import RecordingStorageUnavailable
from rooms.consults.errors import (
    ConclusionRequired,
    ConcurrentUpdate,
    ConsultFull,
    DatabaseUnavailable,
    DomainError,
    IllegalTransition,
    InvalidBooking,
    MediaRefused,
    NotFound,
    NotInConsult,
    PermissionDenied,
    RelayUnavailable,
    StorageBusy,
    StorageFull,
)
from rooms.consults.intake import InvalidIntake
from rooms.consults.invitations import AlreadyInvited, InvalidInvitation, TooManyInvitations
from rooms.duty.push import InvalidSubscription
from rooms.duty.roster import InvalidShift
from rooms.records.attachments import AttachmentTooLarge, InvalidAttachment, TooManyAttachments
from rooms.reporting.review import InvalidComment, InvalidFilter
from rooms.reporting.statistics import InvalidPeriod
from rooms.training.questions import InvalidQuestion, QuestionModerated, TrainingNotLive
from rooms.training.stage import NotAttending, NotOnStage, TooManyHands
from rooms.training.training import InvalidTraining


class ApiError(Exception):
    """An error raised by the edge itself (auth, validation, limits)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


# Stable codes of the edge (documented in docs/protocol.md).
TOKEN_MISSING = "token_missing"
TOKEN_EXPIRED = "token_expired"
TOKEN_INVALID = "token_invalid"
TOKEN_WRONG_AUDIENCE = "token_wrong_audience"
BAD_CREDENTIALS = "bad_credentials"
INVALID_PAYLOAD = "invalid_payload"
INVALID_SDP = "invalid_sdp"
SDP_TOO_LARGE = "sdp_too_large"
MESSAGE_TOO_LARGE = "message_too_large"
PAYLOAD_TOO_LARGE = "payload_too_large"
NOT_IN_CONSULT = "not_in_consult"
UNKNOWN_PEER = "unknown_peer"
PEER_UNREACHABLE = "peer_unreachable"
RATE_LIMITED = "rate_limited"
RELAY_UNAVAILABLE = "relay_unavailable"
QUALITY_UNAVAILABLE = "quality_unavailable"
RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
UNKNOWN_EVENT = "unknown_event"
INTERNAL = "internal_error"
URI_TOO_LONG = "uri_too_long"
MALFORMED_REQUEST = "malformed_request"
VIEWER_URL_INVALID = "viewer_url_invalid"
VIEWER_URL_EXPIRED = "viewer_url_expired"
NOT_WATCHING = "not_watching"
TRAININGS_UNAVAILABLE = "trainings_unavailable"
# Stable codes of the domain that the edge names too (the others are `DomainError.code`).
DATABASE_UNAVAILABLE = DatabaseUnavailable.code
BUSY = StorageBusy.code
STORAGE_FULL = StorageFull.code
NOT_FOUND = NotFound.code
FORBIDDEN = PermissionDenied.code

EDGE_STATUSES: dict[str, tuple[int, ...]] = {
    TOKEN_MISSING: (401,),
    TOKEN_EXPIRED: (401,),
    TOKEN_INVALID: (401,),
    TOKEN_WRONG_AUDIENCE: (401,),
    BAD_CREDENTIALS: (401,),
    INVALID_PAYLOAD: (422,),
    INVALID_SDP: (400,),
    SDP_TOO_LARGE: (413,),
    MESSAGE_TOO_LARGE: (413,),
    PAYLOAD_TOO_LARGE: (413,),
    NOT_IN_CONSULT: (409,),
    UNKNOWN_PEER: (404,),
    PEER_UNREACHABLE: (503,),
    RATE_LIMITED: (429,),
    RELAY_UNAVAILABLE: (503,),
    QUALITY_UNAVAILABLE: (503,),
    RANGE_NOT_SATISFIABLE: (416,),
    UNKNOWN_EVENT: (400,),
    URI_TOO_LONG: (414,),
    MALFORMED_REQUEST: (400,),
    INTERNAL: (500,),
    VIEWER_URL_INVALID: (403,),
    VIEWER_URL_EXPIRED: (403,),
    NOT_WATCHING: (409,),
    TRAININGS_UNAVAILABLE: (503,),
}
"""The HTTP status of each code the edge raises itself (`ApiError`). `invalid_payload` is 422
for a value that does not fit its schema; a REST body that is not usable JSON is 400 and an
upload that is not multipart/form-data 415 (`signaling.http.openapi` adds those where they
apply)."""

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    PermissionDenied: 403,
    IllegalTransition: 409,
    ConcurrentUpdate: 409,
    ConsultFull: 409,
    InvalidBooking: 422,
    ConclusionRequired: 422,
    InvalidIntake: 422,
    MediaRefused: 422,
    InvalidPeriod: 422,
    InvalidAttachment: 422,
    AttachmentTooLarge: 413,
    TooManyAttachments: 409,
    InvalidShift: 422,
    InvalidSubscription: 422,
    StorageBusy: 503,
    DatabaseUnavailable: 503,
    StorageFull: 507,
    InvalidFilter: 422,
    InvalidComment: 422,
    InvalidInvitation: 422,
    AlreadyInvited: 409,
    TooManyInvitations: 409,
    NotInConsult: 409,
    RelayUnavailable: 503,
    RecordingStorageUnavailable: 503,
    InvalidTraining: 422,
    InvalidQuestion: 422,
    QuestionModerated: 409,
    TrainingNotLive: 409,
    NotAttending: 409,
    NotOnStage: 403,
    TooManyHands: 409,
}


def _intake_field(name: str) -> str:
    return "intake" if name == "(intake)" else f"intake.{name}"


def from_domain(error: DomainError) -> ApiError:
    status = next((s for cls, s in _DOMAIN_STATUS.items() if isinstance(error, cls)), 400)
    details = None
    if isinstance(error, InvalidIntake):
        details = [
            {"field": _intake_field(p.field), "problem": p.message, "reason": p.reason}
            for p in error.problems
        ]
    if isinstance(error, InvalidShift):
        details = [{"field": "(shift)", "problem": error.message, "reason": error.reason}]
    if isinstance(error, InvalidTraining):
        details = [{"field": "(training)", "problem": error.message, "reason": error.reason}]
    return ApiError(error.code, error.message, status, details)


def from_validation(error: ValidationError, what: str) -> ApiError:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]
    first = details[0] if details else {"field": "(body)", "problem": "invalid"}
    return ApiError(
        INVALID_PAYLOAD, f"invalid {what}: {first['field']}: {first['problem']}", 422, details
    )


def statuses_of(code: str) -> tuple[int, ...]:
    """Every HTTP status an error with this code is answered with (`from_domain` answers a
    domain error it has no status for with 400)."""
    found = set(EDGE_STATUSES.get(code, ()))
    found.update(status for cls, status in _DOMAIN_STATUS.items() if cls.code == code)
    return tuple(sorted(found)) or (400,)
