"""The training repository (`storage.sql.training.SqlTrainings`) on SQLite and PostgreSQL
alike: trainings with their optimistic version, attendance added up, questions moderated at
most once, and the attendance the statistics count (half-open range in the report zone, the
given institutions only, held trainings only)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rooms.consults.audit import AuditEntry
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.people import Role, Specialty
from rooms.reporting.statistics import Month, Period
from rooms.reporting.training_statistics import compute_trainings
from rooms.training.attendance import Unwritten
from rooms.training.questions import Question, QuestionStatus
from rooms.training.training import Audience, AudienceKind, Training, TrainingStatus
from tests.integration.stores import SqlStores

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime.now(UTC).replace(microsecond=0)
THIS_MONTH = Month.of(NOW, SHANGHAI)
PERIOD = Period(THIS_MONTH, THIS_MONTH, SHANGHAI)
ALL = frozenset(QuestionStatus)
S = timedelta(seconds=1)


def entry(action: str) -> AuditEntry:
    return AuditEntry(at=NOW, actor_id=None, action=action)


def a_training(sql: SqlStores, starts_at: datetime, status: TrainingStatus) -> Training:
    return Training(
        id=Training.new_id(),
        title="新生儿复苏",
        organiser_institution_id=sql.county_id,
        lecturer_ids=frozenset({sql.doctor_id}),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        audience=Audience(AudienceKind.SUBTREE, frozenset({sql.county_id})),
        specialties=frozenset({Specialty.PAEDIATRICS}),
        status=status,
        created_by=sql.doctor_id,
        created_at=NOW,
    )


async def stored(sql: SqlStores, starts_at: datetime, status: TrainingStatus) -> Training:
    training = a_training(sql, starts_at, status)
    await sql.repos.trainings.add_training(training, entry("training.scheduled"))
    return training


def attended(training: Training, user_id: int, institution_id: int, seconds: float) -> Unwritten:
    at = training.starts_at
    return Unwritten(training.id, user_id, institution_id, at, at + timedelta(seconds=1), seconds)


async def test_a_training_round_trips_and_a_stale_update_writes_nothing(sql: SqlStores) -> None:
    trainings = sql.repos.trainings
    made = await stored(sql, NOW, TrainingStatus.SCHEDULED)
    assert await trainings.get_training(made.id) == made
    live = replace(made, status=TrainingStatus.LIVE, version=2)
    assert await trainings.update_training(live, entry("training.live"))
    assert not await trainings.update_training(live, entry("training.live"))  # version 1 gone
    assert await trainings.get_training(made.id) == live


async def test_attendance_adds_up_per_person(sql: SqlStores) -> None:
    trainings = sql.repos.trainings
    made = await stored(sql, NOW, TrainingStatus.LIVE)
    await trainings.add_attendance([attended(made, sql.doctor_id, sql.county_id, 60)])
    await trainings.add_attendance([attended(made, sql.doctor_id, sql.county_id, 30.5)])
    (one,) = await trainings.attendance(made.id)
    assert (one.user_id, one.seconds) == (sql.doctor_id, 90.5)


async def test_a_question_is_moderated_once_and_listed_in_the_order_asked(
    sql: SqlStores,
) -> None:
    store = sql.repos.trainings
    made = await stored(sql, NOW, TrainingStatus.LIVE)
    questions = [
        Question(Question.new_id(), made.id, sql.doctor_id, sql.county_id, f"问题 {n}", NOW + n * S)
        for n in (2, 1, 3)
    ]
    for q in questions:
        await store.add_question(q, entry("training.question_asked"))
    assert await store.get_question(questions[0].id) == questions[0]
    listed = await store.list_questions(made.id, ALL, 10)
    assert [q.text for q in listed] == ["问题 1", "问题 2", "问题 3"]
    shown = replace(
        questions[0], status=QuestionStatus.SHOWN, moderated_by=sql.doctor_id, moderated_at=NOW
    )
    assert await store.moderate_question(shown, entry("training.question_shown"))
    dismissed = replace(shown, status=QuestionStatus.DISMISSED)
    assert not await store.moderate_question(dismissed, entry("training.question_dismissed"))
    assert await store.get_question(shown.id) == shown
    only_shown = await store.list_questions(made.id, frozenset({QuestionStatus.SHOWN}), 10)
    assert only_shown == [shown]
    assert len(await store.list_questions(made.id, ALL, 2)) == 2


async def test_the_statistics_load_held_trainings_of_the_given_institutions_in_the_period(
    sql: SqlStores,
) -> None:
    store = sql.repos.trainings
    consults = sql.consults
    other = await consults.add_institution("Other county", InstitutionLevel.COUNTY, None)
    nurse = await consults.add_user("n", "Nurse", Role.TRAINEE, sql.county_id, None, "h")
    far = await consults.add_user("f", "Far", Role.TRAINEE, other.id, None, "h")
    since, until = PERIOD.since.astimezone(UTC), PERIOD.until.astimezone(UTC)
    first = await stored(sql, since, TrainingStatus.ENDED)  # the first instant: inside
    last = await stored(sql, until - S, TrainingStatus.LIVE)  # the last second: inside
    after = await stored(sql, until, TrainingStatus.ENDED)  # the next month
    before = await stored(sql, since - S, TrainingStatus.ENDED)  # the month before
    unheld = await stored(sql, since + S, TrainingStatus.SCHEDULED)
    rows = [
        attended(first, sql.doctor_id, sql.county_id, 3600),
        attended(first, nurse.id, sql.county_id, 1800),
        attended(first, far.id, other.id, 900),
        attended(last, sql.doctor_id, sql.county_id, 1800),
        attended(after, sql.doctor_id, sql.county_id, 60),
        attended(before, sql.doctor_id, sql.county_id, 60),
        attended(unheld, sql.doctor_id, sql.county_id, 60),
    ]
    await store.add_attendance(rows)
    found = await store.attendance_for_statistics(frozenset({sql.county_id}), since, until)
    assert [(r.training_id, r.user_id) for r in found] == sorted(
        [(first.id, sql.doctor_id), (first.id, nurse.id), (last.id, sql.doctor_id)],
        key=lambda pair: (pair[0] != first.id, pair[1]),
    )
    assert {r.specialties for r in found} == {frozenset({Specialty.PAEDIATRICS})}
    assert found[0].starts_at == since
    assert await store.attendance_for_statistics(frozenset(), since, until) == []
    both = await store.attendance_for_statistics(frozenset({sql.county_id, other.id}), since, until)
    figures = compute_trainings(both, PERIOD)
    by_institution = {row.institution_id: row.figures for row in figures.rows}
    assert (by_institution[sql.county_id].trainings, by_institution[sql.county_id].trainees) == (
        2,
        2,
    )
    assert by_institution[sql.county_id].attendance_hours == 2.0
    assert (by_institution[other.id].trainees, by_institution[other.id].attendance_hours) == (
        1,
        0.25,
    )
    assert (figures.overall.trainings, figures.overall.trainees) == (2, 3)
    assert figures.overall.attendance_hours == 2.25
    assert compute_trainings(both, PERIOD, Specialty.OBSTETRICS).overall.trainings == 0
