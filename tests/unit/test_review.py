"""Supervisor review: filters, the review timeline of several sessions, comments, the audit."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rooms.calls.recordings import Recording, RecordingStatus, TrackSource
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import NotFound, PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty
from rooms.consults.service import Clock, utc_now
from rooms.records.notes import Note
from rooms.reporting.review import (
    MAX_COMMENT_CHARS,
    MAX_OFFSET,
    MAX_PAGE,
    MAX_PIN_BEYOND_END_S,
    SESSION_MATCH_S,
    ConsultFilter,
    InvalidComment,
    InvalidFilter,
    ReviewService,
    build_timeline,
    comment_text,
)
from tests.unit.fakes import (
    ADMIN,
    COUNTY_A,
    COUNTY_B,
    DOCTOR_A,
    NOON,
    OBSTETRICIAN,
    PROVINCE,
    SUPERVISOR,
    SUPERVISOR_B,
    TOWNSHIP_A,
    InMemoryStore,
    consult_in,
)


def reviewing(store: InMemoryStore, clock: Clock = utc_now) -> ReviewService:
    """The review service on the fake, which keeps consults, recordings, notes and comments."""
    return ReviewService(store, store, store, store, clock)


S1 = NOON + timedelta(minutes=5)
"""The first recording session's start."""
S2 = NOON + timedelta(minutes=20)


def track(
    session: datetime,
    offset: float,
    duration: float,
    consult_id: str = "c" * 32,
    status: RecordingStatus = RecordingStatus.READY,
    kind: str = "video",
) -> Recording:
    return Recording(
        id=Recording.new_id(),
        consult_id=consult_id,
        participant_id=DOCTOR_A.id,
        source=TrackSource.CAMERA,
        kind=kind,
        codec="vp8",
        container="webm",
        storage_key="k",
        started_at=session + timedelta(seconds=offset),
        started_offset_s=offset,
        status=status,
        duration_s=duration,
    )


def note_at(session: datetime | None, offset: float | None, text: str = "n") -> Note:
    at = (session or NOON) + timedelta(seconds=offset or 0)
    return Note(Note.new_id(), "c" * 32, DOCTOR_A.id, text, at, offset)


# ---- the timeline ------------------------------------------------------------------------------


def test_one_session_places_each_track_at_its_offset_and_lasts_until_the_last_ends() -> None:
    a, b = track(S1, 0.0, 10.0), track(S1, 1.5, 9.0)
    timeline = build_timeline([b, a], [])
    assert [(s.start_s, s.duration_s) for s in timeline.sessions] == [(0.0, 10.5)]
    assert [(t.recording.id, t.start_s, t.end_s) for t in timeline.tracks] == [
        (a.id, 0.0, 10.0),
        (b.id, 1.5, 10.5),
    ]
    assert timeline.duration_s == 10.5


def test_two_sessions_are_laid_end_to_end_and_notes_land_in_their_own_session() -> None:
    first, second = track(S1, 0.2, 8.0), track(S2, 0.0, 5.0)
    in_first, in_second = note_at(S1, 3.0), note_at(S2, 2.5)
    timeline = build_timeline([second, first], [in_first, in_second])
    assert [(s.index, s.started_at, s.start_s, s.duration_s) for s in timeline.sessions] == [
        (0, S1, 0.0, 8.2),
        (1, S2, 8.2, 5.0),
    ]
    assert [(t.session, t.start_s) for t in timeline.tracks] == [(0, 0.2), (1, 8.2)]
    assert [(m.session, m.at_s) for m in timeline.markers] == [(0, 3.0), (1, 10.7)]
    assert timeline.duration_s == 13.2


def test_tracks_whose_session_starts_differ_by_rounding_are_one_session() -> None:
    a = track(S1, 0.0, 4.0)
    b = replace(track(S1, 2.0, 4.0), started_at=S1 + timedelta(seconds=2 + SESSION_MATCH_S / 2))
    assert len(build_timeline([a, b], []).sessions) == 1


def test_a_note_taken_after_the_tracks_ended_sits_at_the_sessions_end() -> None:
    timeline = build_timeline([track(S1, 0.0, 6.0)], [note_at(S1, 9.0)])
    assert timeline.markers[0].at_s == 6.0


def test_unrecorded_notes_and_notes_of_sessions_without_finished_tracks_have_no_marker() -> None:
    unrecorded = note_at(None, None)
    lost_session = note_at(S2, 1.0)
    timeline = build_timeline(
        [track(S1, 0.0, 6.0), track(S2, 0.0, 3.0, status=RecordingStatus.EMPTY)],
        [unrecorded, lost_session],
    )
    assert len(timeline.sessions) == 1
    assert [(m.session, m.at_s) for m in timeline.markers] == [(None, None), (None, None)]


def test_no_recordings_make_an_empty_timeline() -> None:
    timeline = build_timeline([], [note_at(None, None)])
    assert (timeline.sessions, timeline.tracks, timeline.duration_s) == ([], [], 0.0)


# ---- filters -----------------------------------------------------------------------------------

