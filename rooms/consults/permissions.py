"""Who may do what: one table of role x action, each entry scoped to the consults it covers.

Every permission check in teleconsult goes through `is_permitted` / `ensure_permitted`; the unit
tests walk the whole matrix (every role x every action x own and foreign consults).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from rooms.consults.consult import Consult
from rooms.consults.errors import PermissionDenied
from rooms.consults.institutions import InstitutionTree
from rooms.consults.people import Role, User


class Action(StrEnum):
    BOOK_CONSULT = "book_consult"
    VIEW_CONSULT = "view_consult"
    ACCEPT_CONSULT = "accept_consult"
    DECLINE_CONSULT = "decline_consult"
    CANCEL_CONSULT = "cancel_consult"
    JOIN_CONSULT = "join_consult"
    END_CONSULT = "end_consult"
    WRITE_CONCLUSION = "write_conclusion"
    """Keep the specialist's conclusion draft while the consult runs (the assigned specialist)."""
    VIEW_AUDIT = "view_audit"
    RECORD_CONSULT = "record_consult"
    """Start and stop recording (the participants' consent is still needed)."""
    VIEW_RECORDINGS = "view_recordings"
    """List a consult's recordings and play them back."""
    EXPORT_CONSULT = "export_consult"
    """Export the consult record (with recordings metadata and audit trail) as FHIR."""
    ADD_NOTE = "add_note"
    """Take notes during the consult (the same people who may join it)."""
    VIEW_STATISTICS = "view_statistics"
    """Count the consult in statistics (and export them as CSV); see
    rooms/reporting/statistics.py."""
    REVIEW_CONSULT = "review_consult"
    """Open a consult's review (record, recordings timeline, comments); audited."""
    COMMENT_CONSULT = "comment_consult"
    """Add a supervisor's review comment to a consult (append-only)."""
    ATTACH_FILE = "attach_file"
    """Attach a file (image, PDF) to the consult while it is not finished."""
    VIEW_ATTACHMENTS = "view_attachments"
    """List a consult's attachments and read them (the same people who may view the consult)."""
    VIEW_ROSTER = "view_roster"
    """See the on-duty roster (shifts of specialists; `Scope.STAFF_SUBTREE`)."""
    MANAGE_ROSTER = "manage_roster"
    """Add and remove duty shifts (`Scope.STAFF_SUBTREE`)."""
    INVITE_SPECIALIST = "invite_specialist"
    """Invite another specialist into the consult, or withdraw an invitation (the assigned
    specialist only; `rooms.consults.invitations`)."""
    DECLINE_INVITATION = "decline_invitation"
    """Turn down one's own invitation into a consult (`Scope.INVITED`)."""
    VIEW_CALL_QUALITY = "view_call_quality"
    """See a consult's call quality timeline (what each page and the relay measured). Reporting
    it needs no entry: a page reports only for the consult its connection has joined."""
    # ---- trainings (`rooms.training`; checked with `is_permitted_on_training`) -------------
    CREATE_TRAINING = "create_training"
    """Schedule a training for institutions of one's subtree (`Scope.STAFF_SUBTREE`, checked
    with `is_permitted_on_staff` for each target)."""
    VIEW_TRAINING = "view_training"
    """See a training: its audience, its lecturers, its organisers."""
    ATTEND_TRAINING = "attend_training"
    """Watch the broadcast (a signed viewer URL) and its replay; audited, refusals too."""
    PRESENT_TRAINING = "present_training"
    """Publish the broadcast, start and end it (its lecturers)."""
    MANAGE_TRAINING = "manage_training"
    """Start, end or cancel a training (admins and supervisors of the organiser)."""
    ASK_QUESTION = "ask_question"
    """Ask a question during a live training (its audience)."""
    MODERATE_QUESTIONS = "moderate_questions"
    """Show or dismiss the trainees' questions: the lecturers, and the organiser's admins and
    supervisors (the lecturer's assistants)."""
    INVITE_TO_STAGE = "invite_to_stage"
    """Bring a trainee on stage, or take them off (the training's lecturers: they talk with
    them over WebRTC; docs/training.md, "On stage")."""
    TAKE_STAGE = "take_stage"
    """Raise a hand to speak and, once invited, publish camera and microphone on stage (its
    audience)."""


