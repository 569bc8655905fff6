"""`teleconsult demo`: a provincial hospital, two counties, a user of each role, a ready consult.

Seeds only an empty database. Every run then makes sure a joinable consult between County A's
doctor and the obstetrician exists, and prints one-click join links with short-lived tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import MediaMode, PatientSummary, Sex
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.lifecycle import JOINABLE
from rooms.consults.people import Role, Specialty, User
from rooms.consults.ports import ConsultQuery, ConsultStore
from rooms.consults.service import Booking, ConsultService
from rooms.duty.ports import RosterStore
from rooms.duty.roster import Shift, on_duty
from rooms.training.service import TrainingPlan, TrainingService
from rooms.training.training import Audience, AudienceKind, TrainingStatus
from signaling.auth import TokenIssuer
from signaling.passwords import hash_password
from teleconsult.config import Settings


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    institution: str
    specialty: Specialty | None = None

    @property
    def password(self) -> str:
        # Demo-only, printed on every run; real users are added with `teleconsult user add`.
        return f"demo-{self.username}"


INSTITUTIONS: list[tuple[str, InstitutionLevel, str | None]] = [
    ("省妇幼保健院 Provincial Maternal and Child Health Hospital", InstitutionLevel.PROVINCE, None),
    (
        "市卫生健康委 City Health Commission",
        InstitutionLevel.CITY,
        "省妇幼保健院 Provincial Maternal and Child Health Hospital",
    ),
    (
        "A县人民医院 County A People's Hospital",
        InstitutionLevel.COUNTY,
        "市卫生健康委 City Health Commission",
    ),
    (
        "B县人民医院 County B People's Hospital",
        InstitutionLevel.COUNTY,
        "市卫生健康委 City Health Commission",
    ),
    (
        "A县城关镇卫生院 Chengguan Township Health Centre",
        InstitutionLevel.TOWNSHIP,
        "A县人民医院 County A People's Hospital",
    ),
]
PROVINCE, _, COUNTY_A, COUNTY_B, _ = (name for name, _, _ in INSTITUTIONS)

USERS = [
    DemoUser("admin", "系统管理员 Admin", Role.ADMIN, PROVINCE),
    DemoUser("supervisor", "李明 (质控) Li Ming", Role.SUPERVISOR, PROVINCE),
    DemoUser(
        "obstetrician", "王芳 (产科) Wang Fang", Role.SPECIALIST, PROVINCE, Specialty.OBSTETRICS
    ),
    DemoUser(
        "obstetrician2", "赵敏 (产科) Zhao Min", Role.SPECIALIST, PROVINCE, Specialty.OBSTETRICS
    ),
    DemoUser(
        "paediatrician", "张伟 (儿科) Zhang Wei", Role.SPECIALIST, PROVINCE, Specialty.PAEDIATRICS
    ),
    DemoUser("doctor.a", "刘医生 (A县) Dr Liu", Role.EXAM_ROOM_DOCTOR, COUNTY_A),
    DemoUser("doctor.b", "陈医生 (B县) Dr Chen", Role.EXAM_ROOM_DOCTOR, COUNTY_B),
]


DEMO_ROSTER: list[tuple[str, Specialty, int]] = [
    ("obstetrician", Specialty.OBSTETRICS, 0),
    ("obstetrician2", Specialty.OBSTETRICS, 1),
    ("paediatrician", Specialty.PAEDIATRICS, 0),
]
"""Who the demo puts on duty, around the clock: (username, specialty, tier 0 primary/1 backup)."""

DEMO_ROSTER_DAYS = 7


async def ensure_roster(consults: ConsultStore, roster: RosterStore, now: datetime) -> int:
    """Put the demo's specialists on duty for the coming week (24-hour shifts from midnight
    UTC), unless somebody is on duty for obstetrics now. Returns how many shifts it added."""
    current = await roster.shifts_between(now, now + timedelta(seconds=1), Specialty.OBSTETRICS)
    if on_duty(current, Specialty.OBSTETRICS, now):
        return 0
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    added = 0
    for username, specialty, tier in DEMO_ROSTER:
        found = await consults.credentials(username)
        if found is None:
            continue  # a database seeded before this user was part of the demo
        for day in range(DEMO_ROSTER_DAYS):
            start = midnight + timedelta(days=day)
            shift = Shift(
                Shift.new_id(), found[0].id, specialty, start, start + timedelta(days=1), tier
            )
            await roster.add_shift(
                shift,
                AuditEntry(
                    at=now,
                    actor_id=None,
                    action="roster.shift_added",
                    detail={"shift": shift.id, "specialist_id": shift.specialist_id, "demo": True},
                ),
            )
            added += 1
    return added


@dataclass(frozen=True)
class DemoLinks:
    consult_id: str
    exam_room_url: str
    specialist_url: str


async def seed(store: ConsultStore) -> bool:
    """Create the demo institutions and users in an empty database; False if not empty."""
    if await store.count_users() > 0:
        return False
    ids: dict[str, int] = {}
    for name, level, parent in INSTITUTIONS:
        ids[name] = (await store.add_institution(name, level, ids[parent] if parent else None)).id
    for u in USERS:
        await store.add_user(
            u.username,
            u.display_name,
            u.role,
            ids[u.institution],
            u.specialty,
            hash_password(u.password),
        )
    return True


async def _demo_user(store: ConsultStore, username: str) -> User:
    found = await store.credentials(username)
    if found is None:
        raise LookupError(f"the demo user {username!r} is missing: is this a demo database?")
    return found[0]


async def ready_consult(service: ConsultService) -> str:
    """A joinable consult between doctor.a and the obstetrician, booked and accepted if needed."""
    doctor = await _demo_user(service.store, "doctor.a")
    specialist = await _demo_user(service.store, "obstetrician")
    existing = await service.store.list_consults(
        ConsultQuery(specialist_id=specialist.id, statuses=frozenset(JOINABLE))
    )
    for consult in existing:
        if consult.requesting_doctor_id == doctor.id:
            return consult.id
    consult = await service.book(
        doctor,
        Booking(
            patient=PatientSummary(
                name="演示患者 Demo Patient",
                sex=Sex.FEMALE,
                age_years=29,
                summary="G1P0, 孕32周 32 weeks, 血压偏高 raised blood pressure",
            ),
            specialty=Specialty.OBSTETRICS,
            reason="妊娠期高血压会诊 Gestational hypertension review",
            scheduled_at=datetime.now(UTC),
            intake={"gestational_week": 32, "bp_systolic": 148, "bp_diastolic": 95},
            specialist_id=specialist.id,
            media_mode=MediaMode.P2P,
        ),
    )
    await service.accept(specialist, consult.id)
    return consult.id


async def demo_links(settings: Settings, service: ConsultService, tokens: TokenIssuer) -> DemoLinks:
    consult_id = await ready_consult(service)
    links = []
    for username, page in (("doctor.a", "exam-room.html"), ("obstetrician", "specialist.html")):
        user = await _demo_user(service.store, username)
        token, _ = tokens.issue(user, ttl=settings.join_link_ttl)
        links.append(f"{settings.base_url}/{page}#consult={consult_id}&token={token}")
    return DemoLinks(consult_id, links[0], links[1])


DEMO_TRAINING_TITLE = "产后出血的识别与处置 Recognising and managing postpartum haemorrhage"
DEMO_TRAINING_LENGTH = timedelta(hours=2)


@dataclass(frozen=True)
class DemoTrainingLinks:
    training_id: str
    lecturer_url: str
    viewer_url: str


async def ready_training(trainings: TrainingService) -> str:
    """A training the obstetrician lectures to the whole province, starting now: the demo's
    own one, scheduled or live, or a new one (scheduled by the demo admin)."""
    admin = await _demo_user(trainings.consults, "admin")
    lecturer = await _demo_user(trainings.consults, "obstetrician")
    open_ones = frozenset({TrainingStatus.SCHEDULED, TrainingStatus.LIVE})
    for training in await trainings.visible(admin, open_ones):
        if training.title == DEMO_TRAINING_TITLE and lecturer.id in training.lecturer_ids:
            return training.id
    now = trainings.clock()
    training = await trainings.schedule(
        admin,
        TrainingPlan(
            title=DEMO_TRAINING_TITLE,
            lecturer_ids=frozenset({lecturer.id}),
            starts_at=now,
            ends_at=now + DEMO_TRAINING_LENGTH,
            audience=Audience(AudienceKind.SUBTREE, frozenset({admin.institution_id})),
            specialties=frozenset({Specialty.OBSTETRICS}),
        ),
    )
    return training.id


async def demo_training_links(
    settings: Settings, trainings: TrainingService, tokens: TokenIssuer
) -> DemoTrainingLinks:
    """One-click links: the obstetrician presents, County A's doctor watches."""
    training_id = await ready_training(trainings)
    links = []
    for username, page in (
        ("obstetrician", "training-lecturer.html"),
        ("doctor.a", "training.html"),
    ):
        user = await _demo_user(trainings.consults, username)
        token, _ = tokens.issue(user, ttl=settings.join_link_ttl)
        links.append(f"{settings.base_url}/{page}#training={training_id}&token={token}")
    return DemoTrainingLinks(training_id, links[0], links[1])
