"""Typed domain errors; each carries the stable client-facing code that `signaling` maps once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IllegalTransition(DomainError):
    """A consult was asked to move in a way its lifecycle does not allow."""

    code = "illegal_transition"

    def __init__(self, status: str, event: str) -> None:
        super().__init__(f"a consult that is {status} cannot {event}")
        self.status = status
        self.event = event


class PermissionDenied(DomainError):
    """The user's role or institution does not allow the action on this consult."""

    code = "forbidden"


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the asker)."""

    code = "not_found"


class ConsultFull(DomainError):
    """The consult already holds as many participants as the limit allows."""

    code = "consult_full"


class ConcurrentUpdate(DomainError):
    """Somebody else changed the consult first; nothing was applied, the client may retry."""

    code = "conflict"


class InvalidBooking(DomainError):
    """A booking that is well-formed but makes no sense (e.g. a specialist of another specialty)."""

    code = "invalid_booking"


class ConclusionRequired(DomainError):
    """The assigned specialist ends a consult with neither a conclusion nor an explicit skip."""

    code = "conclusion_required"


class StorageBusy(DomainError):
    """The database stayed locked by other writers past its wait; nothing was written."""

    code = "busy"


class DatabaseUnavailable(DomainError):
    """The database does not answer (stopped, unreachable, timing out, its file unreadable);
    nothing was read or written, the client may retry once it is back."""

    code = "database_unavailable"


class StorageFull(DomainError):
    """The database's disk is full (SQLite "database or disk is full", PostgreSQL `disk_full`):
    nothing was written; reads still work, and writes do again once space is freed."""

    code = "storage_full"


class MediaRefused(DomainError):
    """The media relay cannot use what it was sent (e.g. an offer without the consult's codec);
    nothing changed."""

    code = "media_refused"


class NotInConsult(DomainError):
    """The connection is not (or no longer) in the consult's room: join first."""

    code = "not_in_consult"


class RelayUnavailable(DomainError):
    """This server runs without a media relay; relay signaling and recording are refused."""

    code = "relay_unavailable"