class Scope(StrEnum):
    REQUESTING_INSTITUTION = "requesting_institution"
    """Consults booked by the user's own institution."""
    ASSIGNED = "assigned"
    """Consults assigned to the user as specialist."""
    SPECIALTY_QUEUE = "specialty_queue"
    """Consults assigned to the user, or still unassigned in the user's specialty."""
    INSTITUTION_SUBTREE = "institution_subtree"
    """Consults booked by the user's institution or any institution below it."""
    INVITED = "invited"
    """Consults the user is invited into as a further specialist (`Consult.invited_ids`)."""
    TRAINING_AUDIENCE = "training_audience"
    """Trainings whose audience reaches the user's institution."""
    LECTURING = "lecturing"
    """Trainings the user is a lecturer of."""
    ORGANISING = "organising"
    """Trainings organised by the user's institution or one below it."""
    STAFF_SUBTREE = "staff_subtree"
    """Not about a consult: the people (e.g. specialists on the roster) employed by the user's
    institution or any institution below it. Checked with `is_permitted_on_staff`; never
    grants anything on a consult."""


TRAINING_SCOPES = frozenset({Scope.TRAINING_AUDIENCE, Scope.LECTURING, Scope.ORGANISING})
"""Scopes over trainings: they never grant anything on a consult."""

Scopes = Scope | tuple[Scope, ...]
"""A table entry: one scope, or several of which any one suffices."""

