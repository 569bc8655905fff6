"""Multi-disciplinary consults: the assigned specialist invites colleagues into a consult.

The assigned specialist of a consult that is accepted, waiting or live (`INVITATION_STATUSES`)
may invite any other active specialist, of any specialty (a paediatrician into an obstetrics
consult), up to `MAX_INVITED_SPECIALISTS`. The invited specialist may then view the consult,
join its room, take notes, read its attachments and play its recordings (`Scope.INVITED` in
the permission table) — but never end, record, accept, decline, export it or invite others:
the consult stays the assigned specialist's.

The invitee may decline; the assigned specialist may withdraw. Either removes the invitation
(and with it the invitee's access); the audit trail keeps the history (`consult.invited`,
`invitation.declined`, `invitation.withdrawn`). Once the consult has finished, its invitations
are part of its record and no longer change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import DomainError, IllegalTransition, NotFound, PermissionDenied
from rooms.consults.lifecycle import JOINABLE
from rooms.consults.people import Role, User
from rooms.consults.permissions import Action, ensure_permitted, is_permitted
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, institution_tree, load_consult, load_permitted, utc_now

MAX_INVITED_SPECIALISTS = 4
"""Specialists one consult may hold invitations for at once (`INVITED_SPECIALISTS_PER_CONSULT`).
With the exam room, its second video source and the assigned specialist that is seven
connections, within the consult room's `MAX_PARTICIPANTS_PER_CONSULT` (8). Zero (a room too
small for anybody more) refuses every invitation with `too_many_invitations`."""

PARTICIPANTS_BESIDES_INVITEES = 2
"""Connections a consult room holds at the least without invitees: the exam room and the
assigned specialist. The configuration refuses an invitation limit that would not fit the
room's participant limit with these (and lowers the default to fit it)."""

INVITATION_STATUSES = JOINABLE
"""Invitations are made (and withdrawn or declined) while the consult can still be joined."""


class InvalidInvitation(DomainError):
    """The person named cannot be invited (unknown, not a specialist, inactive, oneself)."""

    code = "invalid_invitation"


class AlreadyInvited(DomainError):
    """The specialist already holds an invitation into this consult."""

    code = "already_invited"


class TooManyInvitations(DomainError):
    """The consult already holds `MAX_INVITED_SPECIALISTS` invitations."""

    code = "too_many_invitations"


@dataclass(frozen=True, slots=True)
class Invitation:
    consult_id: str
    specialist_id: int
    invited_by: int
    at: datetime


class InvitationStore(Protocol):
    """Invitations are saved with the consult's version check: a change of the consult (or
    another invitation) in between raises `ConcurrentUpdate` and nothing is written."""

    async def add_invitation(
        self, consult: Consult, invitation: Invitation, audit: AuditEntry
    ) -> Consult:
        """Save the invitation and its audit entry if the consult is still at
        `consult.version`; return the consult bumped, with the invitee in `invited_ids`."""
        ...

    async def remove_invitation(
        self, consult: Consult, specialist_id: int, audit: AuditEntry
    ) -> Consult:
        """Delete the invitation and write its audit entry if the consult is still at
        `consult.version`; return the consult bumped, without the specialist."""
        ...


class Store(ConsultStore, InvitationStore, Protocol):
    """A store that keeps consults and their invitations: invitations change the consult's
    version, so one store keeps both (`storage.sql.consults.SqlConsults`)."""


class InvitationService:
    def __init__(
        self,
        store: Store,
        clock: Clock = utc_now,
        max_invited: int = MAX_INVITED_SPECIALISTS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_invited = max_invited

    async def invite(self, user: User, consult_id: str, specialist_id: int) -> Consult:
        """Invite `specialist_id` into the consult on behalf of its assigned specialist."""
        consult = await load_permitted(self.store, user, consult_id, Action.INVITE_SPECIALIST)
        if consult.status not in INVITATION_STATUSES:
            raise IllegalTransition(consult.status.value, "invite specialists")
        if specialist_id == user.id:
            raise InvalidInvitation("you are already the consult's specialist")
        invitee = await self.store.get_user(specialist_id)
        if invitee is None or invitee.role is not Role.SPECIALIST or not invitee.active:
            raise InvalidInvitation(f"user {specialist_id} is not an active specialist")
        if specialist_id in consult.invited_ids:
            raise AlreadyInvited(f"{invitee.display_name} is already invited")
        if len(consult.invited_ids) >= self.max_invited:
            raise TooManyInvitations(
                f"a consult holds at most {self.max_invited} invited specialists"
            )
        now = self.clock()
        return await self.store.add_invitation(
            consult,
            Invitation(consult.id, specialist_id, user.id, now),
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="consult.invited",
                consult_id=consult.id,
                detail={"specialist": specialist_id, "specialty": _specialty(invitee)},
            ),
        )

    async def remove(self, user: User, consult_id: str, specialist_id: int) -> Consult:
        """End an invitation: withdrawn by the assigned specialist, or declined by the invitee
        (`specialist_id` is then the user's own id)."""
        consult = await load_consult(self.store, consult_id)
        tree = await institution_tree(self.store)
        if specialist_id == user.id and is_permitted(
            user, Action.DECLINE_INVITATION, consult, tree
        ):
            action = "invitation.declined"
        elif specialist_id != user.id:
            ensure_permitted(user, Action.INVITE_SPECIALIST, consult, tree)
            action = "invitation.withdrawn"
        else:
            raise PermissionDenied("you hold no invitation into this consult")
        if specialist_id not in consult.invited_ids:
            raise NotFound(f"user {specialist_id} is not invited into this consult")
        if consult.status not in INVITATION_STATUSES:
            raise IllegalTransition(consult.status.value, "change its invitations")
        now = self.clock()
        return await self.store.remove_invitation(
            consult,
            specialist_id,
            AuditEntry(
                at=now,
                actor_id=user.id,
                action=action,
                consult_id=consult.id,
                detail={"specialist": specialist_id},
            ),
        )


def _specialty(user: User) -> str | None:
    return user.specialty.value if user.specialty else None