CHINA = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheduled_from": datetime(2026, 11, 23)}, "from needs a timezone"),
        ({"scheduled_before": datetime(2026, 11, 23)}, "to needs a timezone"),
        (
            {"scheduled_from": NOON, "scheduled_before": NOON},
            "to must be later than from",
        ),
        ({"limit": 0}, f"limit must be between 1 and {MAX_PAGE}"),
        ({"limit": MAX_PAGE + 1}, f"limit must be between 1 and {MAX_PAGE}"),
        ({"offset": -1}, f"offset must be between 0 and {MAX_OFFSET}"),
        ({"offset": MAX_OFFSET + 1}, f"offset must be between 0 and {MAX_OFFSET}"),
    ],
)
def test_a_filter_that_cannot_be_applied_is_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidFilter, match=message):
        ConsultFilter(**kwargs)  # type: ignore[arg-type]


def test_the_page_limits_are_accepted_at_their_bounds() -> None:
    ConsultFilter(limit=1, offset=0)
    ConsultFilter(limit=MAX_PAGE, offset=MAX_OFFSET)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


async def add(store: InMemoryStore, consult: Consult) -> Consult:
    await store.add_consult(
        consult, AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult.id)
    )
    return consult


async def several(store: InMemoryStore) -> dict[str, Consult]:
    """County A (obstetrics, ended, recorded), township (paediatrics), county B (requested)."""
    made = {
        "a": consult_in(ConsultStatus.ENDED, consult_id="a" * 32),
        "town": replace(
            consult_in(ConsultStatus.ENDED, institution_id=TOWNSHIP_A, consult_id="b" * 32),
            specialty=Specialty.PAEDIATRICS,
            scheduled_at=NOON + timedelta(days=1),
        ),
        "b": replace(
            consult_in(ConsultStatus.REQUESTED, None, institution_id=COUNTY_B, consult_id="d" * 32),
            scheduled_at=NOON - timedelta(days=1),
        ),
    }
    for consult in made.values():
        await add(store, consult)
    rec = track(S1, 0.0, 5.0, consult_id=made["a"].id)
    store.recordings[rec.id] = rec
    return made


async def ids(store: InMemoryStore, wanted: ConsultFilter, user: object = SUPERVISOR) -> list[str]:
    page = await reviewing(store).search(user, wanted)  # type: ignore[arg-type]
    return [c.id for c in page.consults]


async def test_filters_narrow_the_supervisors_subtree(store: InMemoryStore) -> None:
    made = await several(store)
    a, town, b = made["a"].id, made["town"].id, made["b"].id
    assert await ids(store, ConsultFilter()) == [town, a, b]  # newest scheduled first
    assert await ids(store, ConsultFilter(institution_id=COUNTY_A)) == [town, a]
    assert await ids(store, ConsultFilter(institution_id=COUNTY_B)) == [b]
    assert await ids(store, ConsultFilter(specialties=frozenset({Specialty.PAEDIATRICS}))) == [town]
    assert await ids(store, ConsultFilter(statuses=frozenset({ConsultStatus.REQUESTED}))) == [b]
    assert await ids(store, ConsultFilter(recorded=True)) == [a]
    assert await ids(store, ConsultFilter(recorded=False)) == [town, b]
    # the day of NOON in China: [00:00+08:00, next 00:00+08:00)
    day = datetime(2026, 11, 23, tzinfo=CHINA)
    in_day = ConsultFilter(scheduled_from=day, scheduled_before=day + timedelta(days=1))
    assert await ids(store, in_day) == [a]
    assert await ids(store, ConsultFilter(scheduled_from=NOON)) == [town, a]  # inclusive
    assert await ids(store, ConsultFilter(scheduled_before=NOON)) == [b]  # exclusive


async def test_pages_follow_each_other_until_the_last(store: InMemoryStore) -> None:
    made = await several(store)
    service = reviewing(store)
    first = await service.search(SUPERVISOR, ConsultFilter(limit=2))
    assert [c.id for c in first.consults] == [made["town"].id, made["a"].id]
    assert first.next_offset == 2
    last = await service.search(SUPERVISOR, ConsultFilter(limit=2, offset=2))
    assert ([c.id for c in last.consults], last.next_offset) == ([made["b"].id], None)


async def test_a_county_supervisor_sees_only_their_county(store: InMemoryStore) -> None:
    made = await several(store)
    assert await ids(store, ConsultFilter(), SUPERVISOR_B) == [made["b"].id]


async def test_an_institution_outside_the_subtree_is_refused(store: InMemoryStore) -> None:
    await several(store)
    with pytest.raises(PermissionDenied, match="not within your institution's subtree"):
        await ids(store, ConsultFilter(institution_id=COUNTY_A), SUPERVISOR_B)
    with pytest.raises(PermissionDenied, match="not within"):
        await ids(store, ConsultFilter(institution_id=PROVINCE), SUPERVISOR_B)


async def test_an_unknown_institution_is_refused(store: InMemoryStore) -> None:
    with pytest.raises(InvalidFilter, match="no institution 999"):
        await ids(store, ConsultFilter(institution_id=999))


