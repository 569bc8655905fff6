"""The permission matrix: every role x every action, on own, foreign and unassigned consults.

The expected table is written out here by hand, as the specification; it is deliberately not
derived from `rooms.consults.permissions.PERMISSIONS`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.consults.errors import PermissionDenied
from rooms.consults.institutions import InstitutionTree
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.consults.permissions import Action, ensure_permitted, grants, is_permitted
from tests.unit.fakes import (
    COUNTY_B,
    DOCTOR_B,
    EVERYONE,
    INSTITUTIONS,
    PAEDIATRICIAN,
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
# County A's consult, assigned to OBSTETRICIAN, who invited PAEDIATRICIAN (multi-disciplinary).
INVITED_A = replace(consult_in(ConsultStatus.LIVE), invited_ids=frozenset({PAEDIATRICIAN.id}))

# What the consult's own specialist may do: all of it, including inviting colleagues.
RUNNING = {
    A.VIEW_CONSULT,
    A.VIEW_ATTACHMENTS,
    A.ACCEPT_CONSULT,
    A.DECLINE_CONSULT,
    A.JOIN_CONSULT,
    A.ADD_NOTE,
    A.END_CONSULT,
    A.WRITE_CONCLUSION,
    A.RECORD_CONSULT,
    A.VIEW_RECORDINGS,
    A.EXPORT_CONSULT,
    A.INVITE_SPECIALIST,
}
# What an invited specialist may do: take part and read, decline the invitation; never end,
# record, accept/decline the request, export or invite others.
INVITED = {
    A.VIEW_CONSULT,
    A.VIEW_ATTACHMENTS,
    A.JOIN_CONSULT,
    A.ADD_NOTE,
    A.VIEW_RECORDINGS,
    A.DECLINE_INVITATION,
}
EXAM_ROOM = {
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
}
ADMINISTERING = {
    A.VIEW_CONSULT,
    A.VIEW_ATTACHMENTS,
    A.CANCEL_CONSULT,
    A.VIEW_AUDIT,
    A.VIEW_RECORDINGS,
    A.EXPORT_CONSULT,
    A.VIEW_STATISTICS,
    A.REVIEW_CONSULT,
    A.COMMENT_CONSULT,
    A.VIEW_CALL_QUALITY,
}

# What supervisors may do in their subtree: read, review, comment; never take part or change it.
SUPERVISING = {
    A.VIEW_CONSULT,
    A.VIEW_ATTACHMENTS,
    A.VIEW_AUDIT,
    A.VIEW_RECORDINGS,
    A.EXPORT_CONSULT,
    A.REVIEW_CONSULT,
    A.COMMENT_CONSULT,
    A.VIEW_CALL_QUALITY,
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
        A.WRITE_CONCLUSION,
        A.RECORD_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
        A.INVITE_SPECIALIST,
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
        A.WRITE_CONCLUSION,
        A.RECORD_CONSULT,
        A.VIEW_RECORDINGS,
        A.EXPORT_CONSULT,
        A.INVITE_SPECIALIST,
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
        A.VIEW_CALL_QUALITY,
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
        A.VIEW_CALL_QUALITY,
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
        A.VIEW_CALL_QUALITY,
    },
    # a disabled account may do nothing at all
    ("old", "assigned_a"): set(),
    ("old", "open_a"): set(),
    ("old", "assigned_b"): set(),
    # a multi-disciplinary consult: the paediatrician is invited into the obstetrician's consult
    ("doctor.a", "invited_a"): EXAM_ROOM,
    ("doctor.b", "invited_a"): set(),
    ("obst", "invited_a"): RUNNING,
    ("obst2", "invited_a"): set(),
    ("paed", "invited_a"): INVITED,
    ("sup", "invited_a"): SUPERVISING,
    ("sup.b", "invited_a"): set(),
    ("admin", "invited_a"): ADMINISTERING,
    ("old", "invited_a"): set(),
}
CONSULTS = {
    "assigned_a": ASSIGNED_A,
    "open_a": OPEN_A,
    "assigned_b": ASSIGNED_B,
    "invited_a": INVITED_A,
}
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


@pytest.mark.parametrize(
    "action",
    [A.END_CONSULT, A.WRITE_CONCLUSION, A.RECORD_CONSULT, A.ACCEPT_CONSULT, A.DECLINE_CONSULT],
)
def test_an_invited_specialist_never_runs_the_consult(action: Action) -> None:
    for status in ConsultStatus:
        consult = replace(consult_in(status), invited_ids=frozenset({PAEDIATRICIAN.id}))
        assert not is_permitted(PAEDIATRICIAN, action, consult, TREE)
    unassigned = replace(
        consult_in(ConsultStatus.REQUESTED, specialist_id=None),
        invited_ids=frozenset({PAEDIATRICIAN.id}),
    )
    assert not is_permitted(PAEDIATRICIAN, action, unassigned, TREE)


def test_an_invited_specialist_never_invites_others() -> None:
    assert not is_permitted(PAEDIATRICIAN, A.INVITE_SPECIALIST, INVITED_A, TREE)


def test_a_refusal_names_the_role_and_the_action() -> None:
    with pytest.raises(PermissionDenied, match="exam_room_doctor may not join_consult"):
        ensure_permitted(DOCTOR_B, Action.JOIN_CONSULT, ASSIGNED_A, TREE)


@pytest.mark.parametrize("username", sorted(USERS))
def test_only_active_supervisors_and_admins_are_granted_statistics_at_all(username: str) -> None:
    expected = username in {"sup", "sup.b", "admin"}
    assert grants(USERS[username], Action.VIEW_STATISTICS) is expected


# ---- the roster: a scope over staff (specialists by institution), not over consults ----------

from rooms.consults.permissions import (  # noqa: E402
    ensure_permitted_on_staff,
    is_permitted_on_staff,
)
from tests.unit.fakes import PROVINCE  # noqa: E402

ROSTER_ACTIONS = (A.VIEW_ROSTER, A.MANAGE_ROSTER)
STAFF_AT = {"province": PROVINCE, "county_b": COUNTY_B}
EXPECTED_ON_STAFF: dict[tuple[str, str], set[Action]] = {
    ("doctor.a", "province"): set(),
    ("doctor.a", "county_b"): set(),
    ("doctor.b", "province"): set(),
    ("doctor.b", "county_b"): set(),
    ("obst", "province"): set(),
    ("obst", "county_b"): set(),
    ("obst2", "province"): set(),
    ("obst2", "county_b"): set(),
    ("paed", "province"): set(),
    ("paed", "county_b"): set(),
    # supervisors see the roster of their subtree and schedule trainings for it
    ("sup", "province"): {A.VIEW_ROSTER, A.CREATE_TRAINING},
    ("sup", "county_b"): {A.VIEW_ROSTER, A.CREATE_TRAINING},
    ("sup.b", "province"): set(),
    ("sup.b", "county_b"): {A.VIEW_ROSTER, A.CREATE_TRAINING},
    # admins keep the roster of their subtree and schedule trainings for it
    ("admin", "province"): {A.VIEW_ROSTER, A.MANAGE_ROSTER, A.CREATE_TRAINING},
    ("admin", "county_b"): {A.VIEW_ROSTER, A.MANAGE_ROSTER, A.CREATE_TRAINING},
    ("old", "province"): set(),
    ("old", "county_b"): set(),
}
STAFF_CASES = [(u, where, a) for (u, where) in EXPECTED_ON_STAFF for a in Action]


def test_the_staff_matrix_covers_every_user_and_place() -> None:
    assert {u for u, _ in EXPECTED_ON_STAFF} == set(USERS)
    assert {w for _, w in EXPECTED_ON_STAFF} == set(STAFF_AT)


@pytest.mark.parametrize(("username", "where", "action"), STAFF_CASES)
def test_staff_permission_matrix(username: str, where: str, action: Action) -> None:
    allowed = action in EXPECTED_ON_STAFF[(username, where)]
    assert is_permitted_on_staff(USERS[username], action, STAFF_AT[where], TREE) is allowed


def test_roster_actions_never_grant_anything_on_a_consult() -> None:
    for user in USERS.values():
        for consult in CONSULTS.values():
            for action in ROSTER_ACTIONS:
                assert not is_permitted(user, action, consult, TREE)


def test_a_roster_refusal_names_the_role_and_the_action() -> None:
    with pytest.raises(PermissionDenied, match="supervisor may not manage_roster"):
        ensure_permitted_on_staff(USERS["sup"], A.MANAGE_ROSTER, PROVINCE, TREE)
