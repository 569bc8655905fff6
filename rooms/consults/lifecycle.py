"""The consult lifecycle: every status, every event, and the one table of allowed moves.

requested → accepted → waiting → live → ended, with declined, cancelled and expired as the
other ways a consult can finish. `waiting` means somebody has opened the consult room and the
other side has not arrived yet; if everybody leaves before the other side arrives, the consult
goes back to `accepted`. A `live` consult stays live through drop-outs until somebody ends it.
"""

from __future__ import annotations

from enum import StrEnum

from rooms.consults.errors import IllegalTransition


class ConsultStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    WAITING = "waiting"
    LIVE = "live"
    ENDED = "ended"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ConsultEvent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"
    EXPIRE = "expire"
    OPEN_ROOM = "open_room"
    """The first participant joined."""
    START = "start"
    """Both the requesting side and the specialist are present."""
    EMPTY_ROOM = "empty_room"
    """Everybody left before the consult went live."""
    END = "end"


S, E = ConsultStatus, ConsultEvent

TRANSITIONS: dict[tuple[ConsultStatus, ConsultEvent], ConsultStatus] = {
    (S.REQUESTED, E.ACCEPT): S.ACCEPTED,
    (S.REQUESTED, E.DECLINE): S.DECLINED,
    (S.REQUESTED, E.CANCEL): S.CANCELLED,
    (S.REQUESTED, E.EXPIRE): S.EXPIRED,
    (S.ACCEPTED, E.OPEN_ROOM): S.WAITING,
    (S.ACCEPTED, E.CANCEL): S.CANCELLED,
    (S.ACCEPTED, E.EXPIRE): S.EXPIRED,
    (S.WAITING, E.START): S.LIVE,
    (S.WAITING, E.EMPTY_ROOM): S.ACCEPTED,
    (S.WAITING, E.END): S.ENDED,
    (S.WAITING, E.CANCEL): S.CANCELLED,
    (S.LIVE, E.END): S.ENDED,
}
"""Every allowed move. Anything not listed raises `IllegalTransition`."""

FINISHED = frozenset({S.ENDED, S.DECLINED, S.CANCELLED, S.EXPIRED})
"""Statuses no event leads out of."""

JOINABLE = frozenset({S.ACCEPTED, S.WAITING, S.LIVE})
"""Statuses in which participants may be in the consult room."""


def next_status(status: ConsultStatus, event: ConsultEvent) -> ConsultStatus:
    """The status `event` leads to from `status`, or `IllegalTransition`."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(status.value, event.value) from None


del S, E