async def test_admins_search_too_but_doctors_and_specialists_do_not(store: InMemoryStore) -> None:
    made = await several(store)
    assert made["a"].id in await ids(store, ConsultFilter(), ADMIN)
    for user in (DOCTOR_A, OBSTETRICIAN):
        with pytest.raises(PermissionDenied, match="may not search"):
            await ids(store, ConsultFilter(), user)


# ---- opening a review --------------------------------------------------------------------------


async def test_opening_a_review_is_audited_with_the_recordings_shown(store: InMemoryStore) -> None:
    made = await several(store)
    review = await reviewing(store, lambda: NOON).open(SUPERVISOR, made["a"].id)
    assert [t.recording.consult_id for t in review.timeline.tracks] == [made["a"].id]
    entry = store.audit_log[-1]
    assert (entry.action, entry.actor_id, entry.consult_id) == (
        "consult.reviewed",
        SUPERVISOR.id,
        made["a"].id,
    )
    assert entry.detail == {
        "recordings": [review.timeline.tracks[0].recording.id],
        "duration_s": 5.0,
    }


async def test_only_reviewers_of_the_subtree_open_a_review(store: InMemoryStore) -> None:
    made = await several(store)
    service = reviewing(store)
    for user in (DOCTOR_A, OBSTETRICIAN, SUPERVISOR_B):
        with pytest.raises(PermissionDenied):
            await service.open(user, made["a"].id)
    with pytest.raises(NotFound):
        await service.open(SUPERVISOR, "f" * 32)
    assert not [e for e in store.audit_log if e.action == "consult.reviewed"]


# ---- comments ----------------------------------------------------------------------------------


def test_comment_text_is_trimmed_and_bounded() -> None:
    assert comment_text("  ok  ") == "ok"
    assert comment_text("x" * MAX_COMMENT_CHARS) == "x" * MAX_COMMENT_CHARS
    with pytest.raises(InvalidComment, match="needs some text"):
        comment_text(" \n ")
    with pytest.raises(InvalidComment, match=f"at most {MAX_COMMENT_CHARS}"):
        comment_text("x" * (MAX_COMMENT_CHARS + 1))


async def test_a_supervisor_comments_pinned_to_the_timeline_audited(store: InMemoryStore) -> None:
    made = await several(store)
    seconds = itertools.count()  # a clock that moves: comments are listed oldest first
    service = reviewing(store, lambda: NOON + timedelta(days=2, seconds=next(seconds)))
    pinned = await service.add_comment(SUPERVISOR, made["a"].id, "  good  ", 2.5)
    loose = await service.add_comment(ADMIN, made["a"].id, "再看一下")
    assert (pinned.text, pinned.timeline_s, loose.timeline_s) == ("good", 2.5, None)
    assert await service.comments(SUPERVISOR, made["a"].id) == [pinned, loose]
    added = [e for e in store.audit_log if e.action == "comment.added"]
    assert [(e.actor_id, e.detail) for e in added] == [
        (SUPERVISOR.id, {"comment": pinned.id, "timeline_s": 2.5}),
        (ADMIN.id, {"comment": loose.id, "timeline_s": None}),
    ]


async def test_a_pin_just_past_the_end_snaps_to_the_end(store: InMemoryStore) -> None:
    made = await several(store)
    service = reviewing(store)
    comment = await service.add_comment(SUPERVISOR, made["a"].id, "end", 5.0 + MAX_PIN_BEYOND_END_S)
    assert comment.timeline_s == 5.0


@pytest.mark.parametrize(
    ("which", "pin", "message"),
    [
        ("a", -0.1, "between 0 and 5.0"),
        ("a", 5.0 + MAX_PIN_BEYOND_END_S + 0.1, "between 0 and 5.0"),
        ("b", 1.0, "no recordings to pin"),
    ],
)
async def test_a_pin_off_the_recordings_is_refused(
    store: InMemoryStore, which: str, pin: float, message: str
) -> None:
    made = await several(store)
    with pytest.raises(InvalidComment, match=message):
        await reviewing(store).add_comment(SUPERVISOR, made[which].id, "x", pin)
    assert store.comments == []


async def test_others_may_neither_comment_nor_read_comments(store: InMemoryStore) -> None:
    made = await several(store)
    service = reviewing(store)
    for user in (DOCTOR_A, OBSTETRICIAN, SUPERVISOR_B):
        with pytest.raises(PermissionDenied):
            await service.add_comment(user, made["a"].id, "x")
        with pytest.raises(PermissionDenied):
            await service.comments(user, made["a"].id)
    with pytest.raises(NotFound):
        await service.add_comment(SUPERVISOR, "f" * 32, "x")
    assert store.comments == []


def test_utc_and_china_midnight_are_different_instants() -> None:
    # The filter compares instants: a client's local midnight is sent with its offset.
    assert datetime(2026, 11, 23, tzinfo=CHINA) == datetime(2026, 11, 22, 16, tzinfo=UTC)