PERMISSIONS: dict[Role, dict[Action, Scopes]] = {
    Role.EXAM_ROOM_DOCTOR: {
        Action.BOOK_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.VIEW_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.CANCEL_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.JOIN_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.ADD_NOTE: Scope.REQUESTING_INSTITUTION,
        Action.ATTACH_FILE: Scope.REQUESTING_INSTITUTION,
        Action.VIEW_ATTACHMENTS: Scope.REQUESTING_INSTITUTION,
        Action.END_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.VIEW_RECORDINGS: Scope.REQUESTING_INSTITUTION,
        Action.EXPORT_CONSULT: Scope.REQUESTING_INSTITUTION,
        Action.VIEW_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.LECTURING),
        Action.ATTEND_TRAINING: Scope.TRAINING_AUDIENCE,
        Action.PRESENT_TRAINING: Scope.LECTURING,
        Action.ASK_QUESTION: Scope.TRAINING_AUDIENCE,
        Action.TAKE_STAGE: Scope.TRAINING_AUDIENCE,
        Action.MODERATE_QUESTIONS: Scope.LECTURING,
        Action.INVITE_TO_STAGE: Scope.LECTURING,
    },
    Role.SPECIALIST: {
        # An invited specialist takes part (view, join, notes, files, recordings) but does not
        # run the consult: ending, recording, accepting/declining the request, inviting and
        # exporting stay with the assigned specialist.
        Action.VIEW_CONSULT: (Scope.SPECIALTY_QUEUE, Scope.INVITED),
        Action.VIEW_ATTACHMENTS: (Scope.SPECIALTY_QUEUE, Scope.INVITED),
        Action.ACCEPT_CONSULT: Scope.SPECIALTY_QUEUE,
        Action.DECLINE_CONSULT: Scope.SPECIALTY_QUEUE,
        Action.JOIN_CONSULT: (Scope.ASSIGNED, Scope.INVITED),
        Action.ADD_NOTE: (Scope.ASSIGNED, Scope.INVITED),
        Action.END_CONSULT: Scope.ASSIGNED,
        Action.WRITE_CONCLUSION: Scope.ASSIGNED,
        Action.RECORD_CONSULT: Scope.ASSIGNED,
        Action.VIEW_RECORDINGS: (Scope.ASSIGNED, Scope.INVITED),
        Action.EXPORT_CONSULT: Scope.ASSIGNED,
        Action.INVITE_SPECIALIST: Scope.ASSIGNED,
        Action.DECLINE_INVITATION: Scope.INVITED,
        Action.VIEW_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.LECTURING),
        Action.ATTEND_TRAINING: Scope.TRAINING_AUDIENCE,
        Action.PRESENT_TRAINING: Scope.LECTURING,
        Action.ASK_QUESTION: Scope.TRAINING_AUDIENCE,
        Action.TAKE_STAGE: Scope.TRAINING_AUDIENCE,
        Action.MODERATE_QUESTIONS: Scope.LECTURING,
        Action.INVITE_TO_STAGE: Scope.LECTURING,
    },
    Role.SUPERVISOR: {
        Action.VIEW_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_ATTACHMENTS: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_AUDIT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_RECORDINGS: Scope.INSTITUTION_SUBTREE,
        Action.EXPORT_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_STATISTICS: Scope.INSTITUTION_SUBTREE,
        Action.REVIEW_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.COMMENT_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_CALL_QUALITY: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_ROSTER: Scope.STAFF_SUBTREE,
        Action.CREATE_TRAINING: Scope.STAFF_SUBTREE,
        Action.VIEW_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.LECTURING, Scope.ORGANISING),
        Action.ATTEND_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.ORGANISING),
        Action.PRESENT_TRAINING: Scope.LECTURING,
        Action.MANAGE_TRAINING: Scope.ORGANISING,
        Action.ASK_QUESTION: Scope.TRAINING_AUDIENCE,
        Action.TAKE_STAGE: Scope.TRAINING_AUDIENCE,
        Action.MODERATE_QUESTIONS: (Scope.LECTURING, Scope.ORGANISING),
        Action.INVITE_TO_STAGE: Scope.LECTURING,
    },
    Role.ADMIN: {
        Action.VIEW_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_ATTACHMENTS: Scope.INSTITUTION_SUBTREE,
        Action.CANCEL_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_AUDIT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_RECORDINGS: Scope.INSTITUTION_SUBTREE,
        Action.EXPORT_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_STATISTICS: Scope.INSTITUTION_SUBTREE,
        Action.REVIEW_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.COMMENT_CONSULT: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_CALL_QUALITY: Scope.INSTITUTION_SUBTREE,
        Action.VIEW_ROSTER: Scope.STAFF_SUBTREE,
        Action.MANAGE_ROSTER: Scope.STAFF_SUBTREE,
        Action.CREATE_TRAINING: Scope.STAFF_SUBTREE,
        Action.VIEW_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.LECTURING, Scope.ORGANISING),
        Action.ATTEND_TRAINING: (Scope.TRAINING_AUDIENCE, Scope.ORGANISING),
        Action.PRESENT_TRAINING: Scope.LECTURING,
        Action.MANAGE_TRAINING: Scope.ORGANISING,
        Action.ASK_QUESTION: Scope.TRAINING_AUDIENCE,
        Action.TAKE_STAGE: Scope.TRAINING_AUDIENCE,
        Action.MODERATE_QUESTIONS: (Scope.LECTURING, Scope.ORGANISING),
        Action.INVITE_TO_STAGE: Scope.LECTURING,
    },
    Role.TRAINEE: {
        # Staff who only attend: trainings open to their institution, nothing else.
        Action.VIEW_TRAINING: Scope.TRAINING_AUDIENCE,
        Action.ATTEND_TRAINING: Scope.TRAINING_AUDIENCE,
        Action.ASK_QUESTION: Scope.TRAINING_AUDIENCE,
        Action.TAKE_STAGE: Scope.TRAINING_AUDIENCE,
    },
}
"""The single source of who may do what. A (role, action) pair that is absent is refused."""


