"""Trainings in the domain: lifecycle, audience, the permission table's training rows, and the
use cases (schedule, list, start/end/cancel, admission with refusals audited)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rooms.consults.audit import AuditEntry
from rooms.consults.errors import (
    IllegalTransition,
    NotFound,
    PermissionDenied,
)
from rooms.consults.institutions import InstitutionTree
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.permissions import (
    Action,
    grants,
    is_permitted,
    is_permitted_on_training,
)
from rooms.training.questions import MAX_QUESTION_CHARS, InvalidQuestion, question_text
from rooms.training.service import TrainingPlan, TrainingService
from rooms.training.training import (
    MAX_DURATION,
    TRANSITIONS,
    Audience,
    AudienceKind,
    InvalidTraining,
    Training,
    TrainingEvent,
    TrainingStatus,
    next_status,
)
from tests.unit.fakes import (
    ADMIN,
    CITY,
    COUNTY_A,
    COUNTY_B,
    DOCTOR_A,
    DOCTOR_B,
    INSTITUTIONS,
    NOON,
    OBSTETRICIAN,
    PAEDIATRICIAN,
    PROVINCE,
    SUPERVISOR,
    SUPERVISOR_B,
    TOWNSHIP_A,
    InMemoryStore,
    consult_in,
)
from tests.unit.training_fakes import InMemoryTrainings

TREE = InstitutionTree(INSTITUTIONS)
H = timedelta(hours=1)
TRAINEE_A = User(50, "trainee.a", "Trainee A", Role.TRAINEE, TOWNSHIP_A)
TRAINEE_B = User(51, "trainee.b", "Trainee B", Role.TRAINEE, COUNTY_B)
S, L, E, C = (
    TrainingStatus.SCHEDULED,
    TrainingStatus.LIVE,
    TrainingStatus.ENDED,
    TrainingStatus.CANCELLED,
)


def training(
    audience: Audience | None = None,
    lecturers: frozenset[int] = frozenset({OBSTETRICIAN.id}),
    organiser: int = PROVINCE,
    status: TrainingStatus = S,
) -> Training:
    return Training(
        id=Training.new_id(),
        title="Neonatal resuscitation",
        organiser_institution_id=organiser,
        lecturer_ids=lecturers,
        starts_at=NOON + H,
        ends_at=NOON + 3 * H,
        audience=audience or Audience(AudienceKind.SUBTREE, frozenset({COUNTY_A})),
        specialties=frozenset({Specialty.PAEDIATRICS}),
        status=status,
        created_by=ADMIN.id,
        created_at=NOON,
    )


# ---- lifecycle ------------------------------------------------------------------------------


def test_the_lifecycle_is_scheduled_live_ended_or_cancelled_before_it_starts() -> None:
    assert TRANSITIONS == {
        (S, TrainingEvent.START): L,
        (L, TrainingEvent.END): E,
        (S, TrainingEvent.CANCEL): C,
    }
    for status in TrainingStatus:
        for event in TrainingEvent:
            if (status, event) not in TRANSITIONS:
                with pytest.raises(IllegalTransition):
                    next_status(status, event)


# ---- audience -------------------------------------------------------------------------------


def test_a_subtree_audience_reaches_the_root_and_everything_below_it_only() -> None:
    county_a = Audience(AudienceKind.SUBTREE, frozenset({COUNTY_A}))
    assert county_a.reaches(COUNTY_A, TREE)
    assert county_a.reaches(TOWNSHIP_A, TREE)
    assert not county_a.reaches(COUNTY_B, TREE)
    assert not county_a.reaches(CITY, TREE)
    assert county_a.institutions(TREE) == {COUNTY_A, TOWNSHIP_A}


def test_a_named_audience_reaches_exactly_the_institutions_named() -> None:
    named = Audience(AudienceKind.NAMED, frozenset({COUNTY_A, COUNTY_B}))
    assert named.reaches(COUNTY_A, TREE)
    assert named.reaches(COUNTY_B, TREE)
    assert not named.reaches(TOWNSHIP_A, TREE)  # below a named one, not named itself
    assert not named.reaches(PROVINCE, TREE)


# ---- the permission table -------------------------------------------------------------------

# A training organised by the province for county A's subtree, lectured by the obstetrician.
COUNTY_A_TRAINING = training()

VIEW, MODERATE = Action.VIEW_TRAINING, Action.MODERATE_QUESTIONS
INVITE, TAKE = Action.INVITE_TO_STAGE, Action.TAKE_STAGE

EXPECTED_ON_TRAINING: dict[str, set[Action]] = {
    # county A's doctor is in the audience
    "doctor.a": {Action.VIEW_TRAINING, Action.ATTEND_TRAINING, Action.ASK_QUESTION, TAKE},
    # county B is not
    "doctor.b": set(),
    "trainee.a": {Action.VIEW_TRAINING, Action.ATTEND_TRAINING, Action.ASK_QUESTION, TAKE},
    "trainee.b": set(),
    # the lecturer sees and presents it, brings trainees on stage (and is not in the
    # audience: the province)
    "obst": {Action.VIEW_TRAINING, Action.PRESENT_TRAINING, Action.MODERATE_QUESTIONS, INVITE},
    "paed": set(),
    # the province organises it: its admin and supervisor manage, moderate the questions (the
    # lecturer's assistants) and may watch (but not ask, nor go on stage: they are not its
    # audience; nor invite: the stage is the lecturer's conversation)
    "admin": {VIEW, Action.ATTEND_TRAINING, Action.MANAGE_TRAINING, MODERATE},
    "sup": {VIEW, Action.ATTEND_TRAINING, Action.MANAGE_TRAINING, MODERATE},
    # county B's supervisor neither organises it nor is in its audience
    "sup.b": set(),
}

PEOPLE = [
    DOCTOR_A,
    DOCTOR_B,
    TRAINEE_A,
    TRAINEE_B,
    OBSTETRICIAN,
    PAEDIATRICIAN,
    ADMIN,
    SUPERVISOR,
    SUPERVISOR_B,
]
TRAINING_ACTIONS = [
    Action.VIEW_TRAINING,
    Action.ATTEND_TRAINING,
    Action.PRESENT_TRAINING,
    Action.MANAGE_TRAINING,
    Action.ASK_QUESTION,
    Action.MODERATE_QUESTIONS,
    Action.INVITE_TO_STAGE,
    Action.TAKE_STAGE,
]


@pytest.mark.parametrize("user", PEOPLE, ids=lambda u: u.username)
def test_the_training_rows_of_the_permission_table(user: User) -> None:
    allowed = {
        a for a in TRAINING_ACTIONS if is_permitted_on_training(user, a, COUNTY_A_TRAINING, TREE)
    }
    assert allowed == EXPECTED_ON_TRAINING[user.username]


def test_only_admins_and_supervisors_create_trainings() -> None:
    creators = {u.username for u in PEOPLE if grants(u, Action.CREATE_TRAINING)}
    assert creators == {"admin", "sup", "sup.b"}


def test_a_trainee_may_do_nothing_on_any_consult() -> None:
    trainee_here = replace(TRAINEE_A, institution_id=COUNTY_A)
    for consult in (consult_in(ConsultStatus.REQUESTED), consult_in(ConsultStatus.LIVE)):
        for action in Action:
            assert not is_permitted(trainee_here, action, consult, TREE), action


def test_training_scopes_grant_nothing_on_a_consult_and_an_inactive_user_nothing_at_all() -> None:
    consult = consult_in(ConsultStatus.LIVE)
    for action in TRAINING_ACTIONS:
        assert not is_permitted(ADMIN, action, consult, TREE)
    gone = replace(DOCTOR_A, active=False)
    assert not is_permitted_on_training(gone, Action.VIEW_TRAINING, COUNTY_A_TRAINING, TREE)


# ---- the use cases --------------------------------------------------------------------------


@pytest.fixture
def store() -> InMemoryStore:
    found = InMemoryStore()
    found._users[TRAINEE_A.id] = TRAINEE_A
    found._users[TRAINEE_B.id] = TRAINEE_B
    return found


@pytest.fixture
def trainings(store: InMemoryStore) -> InMemoryTrainings:
    return InMemoryTrainings(store.audit_log)


@pytest.fixture
def service(store: InMemoryStore, trainings: InMemoryTrainings) -> TrainingService:
    return TrainingService(store, trainings, clock=lambda: NOON)


def plan(**changes: object) -> TrainingPlan:
    base = TrainingPlan(
        title="  Neonatal resuscitation  ",
        lecturer_ids=frozenset({OBSTETRICIAN.id}),
        starts_at=NOON + H,
        ends_at=NOON + 3 * H,
        audience=Audience(AudienceKind.SUBTREE, frozenset({COUNTY_A})),
        specialties=frozenset({Specialty.PAEDIATRICS}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_an_admin_schedules_a_training_and_the_audit_log_says_so(
    service: TrainingService, store: InMemoryStore
) -> None:
    made = await service.schedule(ADMIN, plan())
    assert made.status is S
    assert made.title == "Neonatal resuscitation"
    assert made.organiser_institution_id == PROVINCE
    assert store.audit_log[-1].action == "training.scheduled"
    assert store.audit_log[-1].detail["training"] == made.id


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": "   "}, "bad_title"),
        ({"title": "x" * 201}, "bad_title"),
        ({"ends_at": NOON + H}, "end_before_start"),
        ({"ends_at": NOON + H + MAX_DURATION + H}, "too_long"),
        ({"starts_at": NOON - 3 * H, "ends_at": NOON - H}, "implausible_start"),
        (
            {"starts_at": NOON + timedelta(days=400), "ends_at": NOON + timedelta(days=400) + H},
            "implausible_start",
        ),
        ({"lecturer_ids": frozenset()}, "bad_lecturers"),
        ({"lecturer_ids": frozenset(range(100, 106))}, "bad_lecturers"),
        ({"lecturer_ids": frozenset({9999})}, "bad_lecturer"),
        ({"lecturer_ids": frozenset({TRAINEE_A.id})}, "bad_lecturer"),
        (
            {"audience": Audience(AudienceKind.SUBTREE, frozenset({COUNTY_A, COUNTY_B}))},
            "bad_audience",
        ),
        ({"audience": Audience(AudienceKind.NAMED, frozenset())}, "bad_audience"),
        ({"audience": Audience(AudienceKind.NAMED, frozenset({9999}))}, "unknown_institution"),
    ],
)
async def test_a_training_that_makes_no_sense_is_refused_and_nothing_is_kept(
    service: TrainingService,
    trainings: InMemoryTrainings,
    changes: dict[str, object],
    reason: str,
) -> None:
    with pytest.raises(InvalidTraining) as refused:
        await service.schedule(ADMIN, plan(**changes))
    assert refused.value.reason == reason
    assert trainings.trainings == {}


async def test_a_supervisor_schedules_only_for_institutions_of_their_subtree(
    service: TrainingService,
) -> None:
    await service.schedule(
        SUPERVISOR_B, plan(audience=Audience(AudienceKind.SUBTREE, frozenset({COUNTY_B})))
    )
    with pytest.raises(PermissionDenied):
        await service.schedule(SUPERVISOR_B, plan())  # county A is not below county B


@pytest.mark.parametrize("user", [DOCTOR_A, OBSTETRICIAN, TRAINEE_A], ids=lambda u: u.username)
async def test_nobody_else_schedules_trainings(service: TrainingService, user: User) -> None:
    with pytest.raises(PermissionDenied):
        await service.schedule(user, plan())


async def test_each_user_lists_the_trainings_open_to_them_lectured_or_organised_by_them(
    service: TrainingService,
) -> None:
    for_a = await service.schedule(ADMIN, plan())
    for_b = await service.schedule(
        ADMIN,
        plan(
            audience=Audience(AudienceKind.NAMED, frozenset({COUNTY_B})),
            lecturer_ids=frozenset({PAEDIATRICIAN.id}),
            starts_at=NOON + 2 * H,
        ),
    )
    ids = lambda found: [t.id for t in found]  # noqa: E731
    assert ids(await service.visible(TRAINEE_A)) == [for_a.id]
    assert ids(await service.visible(TRAINEE_B)) == [for_b.id]
    assert ids(await service.visible(PAEDIATRICIAN)) == [for_b.id]
    assert ids(await service.visible(ADMIN)) == [for_b.id, for_a.id]  # latest start first
    assert ids(await service.visible(SUPERVISOR_B)) == [for_b.id]  # county B's staff
    assert ids(await service.visible(ADMIN, frozenset({L}))) == []
    with pytest.raises(NotFound):
        await service.get(TRAINEE_B, for_a.id)


async def test_the_lecturer_starts_and_ends_it_and_only_organisers_cancel(
    service: TrainingService, store: InMemoryStore
) -> None:
    made = await service.schedule(ADMIN, plan())
    with pytest.raises(PermissionDenied):
        await service.move(OBSTETRICIAN, made.id, TrainingEvent.CANCEL)
    with pytest.raises(PermissionDenied):
        await service.move(DOCTOR_A, made.id, TrainingEvent.START)  # a trainee, not a lecturer
    with pytest.raises(NotFound):
        await service.move(DOCTOR_B, made.id, TrainingEvent.START)  # not even visible
    live = await service.move(OBSTETRICIAN, made.id, TrainingEvent.START)
    assert (live.status, live.version) == (L, 2)
    with pytest.raises(IllegalTransition):
        await service.move(ADMIN, made.id, TrainingEvent.CANCEL)
    ended = await service.move(OBSTETRICIAN, made.id, TrainingEvent.END)
    assert ended.status is E
    assert [e.action for e in store.audit_log] == [
        "training.scheduled",
        "training.live",
        "training.ended",
    ]


async def test_a_change_made_against_an_older_version_is_refused(
    service: TrainingService, trainings: InMemoryTrainings, store: InMemoryStore
) -> None:
    made = await service.schedule(ADMIN, plan())
    await service.move(ADMIN, made.id, TrainingEvent.START)
    # somebody cancelling from the version they read before the start
    stale = replace(made, status=C, version=made.version + 1)
    assert not await trainings.update_training(stale, AuditEntry(NOON, ADMIN.id, "x"))
    assert trainings.trainings[made.id].status is L
    assert store.audit_log[-1].action == "training.live"


async def test_a_trainee_of_the_audience_is_admitted_and_the_admission_audited(
    service: TrainingService, store: InMemoryStore
) -> None:
    made = await service.schedule(ADMIN, plan())
    assert (await service.admit(TRAINEE_A, made.id)).id == made.id
    entry = store.audit_log[-1]
    assert (entry.action, entry.actor_id) == ("training.admitted", TRAINEE_A.id)
    assert entry.detail == {"training": made.id, "institution_id": TOWNSHIP_A}


async def test_a_trainee_outside_the_audience_is_refused_and_the_refusal_audited(
    service: TrainingService, store: InMemoryStore
) -> None:
    made = await service.schedule(ADMIN, plan())
    with pytest.raises(PermissionDenied):
        await service.admit(TRAINEE_B, made.id)
    entry = store.audit_log[-1]
    assert (entry.action, entry.actor_id) == ("training.refused", TRAINEE_B.id)
    assert entry.detail == {"training": made.id, "institution_id": COUNTY_B}


async def test_nobody_is_admitted_to_a_cancelled_or_unknown_training(
    service: TrainingService,
) -> None:
    made = await service.schedule(ADMIN, plan())
    await service.move(ADMIN, made.id, TrainingEvent.CANCEL)
    with pytest.raises(NotFound):
        await service.admit(TRAINEE_A, made.id)
    with pytest.raises(NotFound):
        await service.admit(TRAINEE_A, "0" * 32)


def test_a_question_is_trimmed_and_bounded() -> None:
    assert question_text("  胸外按压  \n") == "胸外按压"
    assert question_text("问" * MAX_QUESTION_CHARS) == "问" * MAX_QUESTION_CHARS
    for text in ("", "   \n\t", "问" * (MAX_QUESTION_CHARS + 1)):
        with pytest.raises(InvalidQuestion):
            question_text(text)
