"""How who is in the consult room moves the consult along its lifecycle."""

from __future__ import annotations

from collections.abc import Iterable

from rooms.consults.consult import Consult
from rooms.consults.lifecycle import ConsultEvent, ConsultStatus
from rooms.consults.people import Role, User


def presence_event(consult: Consult, present: Iterable[User]) -> ConsultEvent | None:
    """The lifecycle event that the people now present call for, if any.

    Apply it and ask again: an accepted consult that both sides enter at once opens, then starts.
    """
    people = list(present)
    exam_room_here = any(
        u.role is Role.EXAM_ROOM_DOCTOR and u.institution_id == consult.requesting_institution_id
        for u in people
    )
    specialist_here = any(u.id == consult.specialist_id for u in people)
    if consult.status is ConsultStatus.ACCEPTED and people:
        return ConsultEvent.OPEN_ROOM
    if consult.status is ConsultStatus.WAITING:
        if not people:
            return ConsultEvent.EMPTY_ROOM
        if exam_room_here and specialist_here:
            return ConsultEvent.START
    return None