def _in_scope(scope: Scope, user: User, consult: Consult, tree: InstitutionTree) -> bool:
    if scope is Scope.REQUESTING_INSTITUTION:
        return consult.requesting_institution_id == user.institution_id
    if scope is Scope.ASSIGNED:
        return consult.specialist_id == user.id
    if scope is Scope.SPECIALTY_QUEUE:
        if consult.specialist_id is not None:
            return consult.specialist_id == user.id
        return consult.specialty == user.specialty
    if scope is Scope.INSTITUTION_SUBTREE:
        return tree.is_within(consult.requesting_institution_id, user.institution_id)
    if scope is Scope.INVITED:
        return user.id in consult.invited_ids
    if scope is Scope.STAFF_SUBTREE or scope in TRAINING_SCOPES:
        return False  # a scope over people or trainings, not consults
    raise AssertionError(f"unhandled scope {scope}")  # pragma: no cover - enum is exhaustive


def is_permitted(user: User, action: Action, consult: Consult, tree: InstitutionTree) -> bool:
    """True when the table gives `user`'s role `action` on this consult."""
    if not user.active:
        return False
    entry = PERMISSIONS.get(user.role, {}).get(action)
    if entry is None:
        return False
    scopes = entry if isinstance(entry, tuple) else (entry,)
    return any(_in_scope(scope, user, consult, tree) for scope in scopes)


def grants(user: User, action: Action) -> bool:
    """True when the table gives `user`'s role `action` on at least some consults (for actions
    over many consults, such as statistics, before each consult is checked)."""
    return user.active and action in PERMISSIONS.get(user.role, {})


def ensure_permitted(user: User, action: Action, consult: Consult, tree: InstitutionTree) -> None:
    """Raise `PermissionDenied` unless `user` may do `action` on `consult`."""
    if not is_permitted(user, action, consult, tree):
        raise PermissionDenied(f"a {user.role.value} may not {action.value} on this consult")


def is_permitted_on_staff(
    user: User, action: Action, institution_id: int, tree: InstitutionTree
) -> bool:
    """True when the table gives `user`'s role `action` over staff of `institution_id`.

    Only `Scope.STAFF_SUBTREE` entries grant anything here: the staff member's institution must
    be the user's own or lie below it.
    """
    if not user.active:
        return False
    scope = PERMISSIONS.get(user.role, {}).get(action)
    return scope is Scope.STAFF_SUBTREE and tree.is_within(institution_id, user.institution_id)


def ensure_permitted_on_staff(
    user: User, action: Action, institution_id: int, tree: InstitutionTree
) -> None:
    """Raise `PermissionDenied` unless `user` may do `action` over staff of `institution_id`."""
    if not is_permitted_on_staff(user, action, institution_id, tree):
        raise PermissionDenied(f"a {user.role.value} may not {action.value} here")


class TrainingAccess(Protocol):
    """What the table needs to know of a training (`rooms.training.training.Training`)."""

    @property
    def organiser_institution_id(self) -> int: ...

    @property
    def lecturer_ids(self) -> frozenset[int]: ...

    def reaches(self, institution_id: int, tree: InstitutionTree) -> bool: ...


def _in_training_scope(
    scope: Scope, user: User, training: TrainingAccess, tree: InstitutionTree
) -> bool:
    if scope is Scope.TRAINING_AUDIENCE:
        return training.reaches(user.institution_id, tree)
    if scope is Scope.LECTURING:
        return user.id in training.lecturer_ids
    if scope is Scope.ORGANISING:
        return tree.is_within(training.organiser_institution_id, user.institution_id)
    return False  # consult and staff scopes grant nothing on a training


def is_permitted_on_training(
    user: User, action: Action, training: TrainingAccess, tree: InstitutionTree
) -> bool:
    """True when the table gives `user`'s role `action` on this training."""
    if not user.active:
        return False
    entry = PERMISSIONS.get(user.role, {}).get(action)
    if entry is None:
        return False
    scopes = entry if isinstance(entry, tuple) else (entry,)
    return any(_in_training_scope(scope, user, training, tree) for scope in scopes)


def ensure_permitted_on_training(
    user: User, action: Action, training: TrainingAccess, tree: InstitutionTree
) -> None:
    """Raise `PermissionDenied` unless `user` may do `action` on `training`."""
    if not is_permitted_on_training(user, action, training, tree):
        raise PermissionDenied(f"a {user.role.value} may not {action.value} on this training")
