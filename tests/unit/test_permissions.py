"""The permission matrix: every role x every action, on own, foreign and unassigned consults.

The expected table is written out here by hand, as the specification; it is deliberately not
derived from `rooms.permissions.PERMISSIONS`.
"""

from __future__ import annotations

import pytest

from rooms.errors import PermissionDenied
from rooms.institutions import InstitutionTree
from rooms.lifecycle import ConsultStatus
from rooms.people import User
from rooms.permissions import Action, ensure_permitted, grants, is_permitted
from tests.unit.fakes import (
    COUNTY_B,
    DOCTOR_B,
    EVERYONE,
    INSTITUTIONS,
    consult_in,
)

A = Action
TREE = InstitutionTree(INSTITUTIONS)

# County A's consult, assigned to OBSTETRICIAN.
ASSIGNED_A = consult_in(ConsultStatus.ACCEPTED)
# County A's consult, still open to any obstetrician.
OPEN_A = consult_in(ConsultStatus.REQUESTED, specialist_id=None)
# County B's consult, assigned to OBSTETRICIAN.
ASSIGNED_B = consult_in(ConsultStatus.ACCEPTED, institution_id=COUNTY_B)

# What supervisors may do in their subtree: read, review, comment; never take part or change it.
SUPERVISING = {
    A.VIEW_CONSULT,
    A.VIEW_ATTACHMENTS,
    A.VIEW_AUDIT,
    A.VIEW_RECORDINGS,
    A.EXPORT_CONSULT,
    A.REVIEW_CONSULT,
    A.COMMENT_CONSULT,
    A.VIEW_STATISTICS,
}

EXPECTED: dict[tuple[str, str], set[Action]] = {
    # exam-room doctors: their own institution's consults only
    ("doctor.a", "assigned_a"): {
        A.BOOK_CONSULT,
        A.VIEW_CONSULT,
        A.CANCEL_CONSULT,
        A.JOIN_CONSULT,
        A.ADD_NOTE,
        A.ATTACH_FILE,
        A.VIEW_ATTACHMENTS,
        A.END_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
    },
    ("doctor.a", "open_a"): {
        A.BOOK_CONSULT,
        A.VIEW_CONSULT,
        A.CANCEL_CONSULT,
        A.JOIN_CONSULT,
        A.ADD_NOTE,
        A.ATTACH_FILE,
        A.VIEW_ATTACHMENTS,
        A.END_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
    },
    ("doctor.a", "assigned_b"): set(),
    ("doctor.b", "assigned_a"): set(),
    ("doctor.b", "open_a"): set(),
    ("doctor.b", "assigned_b"): {
        A.BOOK_CONSULT,
        A.VIEW_CONSULT,
        A.CANCEL_CONSULT,
        A.JOIN_CONSULT,
        A.ADD_NOTE,
        A.ATTACH_FILE,
        A.VIEW_ATTACHMENTS,
        A.END_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
    },
    # specialists: what is assigned to them, and open requests of their specialty
    ("obst", "assigned_a"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.ACCEPT_CONSULT,
        A.DECLINE_CONSULT,
        A.JOIN_CONSULT,
        A.ADD_NOTE,
        A.END_CONSULT,
        A.RECORD_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
    },
    ("obst", "open_a"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.ACCEPT_CONSULT,
        A.DECLINE_CONSULT,
    },
    ("obst", "assigned_b"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.ACCEPT_CONSULT,
        A.DECLINE_CONSULT,
        A.JOIN_CONSULT,
        A.ADD_NOTE,
        A.END_CONSULT,
        A.RECORD_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
    },
    ("obst2", "assigned_a"): set(),
    ("obst2", "open_a"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.ACCEPT_CONSULT,
        A.DECLINE_CONSULT,
    },
    ("obst2", "assigned_b"): set(),
    ("paed", "assigned_a"): set(),
    ("paed", "open_a"): set(),
    ("paed", "assigned_b"): set(),
    # supervisors: their institution's subtree, read-only
    ("sup", "assigned_a"): SUPERVISING,
    ("sup", "open_a"): SUPERVISING,
    ("sup", "assigned_b"): SUPERVISING,
    ("sup.b", "assigned_a"): set(),
    ("sup.b", "open_a"): set(),
    ("sup.b", "assigned_b"): SUPERVISING,
    # admins: their subtree; may cancel, never take part in the call
    ("admin", "assigned_a"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.CANCEL_CONSULT,
        A.VIEW_AUDIT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
        A.VIEW_STATISTICS,
        A.REVIEW_CONSULT,
        A.COMMENT_CONSULT,
    },
    ("admin", "open_a"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.CANCEL_CONSULT,
        A.VIEW_AUDIT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
        A.VIEW_STATISTICS,
        A.REVIEW_CONSULT,
        A.COMMENT_CONSULT,
    },
    ("admin", "assigned_b"): {
        A.VIEW_CONSULT,
        A.VIEW_ATTACHMENTS,
        A.CANCEL_CONSULT,
        A.VIEW_AUDIT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
        A.VIEW_STATISTICS,
        A.REVIEW_CONSULT,
        A.COMMENT_CONSULT,
    },
    # a disabled account may do nothing at all
    ("old", "assigned_a"): set(),
    ("old", "open_a"): set(),
    ("old", "assigned_b"): set(),
}
CONSULTS = {"assigned_a": ASSIGNED_A, "open_a": OPEN_A, "assigned_b": ASSIGNED_B}
USERS = {u.username: u for u in EVERYONE}
CASES = [(user, consult, action) for (user, consult) in EXPECTED for action in Action]


def test_the_matrix_covers_every_user_and_consult() -> None:
    assert {u for u, _ in EXPECTED} == set(USERS)
    assert {c for _, c in EXPECTED} == set(CONSULTS)


@pytest.mark.parametrize(("username", "consult_name", "action"), CASES)
def test_permission_matrix(username: str, consult_name: str, action: Action) -> None:
    user: User = USERS[username]
    allowed = action in EXPECTED[(username, consult_name)]
    assert is_permitted(user, action, CONSULTS[consult_name], TREE) is allowed


def test_a_refusal_names_the_role_and_the_action() -> None:
    with pytest.raises(PermissionDenied, match="exam_room_doctor may not join_consult"):
        ensure_permitted(DOCTOR_B, Action.JOIN_CONSULT, ASSIGNED_A, TREE)


@pytest.mark.parametrize("username", sorted(USERS))
def test_only_active_supervisors_and_admins_are_granted_statistics_at_all(username: str) -> None:
    expected = username in {"sup", "sup.b", "admin"}
    assert grants(USERS[username], Action.VIEW_STATISTICS) is expected
